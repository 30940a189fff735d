//! What the store keeps, as the rest of the server sees it, and the operations both backends offer
//! inside one transaction.

use std::collections::BTreeMap;
use std::future::Future;

use chrono::{DateTime, Utc};
use licet_engine::certificate::{Binding, CertificateKind};
use licet_engine::state::{
    Activation, License, LicenseStatus, LimitedTerms, Order, ReturnedCertificate, SeatLease, Term,
    TrialRecord,
};
use serde::Serialize;

use crate::error::StoreError;

/// A license with what only the store knows about it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = License)]
pub struct LicenseRecord {
    /// The license as the engine sees it.
    #[serde(flatten)]
    #[schema(value_type = crate::api::openapi::schemas::LicenseFields)]
    pub license: License,
    /// The order it belongs to (standard model).
    pub order: Option<String>,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
}

/// A client account of the standard model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientRecord {
    /// Client identifier.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Whether the client has an API token.
    pub has_token: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// An order of the standard model.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = Order)]
pub struct OrderRecord {
    /// The order as the engine sees it.
    #[serde(flatten)]
    #[schema(value_type = crate::api::openapi::schemas::OrderFields)]
    pub order: Order,
    /// The product ordered.
    pub product: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// A seat lease or borrow with the license it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeaseRecord {
    /// The license key.
    pub license_key: String,
    /// The lease.
    #[serde(flatten)]
    pub lease: SeatLease,
}

/// The seats of one license with a pool, as in use at one time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeatUsage {
    /// The license key.
    pub license_key: String,
    /// The seats of the license.
    pub seats: u64,
    /// Leases and borrows held (not ended).
    pub held: u64,
    /// Of them, borrows out (not ended, not returned early).
    pub borrowed: u64,
}

/// An activation with its stored identifier.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = Activation)]
pub struct ActivationRecord {
    /// Stored identifier.
    pub id: i64,
    /// The activation.
    #[serde(flatten)]
    #[schema(value_type = crate::api::openapi::schemas::ActivationFields)]
    pub activation: Activation,
}

/// One entry of the append-only audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = AuditEntry)]
pub struct AuditEntry {
    /// Position in the log (assigned by the store; 0 before it is stored).
    pub id: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Who: `end-user`, `client:ID` or `administrator:NAME`, and the peer address when known.
    pub actor: String,
    /// What: a request kind (`activate`, `checkout`, ...) or an administrator change.
    pub action: String,
    /// The license concerned, when any.
    pub license_key: Option<String>,
    /// `allow` or `deny`.
    #[schema(schema_with = crate::api::openapi::schemas::allow_or_deny)]
    pub verdict: String,
    /// The decision code, or `ADMIN_CHANGE`.
    pub code: String,
    /// The deciding rule.
    pub rule: String,
    /// A sentence.
    pub message: String,
    /// JSON details (JSON text): the request, the certificate serial, the change.
    pub detail: String,
}

/// A response file the online service center answered, kept so the end user can download it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResponseFileRecord {
    /// Stored identifier (0 before it is stored).
    pub id: i64,
    /// The license the file answers for.
    pub license_key: String,
    /// `activation` or `return`.
    pub kind: String,
    /// The file name offered for download.
    pub name: String,
    /// The signed response file.
    pub file: String,
    /// When it was answered.
    pub created_at: DateTime<Utc>,
}

/// How many response files are kept per license (older ones are deleted).
pub const KEPT_RESPONSE_FILES: i64 = 20;

/// A search of the audit log, newest entries first.
#[derive(Debug, Clone, Default)]
pub struct AuditSearch {
    /// Only entries about this license.
    pub license_key: Option<String>,
    /// Only entries about this client's licenses (directly or through its orders) or made by it.
    pub client: Option<String>,
    /// Only entries with this code.
    pub code: Option<String>,
    /// Only entries before this position (paging); all when absent.
    pub before: Option<i64>,
    /// At most this many.
    pub limit: i64,
}

/// How many denials one code had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DenialCount {
    /// The engine code.
    pub code: String,
    /// How many denials.
    pub count: i64,
    /// The latest of them.
    pub last_at: DateTime<Utc>,
}

/// Who holds an administrator or client token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenOwner {
    /// An administrator token and its name.
    Administrator(String),
    /// A client account.
    Client(String),
}

/// Filters of the license listing.
#[derive(Debug, Clone, Default)]
pub struct LicenseFilter {
    /// Only this product.
    pub product: Option<String>,
    /// Only licenses owned by this client (directly or through an order).
    pub client: Option<String>,
    /// Only licenses of this order.
    pub order: Option<String>,
    /// At most this many, ordered by key.
    pub limit: i64,
    /// Keys after this one.
    pub after: Option<String>,
}

/// The operations a backend offers inside one transaction.
///
/// `lock_license` and `lock_product` serialize every decision about the same license (or the same
/// product's trials) across connections and replicas: SQLite has one writer, PostgreSQL takes the
/// row lock with `SELECT ... FOR UPDATE`.
pub(crate) trait Records: Send {
    /// The license with `key`, locked until the transaction ends.
    fn lock_license(
        &mut self,
        key: &str,
    ) -> impl Future<Output = Result<Option<LicenseRecord>, StoreError>> + Send;
    /// Locks the product row that guards its trials.
    fn lock_product(
        &mut self,
        product: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The license with `key`, not locked.
    fn license(
        &mut self,
        key: &str,
    ) -> impl Future<Output = Result<Option<LicenseRecord>, StoreError>> + Send;
    /// Licenses matching the filter.
    fn licenses(
        &mut self,
        filter: &LicenseFilter,
    ) -> impl Future<Output = Result<Vec<LicenseRecord>, StoreError>> + Send;
    /// Stores a new license.
    fn insert_license(
        &mut self,
        record: &LicenseRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Writes back the mutable fields of a license (term, features, counters, status, limited).
    fn save_license(
        &mut self,
        license: &License,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The order with `id`.
    fn order(
        &mut self,
        id: &str,
    ) -> impl Future<Output = Result<Option<OrderRecord>, StoreError>> + Send;
    /// Stores a new order.
    fn insert_order(
        &mut self,
        record: &OrderRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Replaces an order's features and counters.
    fn save_order(&mut self, order: &Order) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The client with `id`.
    fn client(
        &mut self,
        id: &str,
    ) -> impl Future<Output = Result<Option<ClientRecord>, StoreError>> + Send;
    /// Stores a new client with the hash of its token.
    fn insert_client(
        &mut self,
        record: &ClientRecord,
        token_hash: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Replaces a client's token hash.
    fn set_client_token(
        &mut self,
        id: &str,
        token_hash: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Stores an administrator token hash.
    fn insert_admin_token(
        &mut self,
        name: &str,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Who holds the token with this hash.
    fn token_owner(
        &mut self,
        token_hash: &str,
    ) -> impl Future<Output = Result<Option<TokenOwner>, StoreError>> + Send;
    /// Records the product a loaded policy licenses.
    fn upsert_product(
        &mut self,
        id: &str,
        name: &str,
        version: &str,
        policy_hash: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Records an activation (its anchor is its binding unless it names one).
    fn insert_activation(
        &mut self,
        key: &str,
        activation: &Activation,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Records `serial` as the current certificate of the activation bound to `binding`; how many
    /// rows changed.
    fn set_activation_serial(
        &mut self,
        key: &str,
        binding: &Binding,
        serial: &str,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Replaces an activation's current binding (its anchor is kept); how many rows changed.
    fn rebind_activation(
        &mut self,
        key: &str,
        from: &Binding,
        to: &Binding,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Removes an activation; how many rows changed.
    fn delete_activation(
        &mut self,
        key: &str,
        binding: &Binding,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// How many activations the license has, without reading them: the count is kept in the same
    /// transaction as every activation written or deleted (0 for an unknown license).
    fn activation_count(
        &mut self,
        key: &str,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// The license's activations whose current binding or anchor shares at least one component
    /// (the same name and value) with `binding` (for a dongle: the same serial), each once, by id.
    /// One indexed lookup of `binding`'s components; the license's other activations are not read.
    fn activations_sharing(
        &mut self,
        key: &str,
        binding: &Binding,
    ) -> impl Future<Output = Result<Vec<ActivationRecord>, StoreError>> + Send;
    /// How many seats of the license are held at `now`, without reading its leases: every lease
    /// still counted that ended by `now` stops counting first (an indexed pass over just those),
    /// then the license's count is read. The count is kept in the same transaction as every
    /// lease written or deleted; callers hold the license's lock.
    fn held_seats(
        &mut self,
        key: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// The lease or borrow of `session`, if there is one.
    fn lease(
        &mut self,
        key: &str,
        session: &str,
    ) -> impl Future<Output = Result<Option<SeatLease>, StoreError>> + Send;
    /// The license's seats borrowed out at `now` (borrowed, not ended, not returned early).
    fn borrowed_leases(
        &mut self,
        key: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<SeatLease>, StoreError>> + Send;
    /// Stores (or replaces) a session's lease.
    fn put_lease(
        &mut self,
        key: &str,
        lease: &SeatLease,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Moves a session's lapse time; how many rows changed.
    fn renew_lease(
        &mut self,
        key: &str,
        session: &str,
        expires_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Marks a session's borrow returned early at `at` (it stays counted until its end); how many
    /// rows changed.
    fn end_borrow(
        &mut self,
        key: &str,
        session: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Removes a session's lease; how many rows changed.
    fn delete_lease(
        &mut self,
        key: &str,
        session: &str,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Removes leases and borrows that ended before `cutoff`; how many.
    fn sweep_leases(
        &mut self,
        cutoff: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// When the license's end-user removals and transfers after `since` happened: the latest
    /// `limit` of them (what a transfer limit of `limit` per period needs), newest first.
    fn transfers_since(
        &mut self,
        key: &str,
        since: DateTime<Utc>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<DateTime<Utc>>, StoreError>> + Send;
    /// Records a removal or transfer.
    fn insert_transfer(
        &mut self,
        key: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Trials of `product` on machines sharing at least one component with `components`.
    fn trials(
        &mut self,
        product: &str,
        components: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<Vec<TrialRecord>, StoreError>> + Send;
    /// Records a trial.
    fn insert_trial(
        &mut self,
        product: &str,
        trial: &TrialRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Increments the license's exchange update counter; returns the new value.
    fn bump_update_counter(
        &mut self,
        key: &str,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;
    /// The returned certificate of the license with `serial`, if it was returned.
    fn returned_certificate(
        &mut self,
        key: &str,
        serial: &str,
    ) -> impl Future<Output = Result<Option<ReturnedCertificate>, StoreError>> + Send;
    /// Records a returned certificate serial (kept once: the first return wins).
    fn insert_returned_serial(
        &mut self,
        key: &str,
        serial: &str,
        kind: CertificateKind,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Appends to the audit log; returns the entry's position.
    fn append_audit(
        &mut self,
        entry: &AuditEntry,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;
    /// Audit entries after `after`, optionally about one license, oldest first.
    fn audit(
        &mut self,
        license_key: Option<&str>,
        after: i64,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<AuditEntry>, StoreError>> + Send;
    /// Audit entries matching `search`, newest first.
    fn search_audit(
        &mut self,
        search: &AuditSearch,
    ) -> impl Future<Output = Result<Vec<AuditEntry>, StoreError>> + Send;
    /// Allowed seat decisions (`checkout`, `heartbeat`, `release`, `borrow`, `return-borrowed`)
    /// made at or after `from` and before `to`, optionally of one license, oldest first.
    fn seat_events(
        &mut self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        license_key: Option<&str>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<AuditEntry>, StoreError>> + Send;
    /// Denials made at or after `from` and before `to`, counted by code, most frequent first.
    fn denial_counts(
        &mut self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        license_key: Option<&str>,
    ) -> impl Future<Output = Result<Vec<DenialCount>, StoreError>> + Send;
    /// A client's argon2 password hash: `None` when there is no such client, `Some(None)` when it
    /// has no password.
    fn client_password(
        &mut self,
        id: &str,
    ) -> impl Future<Output = Result<Option<Option<String>>, StoreError>> + Send;
    /// Sets (or clears) a client's password hash; whether the client exists.
    fn set_client_password(
        &mut self,
        id: &str,
        password_hash: Option<&str>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Keeps a response file; returns its identifier.
    fn insert_response_file(
        &mut self,
        record: &ResponseFileRecord,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;
    /// The license's latest response files, newest first.
    fn response_files(
        &mut self,
        key: &str,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<ResponseFileRecord>, StoreError>> + Send;
    /// At most `limit` clients with identifiers after `after`, ordered by identifier.
    fn clients_page(
        &mut self,
        after: Option<&str>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<ClientRecord>, StoreError>> + Send;
    /// At most `limit` orders, optionally of one client, with identifiers after `after`, ordered
    /// by identifier.
    fn orders_page(
        &mut self,
        client: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<OrderRecord>, StoreError>> + Send;
    /// At most `limit` of the license's activations with identifiers after `after`, ordered by
    /// identifier.
    fn activations_page(
        &mut self,
        key: &str,
        after: i64,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<ActivationRecord>, StoreError>> + Send;
    /// The license's activation with the stored identifier `id`.
    fn activation_by_id(
        &mut self,
        key: &str,
        id: i64,
    ) -> impl Future<Output = Result<Option<ActivationRecord>, StoreError>> + Send;
    /// At most `limit` of the license's leases and borrows (lapsed ones included until they are
    /// swept) with sessions after `after`, ordered by session.
    fn leases_page(
        &mut self,
        key: &str,
        after: Option<&str>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<SeatLease>, StoreError>> + Send;
    /// At most `limit` leases and borrows held at `now`, optionally of one product, after the
    /// `(license key, session)` pair `after`, ordered by license key then session.
    fn held_leases_page(
        &mut self,
        product: Option<&str>,
        now: DateTime<Utc>,
        after: Option<(&str, &str)>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<LeaseRecord>, StoreError>> + Send;
    /// How many of the license's seats are borrowed out at `now` (borrowed, not ended, not
    /// returned early), counting at most `at_most` of them.
    fn borrowed_seats(
        &mut self,
        key: &str,
        now: DateTime<Utc>,
        at_most: i64,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// The seats of at most `limit` licenses with a pool, by key: their number and how many are
    /// held and borrowed at `now` (ends counted from the leases, as the listing of held seats
    /// does, so a lapsed lease is not in use even before a request sweeps it).
    fn seat_usage(
        &mut self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<SeatUsage>, StoreError>> + Send;
}

// ---- value encodings shared by both backends ---------------------------------------------------

pub(crate) fn to_secs(at: DateTime<Utc>) -> i64 {
    at.timestamp()
}

pub(crate) fn from_secs(secs: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp(secs, 0)
        .ok_or_else(|| StoreError::corrupt(format!("time `{secs}` is out of range")))
}

pub(crate) fn opt_from_secs(secs: Option<i64>) -> Result<Option<DateTime<Utc>>, StoreError> {
    secs.map(from_secs).transpose()
}

pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(StoreError::corrupt)
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(StoreError::corrupt)
}

pub(crate) fn status_name(status: LicenseStatus) -> &'static str {
    match status {
        LicenseStatus::Enabled => "enabled",
        LicenseStatus::Revoked => "revoked",
    }
}

pub(crate) fn status_from_name(name: &str) -> Result<LicenseStatus, StoreError> {
    match name {
        "enabled" => Ok(LicenseStatus::Enabled),
        "revoked" => Ok(LicenseStatus::Revoked),
        other => Err(StoreError::corrupt(format!("license status `{other}`"))),
    }
}

pub(crate) fn rental_end(term: Term) -> Option<i64> {
    match term {
        Term::Perpetual => None,
        Term::Rental { ends_at } => Some(to_secs(ends_at)),
    }
}

pub(crate) fn term_from(rental_end: Option<i64>) -> Result<Term, StoreError> {
    Ok(match rental_end {
        None => Term::Perpetual,
        Some(secs) => Term::Rental {
            ends_at: from_secs(secs)?,
        },
    })
}

pub(crate) fn limited_json(limited: &Option<LimitedTerms>) -> Result<Option<String>, StoreError> {
    limited.as_ref().map(to_json).transpose()
}

/// The columns of a license row, decoded.
pub(crate) struct LicenseColumns {
    pub key: String,
    pub product: String,
    pub license_type: String,
    pub edition: String,
    pub version: String,
    pub rental_ends_at: Option<i64>,
    pub seats: Option<i64>,
    pub features: String,
    pub counters: String,
    pub status: String,
    pub dongle: Option<String>,
    pub client: Option<String>,
    pub order: Option<String>,
    pub limited: Option<String>,
    pub created_at: i64,
}

/// The column list every license query selects, in [`LicenseColumns`] order.
macro_rules! license_columns {
    () => {
        "key, product, license_type, edition, version, rental_ends_at, seats, features, counters, \
         status, dongle, client_id, order_id, limited, created_at"
    };
}
pub(crate) use license_columns;

impl LicenseColumns {
    pub(crate) fn into_record(self) -> Result<LicenseRecord, StoreError> {
        let seats = self
            .seats
            .map(|seats| {
                u32::try_from(seats)
                    .map_err(|_| StoreError::corrupt(format!("seat count `{seats}`")))
            })
            .transpose()?;
        Ok(LicenseRecord {
            license: License {
                key: self.key,
                product: self.product,
                license_type: self.license_type,
                edition: self.edition,
                version: self.version,
                term: term_from(self.rental_ends_at)?,
                seats,
                features: from_json(&self.features)?,
                counters: from_json(&self.counters)?,
                status: status_from_name(&self.status)?,
                dongle: self.dongle,
                client: self.client,
                limited: self.limited.as_deref().map(from_json).transpose()?,
            },
            order: self.order,
            created_at: from_secs(self.created_at)?,
        })
    }
}

/// The columns of a lease row.
pub(crate) struct LeaseColumns {
    pub session: String,
    pub binding: String,
    pub leased_at: i64,
    pub expires_at: i64,
    pub borrowed_until: Option<i64>,
    pub certificate_serial: Option<String>,
    pub returned_at: Option<i64>,
}

/// The column list every lease query selects, in [`LeaseColumns`] order (`s.` is the lease
/// table's alias where it is joined).
macro_rules! lease_columns {
    () => {
        "session, binding, leased_at, expires_at, borrowed_until, certificate_serial, returned_at"
    };
    (s) => {
        "s.session, s.binding, s.leased_at, s.expires_at, s.borrowed_until, \
         s.certificate_serial, s.returned_at"
    };
}
pub(crate) use lease_columns;

impl LeaseColumns {
    /// The lease, decoded.
    pub(crate) fn into_lease(self) -> Result<SeatLease, StoreError> {
        Ok(SeatLease {
            session: self.session,
            binding: from_json(&self.binding)?,
            leased_at: from_secs(self.leased_at)?,
            expires_at: from_secs(self.expires_at)?,
            borrowed_until: opt_from_secs(self.borrowed_until)?,
            certificate_serial: self.certificate_serial,
            returned_at: opt_from_secs(self.returned_at)?,
        })
    }
}

/// The columns of an activation row, decoded.
pub(crate) fn activation_from(
    binding: &str,
    activated_at: i64,
    anchor: Option<&str>,
    certificate_serial: Option<String>,
) -> Result<Activation, StoreError> {
    Ok(Activation {
        binding: from_json(binding)?,
        activated_at: from_secs(activated_at)?,
        anchor: anchor.map(from_json).transpose()?,
        certificate_serial,
    })
}

/// How a returned certificate's kind is stored.
pub(crate) fn returned_kind_name(kind: CertificateKind) -> &'static str {
    match kind {
        CertificateKind::Borrow => "borrow",
        CertificateKind::Activation => "activation",
        CertificateKind::Seat => "seat",
        CertificateKind::Trial => "trial",
    }
}

/// A returned certificate's stored kind, decoded.
pub(crate) fn returned_kind_from(name: &str) -> Result<CertificateKind, StoreError> {
    match name {
        "activation" => Ok(CertificateKind::Activation),
        "borrow" => Ok(CertificateKind::Borrow),
        "seat" => Ok(CertificateKind::Seat),
        "trial" => Ok(CertificateKind::Trial),
        other => Err(StoreError::corrupt(format!(
            "returned certificate kind `{other}`"
        ))),
    }
}

/// The components of a fingerprint binding, for the trial index; empty for dongles.
pub(crate) fn binding_components(binding: &Binding) -> Vec<(String, String)> {
    match binding {
        Binding::Fingerprint(components) => components
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect(),
        Binding::Dongle(_) => Vec::new(),
    }
}

/// The name under which a dongle binding's serial is indexed: fingerprint component names are
/// never empty (policy validation rejects empty ones).
pub(crate) const DONGLE_COMPONENT: &str = "";

/// The index entries of one binding: its fingerprint components, or its dongle serial under
/// [`DONGLE_COMPONENT`].
pub(crate) fn indexed_components(binding: &Binding) -> Vec<(String, String)> {
    match binding {
        Binding::Fingerprint(components) => components
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect(),
        Binding::Dongle(serial) => vec![(DONGLE_COMPONENT.to_owned(), serial.clone())],
    }
}

/// The index entries of an activation: those of its current binding and of its anchor (the
/// binding itself when it has none), each once, sorted.
pub(crate) fn activation_components(
    binding: &Binding,
    anchor: Option<&Binding>,
) -> Vec<(String, String)> {
    let mut entries: std::collections::BTreeSet<(String, String)> =
        indexed_components(binding).into_iter().collect();
    if let Some(anchor) = anchor {
        entries.extend(indexed_components(anchor));
    }
    entries.into_iter().collect()
}
