//! `POST /v1/transport/{name}`: the server side of transport plugins.
//!
//! The configuration's `transports:` names vendor-signed transport plugin directories
//! (`licet:plugin@0.2.0`: a 0.1.0 transport has no server side and the server refuses to start
//! with it). A request to `/v1/transport/{name}` is handed to the plugin of that manifest name,
//! whose `accept.decode-request` turns what arrived into a payload (see "Transports end to end"
//! in `docs/plugins.md`):
//!
//! - a JSON envelope `{"method":"POST","route":"/v1/activate","body":{...}}` naming one of the
//!   end-user routes (the decision routes and [`OTHER_END_USER_ROUTES`]) is sent through the same router as an internal
//!   request, with the caller's address (for the rate limits) and `Authorization` header, and
//!   its answer becomes the payload `{"status":200,"body":{...}}`: the status and JSON body the
//!   API answered;
//! - anything else is an exchange request file, answered exactly as `POST /v1/exchange` answers
//!   it: the payload is the response file (a refusal is the API's JSON error, not wrapped).
//!
//! The answer payload goes back through the plugin's `accept.encode-answer`, with the content
//! type the plugin names. The plugin calls run on a blocking thread under the plugin host's
//! limits; a plugin that refuses what arrived is a 400 `TRANSPORT_REQUEST`, one that traps or hits
//! a limit a 500 `TRANSPORT_FAILED`.

use licet_engine::report::Report as _;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path as RoutePath, Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::Router;
use licet_plugin_host::{Answer, PluginError, PluginHost, TransportPlugin};
use serde::Deserialize;
use serde_json::{json, Value};
use tower::ServiceExt as _;

use super::error::AppError;
use super::extract::Peer;
use super::{AppState, MAX_BODY};
use crate::config::Config;
use crate::error::StartError;
use crate::metrics::{Metrics, PluginOutcome};

/// The routes an envelope may name besides the end-user decision routes
/// ([`DECISION_ROUTES`](super::enduser::DECISION_ROUTES), all `POST`): the dongle challenge and
/// the seat query.
pub const OTHER_END_USER_ROUTES: &[(&str, &str)] =
    &[("POST", "/v1/dongle/challenge"), ("GET", "/v1/seats/query")];

/// The method and route of `envelope`, when it names an end-user route: what
/// `licet_client::http::route` produces, the dongle challenge and the seat query.
fn end_user_route(envelope: &Envelope) -> Option<(&'static str, &'static str)> {
    let decision = super::enduser::DECISION_ROUTES
        .iter()
        .map(|route| ("POST", route.path));
    decision
        .chain(OTHER_END_USER_ROUTES.iter().copied())
        .find(|(method, route)| *method == envelope.method && *route == envelope.route)
}

/// The largest answer of the API read back for a transport (the API's answers are far smaller).
const MAX_ANSWER: usize = 4 << 20;

/// The transport plugins a server accepts requests through, by manifest name.
#[derive(Debug, Clone, Default)]
pub struct Transports {
    plugins: BTreeMap<String, Arc<TransportPlugin>>,
}

impl Transports {
    /// No transports: `/v1/transport/{name}` answers 404 for every name.
    pub fn none() -> Transports {
        Transports::default()
    }

    /// The manifest names of the transports, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.plugins.keys().map(String::as_str)
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty()
    }

    /// Transports a host loaded itself (already verified by its plugin host), by manifest name;
    /// of two with the same name the later one is kept.
    pub fn from_plugins(plugins: impl IntoIterator<Item = TransportPlugin>) -> Transports {
        Transports {
            plugins: plugins
                .into_iter()
                .map(|plugin| (plugin.manifest().name.clone(), Arc::new(plugin)))
                .collect(),
        }
    }

    /// The transports, in the order of their names.
    pub fn plugins(&self) -> impl Iterator<Item = &Arc<TransportPlugin>> {
        self.plugins.values()
    }

    /// The transport of manifest name `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<TransportPlugin>> {
        self.plugins.get(name)
    }
}

/// Loads the configuration's `transports:` with the vendor's public key: each must be a signed
/// transport plugin of `licet:plugin@0.2.0` (one with a server side), and no two may share a
/// name. Any failure stops the start-up.
pub fn load_transports(config: &Config) -> Result<Transports, StartError> {
    if config.transports.is_empty() {
        return Ok(Transports::none());
    }
    let vendor_key = crate::server::vendor_verifying_key(config)?;
    let host = PluginHost::new(vendor_key).map_err(|error| StartError::Transport {
        path: config.transports[0].clone(),
        message: error.report(),
    })?;
    let mut plugins = BTreeMap::new();
    for dir in &config.transports {
        let failed = |message: String| StartError::Transport {
            path: dir.clone(),
            message,
        };
        let plugin = load_one(&host, dir).map_err(|error| failed(error.report()))?;
        let name = plugin.manifest().name.clone();
        if plugins.insert(name.clone(), Arc::new(plugin)).is_some() {
            return Err(failed(format!("a second transport is named `{name}`")));
        }
    }
    Ok(Transports { plugins })
}

fn load_one(host: &PluginHost, dir: &Path) -> Result<TransportPlugin, PluginError> {
    let plugin = host.load_transport(dir)?;
    plugin.server_side()?;
    Ok(plugin)
}

/// What the transport route needs at a request: the transports and the router that answers the
/// requests they carry. Added to the served router as an extension
/// ([`crate::server::serve_with_transports`]); without it, every name is unknown.
#[derive(Debug, Clone)]
pub struct Accepting {
    transports: Transports,
    app: Router,
}

impl Accepting {
    /// `transports`, answered through `app` (the API router).
    pub fn new(transports: Transports, app: Router) -> Accepting {
        Accepting { transports, app }
    }

    /// The transports.
    pub fn transports(&self) -> &Transports {
        &self.transports
    }
}

/// `plugin`'s `decode-request` of an arrival of `content_type`, on a blocking thread, counted.
pub(crate) async fn decode_request(
    metrics: &Metrics,
    plugin: &Arc<TransportPlugin>,
    content_type: impl AsRef<str> + Send + 'static,
    body: impl AsRef<[u8]> + Send + 'static,
) -> Result<Vec<u8>, AppError> {
    call(metrics, plugin, "decode_request", move |plugin| {
        plugin.decode_request(content_type.as_ref(), body.as_ref())
    })
    .await
}

/// `plugin`'s `encode-answer` of the answer `payload`, on a blocking thread, counted.
pub(crate) async fn encode_answer(
    metrics: &Metrics,
    plugin: &Arc<TransportPlugin>,
    payload: impl AsRef<[u8]> + Send + 'static,
) -> Result<Answer, AppError> {
    call(metrics, plugin, "encode_answer", move |plugin| {
        plugin.encode_answer(payload.as_ref())
    })
    .await
}

/// Runs one plugin call on a blocking thread and counts it under `export`.
async fn call<T: Send + 'static>(
    metrics: &Metrics,
    plugin: &Arc<TransportPlugin>,
    export: &str,
    work: impl FnOnce(&TransportPlugin) -> Result<T, PluginError> + Send + 'static,
) -> Result<T, AppError> {
    let plugin = Arc::clone(plugin);
    let name = plugin.manifest().name.clone();
    let started = Instant::now();
    let result = tokio::task::spawn_blocking(move || work(&plugin))
        .await
        .map_err(|error| AppError::Internal(format!("transport `{name}`: {}", error.report())))?;
    let outcome = match &result {
        Ok(_) => PluginOutcome::Ok,
        Err(PluginError::Plugin { .. }) => PluginOutcome::Refused,
        Err(_) => PluginOutcome::Failed,
    };
    metrics.plugin_call(&name, export, outcome, started.elapsed());
    result.map_err(|error| plugin_error(&name, error))
}

fn plugin_error(name: &str, error: PluginError) -> AppError {
    match error {
        PluginError::Plugin { code, message, .. } => AppError::TransportRequest(format!(
            "the transport `{name}` refused the request ({code}): {message}"
        )),
        PluginError::Transport(_) => AppError::PayloadTooLarge,
        other => AppError::TransportFailed(other.report()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    method: String,
    route: String,
    #[serde(default)]
    body: Value,
}

/// What a payload asks for.
enum Carried {
    /// An end-user request: method, route and JSON body.
    Api {
        method: Method,
        route: &'static str,
        body: Value,
    },
    /// An exchange request file.
    Exchange(Vec<u8>),
}

fn carried(payload: Vec<u8>) -> Result<Carried, AppError> {
    let json = payload
        .iter()
        .find(|byte| !byte.is_ascii_whitespace())
        .is_some_and(|&byte| byte == b'{');
    if !json {
        return Ok(Carried::Exchange(payload));
    }
    let envelope: Envelope = serde_json::from_slice(&payload).map_err(|error| {
        AppError::TransportRequest(format!("the payload is not a request envelope: {error}"))
    })?;
    let (method, route) = end_user_route(&envelope).ok_or_else(|| {
        AppError::TransportRequest(format!(
            "`{} {}` is not an end-user route a transport carries",
            envelope.method, envelope.route
        ))
    })?;
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|error| AppError::Internal(error.report()))?;
    if method == Method::GET && !envelope.body.is_null() {
        return Err(AppError::TransportRequest(format!(
            "`GET {route}` takes no body"
        )));
    }
    Ok(Carried::Api {
        method,
        route,
        body: envelope.body,
    })
}

/// The internal request for `carried`, with what of the arriving request matters: the caller's
/// address and its `Authorization` header.
fn internal_request(carried: &Carried, arrived: &Request) -> Result<Request, AppError> {
    let (method, uri, content_type, body) = match carried {
        Carried::Api {
            method,
            route,
            body,
        } => {
            let bytes = if *method == Method::GET {
                Vec::new()
            } else {
                serde_json::to_vec(body).map_err(|error| AppError::Internal(error.report()))?
            };
            (method.clone(), *route, "application/json", bytes)
        }
        Carried::Exchange(file) => (
            Method::POST,
            "/v1/exchange",
            "application/xml",
            file.clone(),
        ),
    };
    let mut request = Request::new(Body::from(body));
    *request.method_mut() = method;
    *request.uri_mut() = uri
        .parse()
        .map_err(|error: axum::http::uri::InvalidUri| AppError::Internal(error.report()))?;
    let headers = request.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(authorization) = arrived.headers().get(header::AUTHORIZATION) {
        headers.insert(header::AUTHORIZATION, authorization.clone());
    }
    if let Some(peer) = arrived.extensions().get::<ConnectInfo<SocketAddr>>() {
        request.extensions_mut().insert(*peer);
    }
    Ok(request)
}

/// `POST /v1/transport/{name}`.
#[utoipa::path(
    post,
    path = "/v1/transport/{name}",
    summary = "A request through the transport plugin `name`, in its own encoding: an end-user request envelope or an exchange request file (see docs/plugins.md)",
    params(("name" = String, Path, min_length = 1, description = "the transport's manifest name")),
    request_body = Value,
    responses((status = 200, description = "success", body = Value))
)]
pub async fn accept(
    State(state): State<AppState>,
    peer: Peer,
    RoutePath(name): RoutePath<String>,
    request: Request,
) -> Result<Response, AppError> {
    let unknown = || AppError::NotFound(format!("transport `{name}`"));
    let accepting = request
        .extensions()
        .get::<Arc<Accepting>>()
        .cloned()
        .ok_or_else(unknown)?;
    let plugin = accepting
        .transports
        .plugins
        .get(&name)
        .cloned()
        .ok_or_else(unknown)?;
    // An address the limiter refuses gets no plugin call (its body is not even read), and a
    // request the plugin cannot read costs the address one attempt, as a key that does not
    // exist does.
    state.limiter.check(&peer.0)?;
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let (parts, body) = request.into_parts();
    let body: Bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| AppError::PayloadTooLarge)?;
    let arrived = Request::from_parts(parts, Body::empty());
    let payload = decode_request(&state.metrics, &plugin, content_type, body)
        .await
        .inspect_err(|_| state.limiter.penalize(&peer.0))?;
    let carried = carried(payload)?;
    let inner = internal_request(&carried, &arrived)?;
    let answered = accepting
        .app
        .clone()
        .oneshot(inner)
        .await
        .map_err(|error| AppError::Internal(error.report()))?;
    let status = answered.status();
    if matches!(carried, Carried::Exchange(_)) && !status.is_success() {
        // A refused exchange file answers as `POST /v1/exchange` does.
        return Ok(answered);
    }
    let answer_body = axum::body::to_bytes(answered.into_body(), MAX_ANSWER)
        .await
        .map_err(|error| AppError::Internal(error.report()))?;
    let payload = match carried {
        Carried::Exchange(_) => answer_body.to_vec(),
        Carried::Api { .. } => {
            let body: Value = serde_json::from_slice(&answer_body).map_err(|error| {
                AppError::Internal(format!("the API answered no JSON: {error}"))
            })?;
            serde_json::to_vec(&json!({ "status": status.as_u16(), "body": body }))
                .map_err(|error| AppError::Internal(error.report()))?
        }
    };
    let answer = encode_answer(&state.metrics, &plugin, payload).await?;
    let content_type = HeaderValue::from_str(&answer.content_type).map_err(|_| {
        AppError::TransportFailed(format!(
            "transport `{name}` named the content type {:?}",
            answer.content_type
        ))
    })?;
    Ok(([(header::CONTENT_TYPE, content_type)], answer.body).into_response())
}
