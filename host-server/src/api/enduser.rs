//! End-user routes: activation, validation, return, transfer, seats, borrowing and trials. The
//! license key in the body authenticates the caller; a client or administrator token may be sent
//! to act as that account instead.

use axum::extract::State;
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use licet_engine::certificate::CertificateClaims;
use licet_engine::policy::Method;
use licet_engine::report::Report as _;
use licet_engine::{Action, Code, Fingerprint, ProductRef, Verdict};
use serde::{Deserialize, Serialize};

use super::error::AppError;
use super::extract::{ApiJson, Caller, Peer};
use super::AppState;
use crate::fields;
use crate::service::{Outcome, RequestContext};

pub use crate::fields::{MAX_COMPONENTS, MAX_FIELD};

/// The answer to an allowed request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DecisionBody {
    /// Always `allow` (denials are error answers).
    pub verdict: Verdict,
    /// The engine's code, e.g. `ACTIVATED`, `SEAT_GRANTED`.
    pub code: String,
    /// The deciding rule.
    pub rule: String,
    /// A sentence.
    pub message: String,
    /// The signed certificate in armored text, when one was issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// The certificate's claims, for convenience (verify `certificate`, don't trust these).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<CertificateClaims>,
    /// When the seat lease (or borrow) ends, for checkout, heartbeat and borrow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// The vendor-signed server license in armored text: what a license server was granted (its
    /// activation and revalidation), or the license a license server's seat certificate is
    /// signed under (verify the chain with the vendor key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_license: Option<String>,
}

impl DecisionBody {
    /// The answer to an outcome, or the error of a denial.
    pub fn from_outcome(outcome: Outcome) -> Result<DecisionBody, AppError> {
        if !outcome.decision.is_allowed() {
            return Err(AppError::denied(&outcome.decision));
        }
        Ok(DecisionBody {
            verdict: outcome.decision.verdict,
            code: outcome.decision.code.as_str().to_owned(),
            rule: outcome.decision.rule,
            message: outcome.decision.message,
            certificate: outcome.certificate.as_ref().map(|c| c.to_armored()),
            claims: outcome.certificate.map(|c| c.claims().clone()),
            lease_expires_at: outcome.lease_expires_at,
            server_license: outcome
                .server_license
                .as_ref()
                .map(|server_license| server_license.to_armored()),
        })
    }
}

/// `POST /v1/activate`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivateBody {
    /// License key.
    pub key: String,
    /// Product, edition and version being activated.
    pub target: ProductRef,
    /// Machine fingerprint: component name -> hashed value.
    pub machine: Fingerprint,
    /// `online` (default) or `manual`.
    #[serde(default)]
    pub method: Option<Method>,
    /// The machine's dongle answering a challenge of `POST /v1/dongle/challenge` (standalone
    /// dongle licenses).
    #[serde(default)]
    pub dongle: Option<DongleProofBody>,
}

/// A dongle's proof of presence: the challenge the server issued and the dongle's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DongleProofBody {
    /// The challenge from `POST /v1/dongle/challenge`, base64.
    pub challenge: String,
    /// The dongle's public key followed by its signature of the challenge, base64 (96 bytes).
    pub proof: String,
}

/// `POST /v1/dongle/challenge`: a challenge for the machine's dongle to sign.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DongleChallengeBody {
    /// 32 bytes, base64.
    pub challenge: String,
    /// The last moment an answer is accepted.
    pub expires_at: DateTime<Utc>,
}

/// `POST /v1/dongle/challenge`: a fresh challenge; the dongle's signed answer goes with the next
/// activation, validation or return of a standalone dongle license (`dongle`).
pub async fn dongle_challenge(
    State(state): State<AppState>,
    peer: Peer,
) -> Result<Json<DongleChallengeBody>, AppError> {
    state
        .limiter
        .check(&peer.0)
        .map_err(|limit| AppError::RateLimited {
            retry_after: limit.retry_after,
            scope: limit.scope,
        })?;
    let nonce = crate::keys::random_bytes::<8>()
        .map_err(|error| AppError::Internal(format!("no randomness: {error}")))?;
    let (challenge, expires_at) = state
        .licensing
        .dongle_challenges()
        .issue(state.licensing.now(), nonce)
        .map_err(|error| AppError::Internal(error.report()))?;
    Ok(Json(DongleChallengeBody {
        challenge: STANDARD.encode(challenge),
        expires_at,
    }))
}

/// The serial of the dongle whose proof came with a request, once the proof checks out.
pub(crate) fn proven_dongle(
    state: &AppState,
    dongle: Option<DongleProofBody>,
) -> Result<Option<String>, AppError> {
    let Some(dongle) = dongle else {
        return Ok(None);
    };
    let decode = |name: &str, text: &str| {
        if text.len() > 256 {
            return Err(AppError::InvalidBody(format!(
                "`dongle.{name}` is too long"
            )));
        }
        STANDARD
            .decode(text)
            .map_err(|_| AppError::InvalidBody(format!("`dongle.{name}` is not base64")))
    };
    let challenge = decode("challenge", &dongle.challenge)?;
    let proof = decode("proof", &dongle.proof)?;
    state
        .licensing
        .dongle_challenges()
        .verify(&challenge, &proof, state.licensing.now())
        .map(Some)
        .map_err(|error| proof_refusal(&error))
}

/// The refusal of a dongle proof sent with a request: a client error either way. A proof of the
/// wrong length is `422 INVALID_BODY`; one that does not verify (a challenge this server did not
/// issue or that expired, a public key that is no Ed25519 point, or a signature of another
/// challenge) is `403 DONGLE_ABSENT`: the machine did not prove its dongle is present.
fn proof_refusal(error: &crate::dongle::ChallengeError) -> AppError {
    use crate::dongle::ChallengeError;
    use licet_engine::dongle::DongleProofError;
    match error {
        ChallengeError::Malformed(_) | ChallengeError::Proof(DongleProofError::Length(_)) => {
            AppError::InvalidBody(format!("`dongle`: {error}"))
        }
        _ => AppError::DongleNotProven {
            rule: "dongle.proof".to_owned(),
            message: format!("the dongle did not prove its presence: {error}"),
        },
    }
}

/// `POST /v1/validate`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidateBody {
    /// License key.
    pub key: String,
    /// Machine fingerprint.
    pub machine: Fingerprint,
    /// The serial of the certificate the machine holds, if any (a returned one is refused).
    #[serde(default)]
    pub certificate_serial: Option<String>,
    /// The machine's dongle answering a challenge of `POST /v1/dongle/challenge` (standalone
    /// dongle licenses).
    #[serde(default)]
    pub dongle: Option<DongleProofBody>,
}

/// `POST /v1/return`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReturnBody {
    /// License key.
    pub key: String,
    /// The machine whose activation is removed.
    pub machine: Fingerprint,
    /// `online` (default) or `manual`.
    #[serde(default)]
    pub method: Option<Method>,
    /// The serial of the activation's current certificate; an end user's return without it (or
    /// with another) frees nothing.
    #[serde(default)]
    pub certificate_serial: Option<String>,
    /// The machine's dongle answering a challenge of `POST /v1/dongle/challenge` (standalone
    /// dongle licenses).
    #[serde(default)]
    pub dongle: Option<DongleProofBody>,
}

/// `POST /v1/transfer`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferBody {
    /// License key.
    pub key: String,
    /// The machine giving the license up.
    pub from: Fingerprint,
    /// The machine receiving it.
    pub to: Fingerprint,
}

/// `POST /v1/seats/checkout`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckoutBody {
    /// License key.
    pub key: String,
    /// Product, edition and version being run.
    pub target: ProductRef,
    /// Client machine.
    pub machine: Fingerprint,
    /// Session identifier; the same session gets the same seat back.
    pub session: String,
}

/// `POST /v1/seats/heartbeat`, `/v1/seats/release`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionBody {
    /// License key.
    pub key: String,
    /// Session holding the seat.
    pub session: String,
}

/// `POST /v1/seats/return-borrowed`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReturnBorrowedBody {
    /// License key.
    pub key: String,
    /// Session holding the borrowed seat.
    pub session: String,
    /// The serial of the borrow certificate given back; an end user's return without it (or
    /// with another) frees nothing.
    #[serde(default)]
    pub certificate_serial: Option<String>,
}

/// `POST /v1/seats/borrow`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BorrowBody {
    /// License key.
    pub key: String,
    /// Product, edition and version being run.
    pub target: ProductRef,
    /// Client machine.
    pub machine: Fingerprint,
    /// Session identifier.
    pub session: String,
    /// When the seat comes back by itself (RFC 3339).
    pub until: DateTime<Utc>,
}

/// `POST /v1/trials/start`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrialStartBody {
    /// Product, edition and version to try.
    pub target: ProductRef,
    /// Machine fingerprint.
    pub machine: Fingerprint,
}

/// `POST /v1/trials/validate`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrialValidateBody {
    /// Product of the trial.
    pub product: String,
    /// Machine fingerprint.
    pub machine: Fingerprint,
}

fn check_field(name: &'static str, value: &str) -> Result<(), AppError> {
    fields::check_field(name, value).map_err(|error| AppError::InvalidBody(error.report()))
}

/// Checks the sizes of what a request carries.
pub(crate) fn check_action(action: &Action) -> Result<(), AppError> {
    fields::check_action(action).map_err(|error| AppError::InvalidBody(error.report()))
}

/// How a route counts against the brute-force limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// An activation attempt: costs one attempt of the key and of the address.
    Counted,
    /// Seat traffic: refused only while the address is blocked; unknown keys cost the address.
    Checked,
}

/// What a request carries besides the engine's action.
#[derive(Debug, Clone, Default)]
pub(crate) struct Extras {
    /// The serial of the machine's dongle, proven by its answer to a challenge.
    pub client_dongle: Option<String>,
    /// The product of a trial validation.
    pub product: Option<String>,
    /// The public key of a license server being activated, revalidated or returned.
    pub server_key: Option<[u8; 32]>,
}

impl Extras {
    /// A request carrying the proven dongle serial, if any.
    pub fn dongle(client_dongle: Option<String>) -> Extras {
        Extras {
            client_dongle,
            ..Extras::default()
        }
    }
}

/// Runs one request through the service and answers it.
pub(crate) async fn answer(
    state: &AppState,
    caller: &Caller,
    peer: &Peer,
    action: Action,
    attempt: Attempt,
    extras: Extras,
) -> Result<Json<DecisionBody>, AppError> {
    let Extras {
        client_dongle,
        product,
        server_key,
    } = extras;
    check_action(&action)?;
    if let Some(dongle) = &client_dongle {
        check_field("dongle", dongle)?;
    }
    // Everyone but administrators is limited.
    let limited = !matches!(caller, Caller::Administrator(_));
    if limited {
        let result = match attempt {
            Attempt::Counted => state.limiter.attempt(&peer.0, action.key()),
            Attempt::Checked => state.limiter.check(&peer.0),
        };
        result.map_err(|limit| AppError::RateLimited {
            retry_after: limit.retry_after,
            scope: limit.scope,
        })?;
    }
    let key = action.key().map(str::to_owned);
    let kind = action.kind();
    // The dongle these actions need is the caller's own (standalone dongle licenses), not the
    // server's network dongle of seat traffic.
    let callers_dongle = matches!(
        action,
        Action::Activate { .. }
            | Action::Validate { .. }
            | Action::Return { .. }
            | Action::Transfer { .. }
    );
    let context = RequestContext {
        actor_label: caller.label(peer),
        client_dongle,
        product,
        server_key,
    };
    let started = std::time::Instant::now();
    let outcome = state
        .licensing
        .decide(caller.actor(), action, context)
        .await?;
    let decision = &outcome.decision;
    let took = started.elapsed();
    crate::logging::decision(kind.as_str(), key.as_deref(), caller.kind(), decision, took);
    state.metrics.decision(
        kind.as_str(),
        decision.is_allowed(),
        decision.code.as_str(),
        took,
    );
    if limited && !decision.is_allowed() {
        match attempt {
            // A denied attempt counts against the key, from this address only.
            Attempt::Counted => {
                if let Some(key) = &key {
                    state.limiter.fail(&peer.0, key);
                }
            }
            // Denied seat traffic (unknown keys, made-up sessions) costs the address.
            Attempt::Checked => state.limiter.penalize(&peer.0),
        }
    }
    if let (Caller::Client(client), Some(key)) = (caller, &key) {
        if matches!(decision.code, Code::LicenseNotFound | Code::AccessDenied) {
            return Err(not_owned(client, key));
        }
    }
    if callers_dongle && decision.code == Code::DongleAbsent {
        return Err(AppError::DongleNotProven {
            rule: decision.rule.clone(),
            message: decision.message.clone(),
        });
    }
    DecisionBody::from_outcome(outcome).map(Json)
}

/// What a client account is told about a key that is not its own, whether the key exists or
/// not (so that a client token cannot tell the two apart).
pub(crate) fn not_owned(client: &str, key: &str) -> AppError {
    AppError::Denied {
        code: Code::AccessDenied,
        rule: "access.owner".into(),
        message: format!("client `{client}` does not own license `{key}`"),
    }
}

/// `POST /v1/activate`: binds a key to a machine (or dongle); answers `ACTIVATED` and a certificate.
pub async fn activate(
    State(state): State<AppState>,
    caller: Caller,
    peer: Peer,
    ApiJson(body): ApiJson<ActivateBody>,
) -> Result<Json<DecisionBody>, AppError> {
    let action = Action::Activate {
        key: body.key,
        target: body.target,
        machine: body.machine,
        method: body.method.unwrap_or(Method::Online),
    };
    answer(
        &state,
        &caller,
        &peer,
        action,
        Attempt::Counted,
        Extras::dongle(proven_dongle(&state, body.dongle)?),
    )
    .await
}

/// `POST /v1/validate`: periodic validation; answers `VALID` and a fresh certificate.
pub async fn validate(
    State(state): State<AppState>,
    caller: Caller,
    peer: Peer,
    ApiJson(body): ApiJson<ValidateBody>,
) -> Result<Json<DecisionBody>, AppError> {
    let action = Action::Validate {
        key: body.key,
        machine: body.machine,
        certificate_serial: body.certificate_serial,
    };
    answer(
        &state,
        &caller,
        &peer,
        action,
        Attempt::Counted,
        Extras::dongle(proven_dongle(&state, body.dongle)?),
    )
    .await
}

/// `POST /v1/return`: removes the machine's activation; answers `RETURNED`.
pub async fn return_license(
    State(state): State<AppState>,
    caller: Caller,
    peer: Peer,
    ApiJson(body): ApiJson<ReturnBody>,
) -> Result<Json<DecisionBody>, AppError> {
    let action = Action::Return {
        key: body.key,
        machine: body.machine,
        method: body.method.unwrap_or(Method::Online),
        certificate_serial: body.certificate_serial,
    };
    answer(
        &state,
        &caller,
        &peer,
        action,
        Attempt::Counted,
        Extras::dongle(proven_dongle(&state, body.dongle)?),
    )
    .await
}

/// `POST /v1/transfer`: moves an activation; answers `TRANSFERRED` and the new certificate.
pub async fn transfer(
    State(state): State<AppState>,
    caller: Caller,
    peer: Peer,
    ApiJson(body): ApiJson<TransferBody>,
) -> Result<Json<DecisionBody>, AppError> {
    let action = Action::Transfer {
        key: body.key,
        from: body.from,
        to: body.to,
    };
    answer(
        &state,
        &caller,
        &peer,
        action,
        Attempt::Counted,
        Extras::default(),
    )
    .await
}

/// `POST /v1/seats/checkout`: takes (or gets back) a seat; answers `SEAT_GRANTED`.
pub async fn checkout(
    State(state): State<AppState>,
    caller: Caller,
    peer: Peer,
    ApiJson(body): ApiJson<CheckoutBody>,
) -> Result<Json<DecisionBody>, AppError> {
    let action = Action::Checkout {
        key: body.key,
        target: body.target,
        machine: body.machine,
        session: body.session,
    };
    answer(
        &state,
        &caller,
        &peer,
        action,
        Attempt::Checked,
        Extras::default(),
    )
    .await
}

/// `POST /v1/seats/heartbeat`: renews a lease; answers `LEASE_RENEWED`.
pub async fn heartbeat(
    State(state): State<AppState>,
    caller: Caller,
    peer: Peer,
    ApiJson(body): ApiJson<SessionBody>,
) -> Result<Json<DecisionBody>, AppError> {
    let action = Action::Heartbeat {
        key: body.key,
        session: body.session,
    };
    answer(
        &state,
        &caller,
        &peer,
        action,
        Attempt::Checked,
        Extras::default(),
    )
    .await
}

/// `POST /v1/seats/release`: gives a seat back; answers `SEAT_RELEASED`.
pub async fn release(
    State(state): State<AppState>,
    caller: Caller,
    peer: Peer,
    ApiJson(body): ApiJson<SessionBody>,
) -> Result<Json<DecisionBody>, AppError> {
    let action = Action::Release {
        key: body.key,
        session: body.session,
    };
    answer(
        &state,
        &caller,
        &peer,
        action,
        Attempt::Checked,
        Extras::default(),
    )
    .await
}

/// `POST /v1/seats/borrow`: borrows a seat until a date; answers `BORROWED` and a certificate.
pub async fn borrow(
    State(state): State<AppState>,
    caller: Caller,
    peer: Peer,
    ApiJson(body): ApiJson<BorrowBody>,
) -> Result<Json<DecisionBody>, AppError> {
    let action = Action::Borrow {
        key: body.key,
        target: body.target,
        machine: body.machine,
        session: body.session,
        until: body.until,
    };
    answer(
        &state,
        &caller,
        &peer,
        action,
        Attempt::Counted,
        Extras::default(),
    )
    .await
}

/// `POST /v1/seats/return-borrowed`: returns a borrowed seat early; answers `BORROW_RETURNED`.
pub async fn return_borrowed(
    State(state): State<AppState>,
    caller: Caller,
    peer: Peer,
    ApiJson(body): ApiJson<ReturnBorrowedBody>,
) -> Result<Json<DecisionBody>, AppError> {
    let action = Action::ReturnBorrowed {
        key: body.key,
        session: body.session,
        certificate_serial: body.certificate_serial,
    };
    answer(
        &state,
        &caller,
        &peer,
        action,
        Attempt::Checked,
        Extras::default(),
    )
    .await
}

/// `POST /v1/trials/start`: starts (or resumes) the machine's trial; answers `TRIAL_STARTED`.
pub async fn start_trial(
    State(state): State<AppState>,
    caller: Caller,
    peer: Peer,
    ApiJson(body): ApiJson<TrialStartBody>,
) -> Result<Json<DecisionBody>, AppError> {
    let action = Action::StartTrial {
        target: body.target,
        machine: body.machine,
    };
    answer(
        &state,
        &caller,
        &peer,
        action,
        Attempt::Counted,
        Extras::default(),
    )
    .await
}

/// `POST /v1/trials/validate`: checks the machine's trial; answers `VALID` and a certificate.
pub async fn validate_trial(
    State(state): State<AppState>,
    caller: Caller,
    peer: Peer,
    ApiJson(body): ApiJson<TrialValidateBody>,
) -> Result<Json<DecisionBody>, AppError> {
    check_field("product", &body.product)?;
    let action = Action::ValidateTrial {
        machine: body.machine,
    };
    answer(
        &state,
        &caller,
        &peer,
        action,
        Attempt::Checked,
        Extras {
            product: Some(body.product),
            ..Extras::default()
        },
    )
    .await
}
