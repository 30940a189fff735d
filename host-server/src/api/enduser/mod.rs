//! End-user routes: activation, validation, return, transfer, seats, borrowing and trials. The
//! license key in the body authenticates the caller; a client or administrator token may be sent
//! to act as that account instead.

use axum::extract::State;
use axum::routing::post;
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use licet_engine::certificate::CertificateClaims;
use licet_engine::policy::Method;
use licet_engine::report::Report as _;
use licet_engine::{Action, Code, Fingerprint, ProductRef, Verdict};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem, PathsBuilder};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::{ContentBuilder, Required, ResponseBuilder};
use utoipa::{PartialSchema, ToSchema};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};

use super::error::AppError;
use super::extract::{ApiJson, Caller, Peer};
use super::openapi::schemas;
use super::AppState;
use crate::fields;
use crate::service::{Outcome, RequestContext};

pub use crate::fields::{MAX_COMPONENTS, MAX_FIELD};

mod bodies;
pub use bodies::*;

/// `POST /v1/dongle/challenge`: a fresh challenge; the dongle's signed answer goes with the next
/// activation, validation or return of a standalone dongle license (`dongle`).
#[utoipa::path(
    post,
    path = "/v1/dongle/challenge",
    summary = "A challenge for the machine's dongle to sign (standalone dongle licenses)",
    responses((status = 200, description = "success", body = DongleChallengeBody))
)]
pub async fn dongle_challenge(
    State(state): State<AppState>,
    peer: Peer,
) -> Result<Json<DongleChallengeBody>, AppError> {
    state.limiter.check(&peer.0)?;
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
        result?;
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

/// An end-user request body that asks the engine for one decision: every decision route is
/// [`decide`] over one of these.
pub(crate) trait DecisionRequest: DeserializeOwned + Send + 'static {
    /// How the route counts against the brute-force limits.
    const ATTEMPT: Attempt;

    /// The engine action the body asks for, and what the service needs beside it.
    fn action(self, state: &AppState) -> Result<(Action, Extras), AppError>;
}

/// The one handler of the end-user decision routes: the body's action, decided by the engine
/// and answered as a [`DecisionBody`] (or the refusal's error).
pub(crate) async fn decide<Body: DecisionRequest>(
    State(state): State<AppState>,
    caller: Caller,
    peer: Peer,
    ApiJson(body): ApiJson<Body>,
) -> Result<Json<DecisionBody>, AppError> {
    let (action, extras) = body.action(&state)?;
    answer(&state, &caller, &peer, action, Body::ATTEMPT, extras).await
}

/// An end-user decision route: where it is, what it does, and its route with its OpenAPI path
/// item, both made from its body type. The router, the document and the routes a transport
/// envelope may name are made from [`DECISION_ROUTES`].
#[derive(Debug, Clone, Copy)]
pub struct DecisionRoute {
    /// The path; the method is always `POST`.
    pub path: &'static str,
    /// What it does, with the code it answers when allowed.
    pub summary: &'static str,
    route: fn(&DecisionRoute) -> UtoipaMethodRouter<AppState>,
}

impl DecisionRoute {
    /// The route's `POST` handler, [`decide`] over its body, with its documentation.
    pub(crate) fn route(&self) -> UtoipaMethodRouter<AppState> {
        (self.route)(self)
    }
}

/// `route` answered by [`decide`] over `Body`, and its path item: the body's schema as the
/// request, a [`DecisionBody`] as the answer.
fn decision_route<Body: DecisionRequest + ToSchema>(
    route: &DecisionRoute,
) -> UtoipaMethodRouter<AppState> {
    let mut components = Vec::new();
    Body::schemas(&mut components);
    components.push((Body::name().into_owned(), Body::schema()));
    DecisionBody::schemas(&mut components);
    components.push((DecisionBody::name().into_owned(), DecisionBody::schema()));
    let json = |schema| ContentBuilder::new().schema(Some(schema)).build();
    let operation = OperationBuilder::new()
        .summary(Some(route.summary))
        .request_body(Some(
            RequestBodyBuilder::new()
                .required(Some(Required::True))
                .content("application/json", json(schemas::reference::<Body>()))
                .build(),
        ))
        .response(
            "200",
            ResponseBuilder::new().description("success").content(
                "application/json",
                json(schemas::reference::<DecisionBody>()),
            ),
        )
        .build();
    let paths = PathsBuilder::new()
        .path(route.path, PathItem::new(HttpMethod::Post, operation))
        .build();
    (components, paths, post(decide::<Body>))
}

/// `router` with the end-user decision routes of [`DECISION_ROUTES`], each with its path item.
pub(crate) fn decision_routes(router: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    DECISION_ROUTES
        .iter()
        .fold(router, |router, route| router.routes(route.route()))
}

/// The end-user decision routes.
pub const DECISION_ROUTES: [DecisionRoute; 11] = [
    DecisionRoute {
        path: "/v1/activate",
        summary: "Activate a license key on a machine (ACTIVATED)",
        route: decision_route::<ActivateBody>,
    },
    DecisionRoute {
        path: "/v1/validate",
        summary: "Periodic validation of an activation (VALID)",
        route: decision_route::<ValidateBody>,
    },
    DecisionRoute {
        path: "/v1/return",
        summary: "Return (remove) the machine's activation (RETURNED)",
        route: decision_route::<ReturnBody>,
    },
    DecisionRoute {
        path: "/v1/transfer",
        summary: "Move an activation to another machine (TRANSFERRED)",
        route: decision_route::<TransferBody>,
    },
    DecisionRoute {
        path: "/v1/seats/checkout",
        summary: "Take a network seat; the same session gets its seat back (SEAT_GRANTED)",
        route: decision_route::<CheckoutBody>,
    },
    DecisionRoute {
        path: "/v1/seats/heartbeat",
        summary: "Renew a seat lease (LEASE_RENEWED)",
        route: decision_route::<Heartbeat>,
    },
    DecisionRoute {
        path: "/v1/seats/release",
        summary: "Give a seat back (SEAT_RELEASED)",
        route: decision_route::<Release>,
    },
    DecisionRoute {
        path: "/v1/seats/borrow",
        summary: "Borrow a seat until a date (BORROWED)",
        route: decision_route::<BorrowBody>,
    },
    DecisionRoute {
        path: "/v1/seats/return-borrowed",
        summary: "Return a borrowed seat early (BORROW_RETURNED)",
        route: decision_route::<ReturnBorrowedBody>,
    },
    DecisionRoute {
        path: "/v1/trials/start",
        summary: "Start or resume the machine's trial (TRIAL_STARTED)",
        route: decision_route::<TrialStartBody>,
    },
    DecisionRoute {
        path: "/v1/trials/validate",
        summary: "Check the machine's trial (VALID)",
        route: decision_route::<TrialValidateBody>,
    },
];
