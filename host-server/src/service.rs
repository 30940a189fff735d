//! The licensing service: decides requests with the engine and applies their effects in one
//! transaction, and administers clients, orders and licenses. It knows no HTTP.

use licet_engine::report::Report as _;
use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};
use ed25519_dalek::SigningKey;
use licet_engine::certificate::{issue, Binding, Certificate};
use licet_engine::effects;
use licet_engine::exchange::{
    ActivationRequest, ActivationResponse, ExchangeError, RequestDigest, ReturnRequest,
    ReturnResponse, Role, ServerActivationResponse,
};
use licet_engine::policy::Model;
use licet_engine::request::RequestKind;
use licet_engine::server_license::ServerLicense;
use licet_engine::state::{License, State};
use licet_engine::{decide, Action, Actor, Code, Decision, Policy, Request};
use serde::Serialize;

use crate::dongle::{DongleChallenges, DongleCheck};
use crate::effects::LicenseRecords;
use crate::error::StoreError;
use crate::fields::check_action;
use crate::license_server::served::decide_served;
use crate::license_server::LicenseServer;
use crate::store::{job, AuditEntry, LicenseRecord, Records, Store};

/// The loaded policies, by product identifier.
pub type Policies = BTreeMap<String, Arc<Policy>>;

/// How long after a lease or borrow ended its row is deleted (the seat was free since it ended).
pub const LEASE_RETENTION: chrono::Duration = chrono::Duration::hours(1);

/// The server's clock; tests move it forward.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The time now.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The system clock moved by an adjustable offset.
#[derive(Debug, Default)]
pub struct OffsetClock {
    offset_seconds: std::sync::atomic::AtomicI64,
}

impl OffsetClock {
    /// Moves the clock forward (or back, with a negative duration).
    pub fn advance(&self, by: chrono::Duration) {
        self.offset_seconds
            .fetch_add(by.num_seconds(), std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> DateTime<Utc> {
        let offset = self
            .offset_seconds
            .load(std::sync::atomic::Ordering::SeqCst);
        Utc::now() + chrono::Duration::seconds(offset)
    }
}

/// Why the service could not answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// Storage failed; nothing was changed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The request names a product this server does not license.
    #[error("product `{0}` is not licensed by this server")]
    UnknownProduct(String),
    /// The request is not valid.
    #[error("{0}")]
    Invalid(String),
    /// The record does not exist.
    #[error("{0} does not exist")]
    NotFound(String),
    /// The record exists already.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// The system random source failed.
    #[error("the system random source failed")]
    Random,
    /// A request file was refused before any decision.
    #[error("{message}")]
    Exchange {
        /// The engine code of the exchange error.
        code: Code,
        /// What is wrong.
        message: String,
    },
}

impl From<ExchangeError> for ServiceError {
    fn from(error: ExchangeError) -> Self {
        ServiceError::Exchange {
            code: error.code(),
            message: error.report(),
        }
    }
}

/// A request file being answered: the parsed request and the digest of its exact bytes.
#[derive(Debug, Clone)]
pub enum ExchangeStep {
    /// An activation request file.
    Activation(ActivationRequest, RequestDigest),
    /// A return request file.
    Return(ReturnRequest, RequestDigest),
}

impl ExchangeStep {
    /// Parses an activation or return request file and checks the sizes of what it carries
    /// (the limits of the JSON routes, [`crate::fields`]); a file that fails is refused with
    /// `EXCHANGE_MALFORMED` before anything is stored or audited.
    pub fn parse(file: &[u8]) -> Result<ExchangeStep, ServiceError> {
        let digest = RequestDigest::of(file);
        let step = match ActivationRequest::from_xml(file) {
            Ok(request) => ExchangeStep::Activation(request, digest),
            Err(ExchangeError::WrongKind { .. }) => {
                ExchangeStep::Return(ReturnRequest::from_xml(file)?, digest)
            }
            Err(error) => return Err(error.into()),
        };
        check_action(&step.engine_request().action).map_err(|error| ServiceError::Exchange {
            code: Code::ExchangeMalformed,
            message: format!("the request file is not accepted: {error}"),
        })?;
        if let ExchangeStep::Activation(request, _) = &step {
            if let Some(key) = &request.server_key {
                licet_engine::certificate::verifying_key_from_bytes(key).map_err(|_| {
                    ServiceError::Exchange {
                        code: Code::ExchangeMalformed,
                        message: "the request file's server key is not an Ed25519 public key"
                            .to_owned(),
                    }
                })?;
            }
        }
        Ok(step)
    }

    /// The license key the file names.
    pub fn license_key(&self) -> &str {
        match self {
            ExchangeStep::Activation(request, _) => &request.license_key,
            ExchangeStep::Return(request, _) => &request.license_key,
        }
    }

    /// Whom the file is for: a machine or a network license server.
    pub fn role(&self) -> Role {
        match self {
            ExchangeStep::Activation(request, _) => request.role,
            ExchangeStep::Return(request, _) => request.role,
        }
    }

    /// The engine request the file carries.
    pub fn engine_request(&self) -> Request {
        match self {
            ExchangeStep::Activation(request, _) => request.engine_request(),
            ExchangeStep::Return(request, _) => request.engine_request(),
        }
    }
}

/// Facts about a request that are not part of the engine's request.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    /// Who asked, for the audit log: `end-user`, `client:ID`, `administrator:NAME`, with the peer.
    pub actor_label: String,
    /// The dongle the client reports on its machine (standalone dongle licenses).
    pub client_dongle: Option<String>,
    /// The product of a trial validation (the engine's request names only the machine).
    pub product: Option<String>,
    /// The public key of the license server asking to be activated or revalidated (the
    /// `/v1/server/...` routes and license-server request files); its answer is a server license.
    pub server_key: Option<[u8; 32]>,
}

/// The answer to a request.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The engine's decision (effects included when allowed).
    pub decision: Decision,
    /// The signed certificate, when the decision issued one.
    pub certificate: Option<Certificate>,
    /// When the seat lease (or borrow) now ends, when the decision leased, renewed or borrowed.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// Position of the decision in the audit log ([`NOT_AUDITED`] for a denial of an unknown
    /// session, which is counted instead).
    pub audit_id: i64,
    /// The signed response file, when the request came as a request file and was allowed.
    pub response_file: Option<String>,
    /// The vendor-signed server license, when a license server was activated or revalidated.
    pub server_license: Option<ServerLicense>,
}

/// The licensing service shared by every handler.
#[derive(Debug, Clone)]
pub struct Licensing {
    store: Store,
    policies: Arc<Policies>,
    signing_key: Arc<SigningKey>,
    dongle: Arc<dyn DongleCheck>,
    challenges: DongleChallenges,
    clock: Arc<dyn Clock>,
    license_server: Option<Arc<LicenseServer>>,
    unaudited: Arc<std::sync::atomic::AtomicU64>,
}

impl Licensing {
    /// A service over an open store; records the loaded products in it.
    pub async fn new(
        store: Store,
        policies: Policies,
        signing_key: SigningKey,
        dongle: Arc<dyn DongleCheck>,
    ) -> Result<Licensing, StoreError> {
        let products: Vec<(String, String, String, String)> = policies
            .values()
            .map(|policy| {
                (
                    policy.product.id.clone(),
                    policy.product.name.clone(),
                    policy.product.version.clone(),
                    crate::keys::hex(&policy.hash),
                )
            })
            .collect();
        store.execute(RecordProducts { products }).await?;
        Ok(Licensing {
            store,
            policies: Arc::new(policies),
            challenges: DongleChallenges::from_signing_key(&signing_key),
            signing_key: Arc::new(signing_key),
            dongle,
            clock: Arc::new(SystemClock),
            license_server: None,
            unaudited: Arc::default(),
        })
    }

    /// The same service as a license server: `signing_key` (given to [`Licensing::new`]) is the
    /// server's own key, and only seat traffic within `server`'s verified server licenses is
    /// served (see [`crate::license_server`]).
    pub fn with_license_server(mut self, server: Arc<LicenseServer>) -> Licensing {
        self.license_server = Some(server);
        self
    }

    /// The license server's state, when this server is one.
    pub fn license_server(&self) -> Option<&Arc<LicenseServer>> {
        self.license_server.as_ref()
    }

    /// The same service reading time from `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Licensing {
        self.clock = clock;
        self
    }

    /// The time now, by the service's clock, in whole seconds.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now().trunc_subsecs(0)
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The loaded policies.
    pub fn policies(&self) -> &Policies {
        &self.policies
    }

    /// The policy of `product`.
    pub fn policy(&self, product: &str) -> Result<&Arc<Policy>, ServiceError> {
        self.policies
            .get(product)
            .ok_or_else(|| ServiceError::UnknownProduct(product.to_owned()))
    }

    /// The challenges client machines have their dongle sign.
    pub fn dongle_challenges(&self) -> &DongleChallenges {
        &self.challenges
    }

    /// The public key of the key this server signs with: the vendor's on an activation center
    /// (it verifies every certificate the center issues), the server's own on a license server.
    pub fn verifying_key(&self) -> ed25519_dalek::VerifyingKey {
        self.signing_key.verifying_key()
    }

    /// Decides `action` for `actor`, applies the effects, signs the certificate and audits it, in
    /// one transaction.
    pub async fn decide(
        &self,
        actor: Actor,
        action: Action,
        context: RequestContext,
    ) -> Result<Outcome, ServiceError> {
        self.decide_step(actor, action, context, None).await
    }

    /// Answers an activation or return request file: decides the request it carries and, when
    /// allowed, signs the response file in the same transaction (with the license's next update
    /// counter; an allowed return records the returned certificate serial through its effects).
    pub async fn exchange(
        &self,
        file: &[u8],
        actor_label: String,
    ) -> Result<(ExchangeStep, Outcome), ServiceError> {
        let step = ExchangeStep::parse(file)?;
        let outcome = self.answer_exchange(step.clone(), actor_label).await?;
        Ok((step, outcome))
    }

    /// Answers a request file parsed by [`ExchangeStep::parse`]; see [`Licensing::exchange`]. A
    /// file whose role does not fit the license's type (a license server's file for a
    /// standalone license, a machine's file for a network license) is denied with
    /// `WRONG_LICENSE_TYPE`, decided under the license's lock; only its audit entry is written.
    pub async fn answer_exchange(
        &self,
        step: ExchangeStep,
        actor_label: String,
    ) -> Result<Outcome, ServiceError> {
        let request = step.engine_request();
        let server_key = match &step {
            ExchangeStep::Activation(request, _) => request.server_key,
            ExchangeStep::Return(..) => None,
        };
        let context = RequestContext {
            actor_label,
            client_dongle: None,
            product: None,
            server_key,
        };
        self.decide_step(request.actor, request.action, context, Some(step))
            .await
    }

    async fn decide_step(
        &self,
        actor: Actor,
        action: Action,
        context: RequestContext,
        exchange: Option<ExchangeStep>,
    ) -> Result<Outcome, ServiceError> {
        let trial_product = match &action {
            Action::StartTrial { target, .. } => Some(target.product.clone()),
            Action::ValidateTrial { .. } => Some(context.product.clone().ok_or_else(|| {
                ServiceError::Invalid("a trial validation names its product".into())
            })?),
            _ => None,
        };
        if let Some(product) = &trial_product {
            self.policy(product)?;
        }
        let server_dongle = match action.kind() {
            RequestKind::Checkout | RequestKind::Heartbeat => self.dongle.present(),
            _ => None,
        };
        let job = DecideJob {
            policies: self.policies.clone(),
            signing_key: self.signing_key.clone(),
            request: Request { actor, action },
            trial_product,
            server_dongle,
            context,
            clock: self.clock.clone(),
            exchange,
            served: self.license_server.clone(),
        };
        let outcome = self.store.execute(job).await?;
        if outcome.audit_id == NOT_AUDITED {
            self.unaudited
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(outcome)
    }

    /// How many denials of unknown sessions were counted instead of audited since the service
    /// started.
    pub fn unaudited_denials(&self) -> u64 {
        self.unaudited.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Deletes leases and borrows that ended more than [`LEASE_RETENTION`] ago; how many.
    pub async fn sweep_leases(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.store
            .execute(SweepLeases {
                cutoff: now - LEASE_RETENTION,
            })
            .await
    }
}

job! {
    RecordProducts { products: Vec<(String, String, String, String)> } -> ();
    |this, records| {
        let now = Utc::now();
        for (id, name, version, hash) in &this.products {
            records.upsert_product(id, name, version, hash, now).await?;
        }
        Ok(())
    }
}

job! {
    SweepLeases { cutoff: DateTime<Utc> } -> u64;
    |this, records| { records.sweep_leases(this.cutoff).await }
}

job! {
    /// One request: lock, load, decide, apply, sign, audit.
    DecideJob {
        policies: Arc<Policies>,
        signing_key: Arc<SigningKey>,
        request: Request,
        trial_product: Option<String>,
        server_dongle: Option<String>,
        context: RequestContext,
        clock: Arc<dyn Clock>,
        exchange: Option<ExchangeStep>,
        served: Option<Arc<LicenseServer>>,
    } -> Outcome;
    |this, records| {
        match this.served.clone() {
            Some(server) => decide_served(server, this, records).await,
            None => decide_and_apply(this, records).await,
        }
    }
}

/// Loads what a decision needs of the license's seats into `state`, with indexed reads whatever
/// the size of the pool: the number of seats held (counted by the store), the caller's own lease
/// or borrow, and for a borrow the seats borrowed out (the engine looks for this machine among
/// them).
pub(crate) async fn load_seats<R: Records>(
    records: &mut R,
    key: &str,
    action: &Action,
    now: DateTime<Utc>,
    state: &mut State,
) -> Result<(), StoreError> {
    state.held_seats = Some(records.held_seats(key, now).await?);
    state.leases = match action.session() {
        Some(session) => records.lease(key, session).await?.into_iter().collect(),
        None => Vec::new(),
    };
    if let Action::Borrow { session, .. } = action {
        let borrowed = records.borrowed_leases(key, now).await?;
        state.leases.extend(
            borrowed
                .into_iter()
                .filter(|lease| lease.session != *session),
        );
    }
    Ok(())
}

/// Loads what a decision needs of the license's activations into `state`, with indexed reads
/// whatever their number: how many there are, and those that may be the request's machine's
/// (sharing a fingerprint component with a machine the request names, or its dongle).
async fn load_activations<R: Records>(
    records: &mut R,
    key: &str,
    action: &Action,
    context: &RequestContext,
    state: &mut State,
) -> Result<(), StoreError> {
    state.activation_count = Some(records.activation_count(key).await?);
    let mut bindings = Vec::new();
    match action {
        Action::Activate { machine, .. }
        | Action::Validate { machine, .. }
        | Action::Return { machine, .. } => {
            bindings.push(Binding::Fingerprint(machine.components.clone()));
        }
        Action::Transfer { from, to, .. } => {
            bindings.push(Binding::Fingerprint(from.components.clone()));
            bindings.push(Binding::Fingerprint(to.components.clone()));
        }
        _ => {}
    }
    if !bindings.is_empty() {
        if let Some(dongle) = &context.client_dongle {
            bindings.push(Binding::Dongle(dongle.clone()));
        }
    }
    // In the order they were made, each once, as the engine looks for the first that matches.
    let mut found = BTreeMap::new();
    for binding in &bindings {
        for record in records.activations_sharing(key, binding).await? {
            found.insert(record.id, record.activation);
        }
    }
    state.activations = found.into_values().collect();
    Ok(())
}

async fn decide_and_apply<R: Records>(
    job: DecideJob,
    records: &mut R,
) -> Result<Outcome, StoreError> {
    let DecideJob {
        policies,
        signing_key,
        request,
        trial_product,
        server_dongle,
        context,
        clock,
        exchange,
        served: _,
    } = job;
    let key = request.action.key().map(str::to_owned);
    let mut state = State::default();
    let mut order = None;
    let policy = match (&key, &trial_product) {
        (Some(key), _) => {
            let record = records.lock_license(key).await?;
            let product = record
                .as_ref()
                .map(|record| record.license.product.clone())
                .or_else(|| request.action.target().map(|target| target.product.clone()));
            if let Some(record) = record {
                order = record.order.clone();
                state.license = Some(record.license);
            }
            product
                .and_then(|product| policies.get(&product).cloned())
                .or_else(|| policies.values().next().cloned())
        }
        (None, Some(product)) => {
            records.lock_product(product).await?;
            policies.get(product).cloned()
        }
        (None, None) => None,
    };
    let now = clock.now().trunc_subsecs(0);
    let Some(policy) = policy else {
        let decision = Decision::deny(
            Code::ProductMismatch,
            "request.target",
            "the request names no product this server licenses",
        );
        let audit_id = audit(records, &context, &request, &decision, None, now).await?;
        return Ok(Outcome {
            decision,
            certificate: None,
            lease_expires_at: None,
            audit_id,
            response_file: None,
            server_license: None,
        });
    };
    if let Some(key) = &key {
        if state.license.is_some() {
            if let Some(order) = &order {
                state.order = records.order(order).await?.map(|record| record.order);
            }
            load_activations(records, key, &request.action, &context, &mut state).await?;
            load_seats(records, key, &request.action, now, &mut state).await?;
            // Removals, transfers and accepted fingerprint drift count against the transfer limit:
            // only those inside its period, and no more than it allows, are loaded.
            if let (Some(limit), true) = (
                &policy.transfer,
                matches!(
                    request.action.kind(),
                    RequestKind::Return
                        | RequestKind::Transfer
                        | RequestKind::Activate
                        | RequestKind::Validate
                ),
            ) {
                state.transfers = records
                    .transfers_since(key, now - limit.period, limit.max)
                    .await?;
            }
            // Only the returned certificate the request presents, if any, is loaded.
            if let Some(serial) = request.action.certificate_serial() {
                state.returned = records
                    .returned_certificate(key, serial)
                    .await?
                    .into_iter()
                    .collect();
            }
        }
    }
    if let (Action::StartTrial { machine, .. } | Action::ValidateTrial { machine }, Some(product)) =
        (&request.action, &trial_product)
    {
        state.trials = records.trials(product, &machine.components).await?;
    }
    state.dongle = match request.action.kind() {
        RequestKind::Checkout | RequestKind::Heartbeat => server_dongle,
        _ => context.client_dongle.clone(),
    };
    let mut refusal = match (&exchange, &state.license) {
        (Some(step), Some(license)) => role_refusal(&policy, license, step.role()),
        _ => None,
    };
    if refusal.is_none() {
        if let Some(license) = &state.license {
            let from_license_server = context.server_key.is_some()
                || exchange
                    .as_ref()
                    .is_some_and(|step| step.role() == Role::LicenseServer);
            if request.actor != Actor::Administrator {
                refusal = crate::center::pool_refusal(
                    &policy,
                    license,
                    &state,
                    &request.action,
                    from_license_server,
                    now,
                );
            }
        }
    }
    let decision = match refusal {
        Some(decision) => decision,
        None => decide(&policy, &state, &request, now),
    };
    let mut response_file = None;
    let mut certificate = None;
    let mut server_license = None;
    let mut lease_expires_at = None;
    if decision.is_allowed() {
        let key = key.as_deref().unwrap_or_default();
        let mut license = state.license.clone();
        let product = trial_product
            .as_deref()
            .unwrap_or(policy.product.id.as_str());
        let mut writer = LicenseRecords {
            records: &mut *records,
            key,
            product,
            for_license_server: context.server_key.is_some(),
        };
        let applied = effects::apply(&mut writer, license.as_mut(), &decision.effects, now).await?;
        lease_expires_at = applied.lease_expires_at;
        for claims in applied.certificates {
            match (context.server_key, &license) {
                (Some(server_key), Some(license)) => {
                    server_license = Some(crate::center::grant_server_license(
                        &policy,
                        license,
                        claims,
                        server_key,
                        &signing_key,
                    )?);
                }
                _ => certificate = Some(issue(claims.clone(), &signing_key)),
            }
        }
        if applied.license_changed {
            if let Some(license) = &license {
                records.save_license(license, now).await?;
            }
        }
        if let Some(step) = &exchange {
            let granted = match (&certificate, &server_license) {
                (Some(certificate), _) => Some(Granted::Certificate(certificate)),
                (None, Some(server_license)) => Some(Granted::ServerLicense(server_license)),
                (None, None) => None,
            };
            response_file = Some(respond(records, key, step, granted, now, &signing_key).await?);
        }
    }
    let issued_serial = certificate
        .as_ref()
        .map(|certificate| certificate.claims().serial.as_str())
        .or(server_license
            .as_ref()
            .map(|server_license| server_license.claims().serial.as_str()));
    let audit_id = audit(records, &context, &request, &decision, issued_serial, now).await?;
    Ok(Outcome {
        decision,
        certificate,
        lease_expires_at,
        audit_id,
        response_file,
        server_license,
    })
}

/// The denial of a request file whose role does not fit the license's type: a license server's
/// file for a license that is not a network kind, or a machine's file for a network license.
fn role_refusal(policy: &Policy, license: &License, role: Role) -> Option<Decision> {
    let license_type = policy.license_type(&license.license_type)?;
    let network = license_type.kind.is_network();
    if network == (role == Role::LicenseServer) {
        return None;
    }
    Some(Decision::deny(
        Code::WrongLicenseType,
        "exchange.role",
        format!(
            "a request file for a `{}` does not fit the {} license type `{}`",
            role.as_str(),
            license_type.kind,
            license.license_type
        ),
    ))
}

/// What an allowed activation granted: a machine's certificate or a license server's license.
enum Granted<'a> {
    Certificate(&'a Certificate),
    ServerLicense(&'a ServerLicense),
}

/// Signs the response file of an allowed exchange with the license's next update counter.
async fn respond<R: Records>(
    records: &mut R,
    key: &str,
    step: &ExchangeStep,
    granted: Option<Granted<'_>>,
    now: DateTime<Utc>,
    signing_key: &SigningKey,
) -> Result<String, StoreError> {
    let counter = records.bump_update_counter(key).await?;
    let counter = u64::try_from(counter).map_err(StoreError::corrupt)?;
    let failed = |error: ExchangeError| {
        StoreError::Conflict(format!("the response file could not be made: {error}"))
    };
    match step {
        ExchangeStep::Activation(request, digest) => match granted {
            Some(Granted::Certificate(certificate)) => {
                let response = ActivationResponse::issue(
                    request,
                    *digest,
                    certificate.clone(),
                    counter,
                    now,
                    signing_key,
                )
                .map_err(failed)?;
                Ok(response.to_xml())
            }
            Some(Granted::ServerLicense(server_license)) => {
                let response = ServerActivationResponse::issue(
                    request,
                    *digest,
                    server_license.clone(),
                    counter,
                    now,
                    signing_key,
                )
                .map_err(failed)?;
                Ok(response.to_xml())
            }
            None => Err(StoreError::Conflict(
                "the activation issued no certificate".into(),
            )),
        },
        ExchangeStep::Return(request, digest) => {
            let response = ReturnResponse::issue(request, *digest, counter, now, signing_key)
                .map_err(failed)?;
            Ok(response.to_xml())
        }
    }
}

#[derive(Serialize)]
struct DecisionDetail<'a> {
    request: &'a Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    certificate: Option<&'a str>,
}

/// The `audit_id` of a decision that was counted instead of audited.
pub const NOT_AUDITED: i64 = 0;

/// Whether `decision` denies a seat request (heartbeat, release, return of a borrowed seat) of
/// a non-administrator naming a session that holds nothing: such denials are counted
/// ([`Licensing::unaudited_denials`]), not each written to the audit log, so that made-up
/// sessions cannot fill it.
fn is_unknown_session_denial(request: &Request, decision: &Decision) -> bool {
    !decision.is_allowed()
        && request.actor != Actor::Administrator
        && matches!(decision.code, Code::LeaseNotFound | Code::BorrowNotFound)
        && matches!(
            request.action.kind(),
            RequestKind::Heartbeat | RequestKind::Release | RequestKind::ReturnBorrowed
        )
}

pub(crate) async fn audit<R: Records>(
    records: &mut R,
    context: &RequestContext,
    request: &Request,
    decision: &Decision,
    issued_serial: Option<&str>,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    if is_unknown_session_denial(request, decision) {
        return Ok(NOT_AUDITED);
    }
    let detail = DecisionDetail {
        request: &request.action,
        certificate: issued_serial,
    };
    let entry = AuditEntry {
        id: 0,
        at: now,
        actor: context.actor_label.clone(),
        action: request.action.kind().as_str().to_owned(),
        license_key: request.action.key().map(str::to_owned),
        verdict: if decision.is_allowed() {
            "allow"
        } else {
            "deny"
        }
        .to_owned(),
        code: decision.code.as_str().to_owned(),
        rule: decision.rule.clone(),
        message: decision.message.clone(),
        detail: serde_json::to_string(&detail).map_err(StoreError::corrupt)?,
    };
    records.append_audit(&entry).await
}

/// An audit entry for an administrator's change.
pub(crate) fn admin_audit(
    actor: &str,
    action: &str,
    license_key: Option<&str>,
    message: String,
    detail: &impl Serialize,
    now: DateTime<Utc>,
) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        id: 0,
        at: now,
        actor: actor.to_owned(),
        action: action.to_owned(),
        license_key: license_key.map(str::to_owned),
        verdict: "allow".to_owned(),
        code: "ADMIN_CHANGE".to_owned(),
        rule: "admin.api".to_owned(),
        message,
        detail: serde_json::to_string(detail).map_err(StoreError::corrupt)?,
    })
}

/// Whether `policy` uses the web (serial number) model.
pub fn is_web_model(policy: &Policy) -> bool {
    matches!(policy.model, Model::Web { .. })
}

/// The binding of a stored activation as the machine and dongle a request would name.
pub fn binding_as_machine(binding: &Binding) -> (licet_engine::Fingerprint, Option<String>) {
    match binding {
        Binding::Fingerprint(components) => (
            licet_engine::Fingerprint {
                components: components.clone(),
            },
            None,
        ),
        Binding::Dongle(serial) => (licet_engine::Fingerprint::default(), Some(serial.clone())),
    }
}

/// A license record's owner: its order's client, else its own client.
pub fn owner_of(record: &LicenseRecord, order_client: Option<&str>) -> Option<String> {
    order_client
        .map(str::to_owned)
        .or_else(|| record.license.client.clone())
}
