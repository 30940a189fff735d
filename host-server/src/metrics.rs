//! Prometheus metrics of one server (`GET /metrics`: administrators on the main listener, anyone
//! on the optional open metrics address of `metrics.listen`), in the OpenMetrics
//! text format of `prometheus-client`: requests by route and status, their latency, refusals by
//! the rate limits, decisions by action and code with the time the service took, transport
//! plugin calls by outcome with their time, the time of store transactions, and each pooled
//! license's seats, held and borrowed (read at the scrape).

use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Metric, Registry};

use crate::api::error::AppError;
use crate::api::extract::Admin;
use crate::api::AppState;

/// The media type of the OpenMetrics text format.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteStatus {
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    action: String,
    verdict: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginCallLabels {
    plugin: String,
    call: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginLabel {
    plugin: String,
}

/// How a transport plugin's call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginOutcome {
    /// It answered.
    Ok,
    /// It refused what it was given (a block with a typo, a file that is not its own).
    Refused,
    /// It failed: a trap, a limit, a call the host stopped.
    Failed,
}

impl PluginOutcome {
    fn as_str(self) -> &'static str {
        match self {
            PluginOutcome::Ok => "ok",
            PluginOutcome::Refused => "refused",
            PluginOutcome::Failed => "failed",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LicenseLabel {
    license: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabel {
    action: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// A histogram of durations in seconds, buckets from 100 µs to about 6.5 s.
pub(crate) fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 17))
}

/// Every metric of the server, and the registry that encodes them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RouteStatus, Counter>,
    request_seconds: HistogramFamily<RouteLabel>,
    rate_limited: Family<RouteLabel, Counter>,
    decisions: Family<DecisionLabels, Counter>,
    decision_seconds: HistogramFamily<ActionLabel>,
    plugin_calls: Family<PluginCallLabels, Counter>,
    plugin_call_seconds: HistogramFamily<PluginLabel>,
    seats: Family<LicenseLabel, Gauge>,
    seats_held: Family<LicenseLabel, Gauge>,
    seats_borrowed: Family<LicenseLabel, Gauge>,
}

/// The most licenses whose seats one scrape reports.
pub const MAX_LICENSES_REPORTED: i64 = 10_000;

/// Registers `metric` under `name` and hands it back (the registry keeps a handle to the same
/// values).
fn register<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

impl Metrics {
    /// A registry of the server's metrics; `transactions` is the store's histogram of
    /// transaction times (see [`crate::store::Store::transaction_seconds`]).
    pub fn new(transactions: Histogram) -> Metrics {
        let mut registry = Registry::with_prefix("licet");
        let requests = register(
            &mut registry,
            "http_requests",
            "HTTP requests answered, by route pattern and status",
            Family::<RouteStatus, Counter>::default(),
        );
        let request_seconds: HistogramFamily<RouteLabel> = register(
            &mut registry,
            "http_request_duration_seconds",
            "Time from a request's headers to its answer, by route pattern",
            Family::new_with_constructor(latency_histogram),
        );
        let rate_limited = register(
            &mut registry,
            "rate_limited",
            "Requests refused by a rate limit (429), by route pattern",
            Family::<RouteLabel, Counter>::default(),
        );
        let decisions = register(
            &mut registry,
            "decisions",
            "Licensing decisions, by action, verdict and code",
            Family::<DecisionLabels, Counter>::default(),
        );
        let decision_seconds: HistogramFamily<ActionLabel> = register(
            &mut registry,
            "decision_duration_seconds",
            "Time the licensing service took for one decision (store included), by action",
            Family::new_with_constructor(latency_histogram),
        );
        let plugin_calls = register(
            &mut registry,
            "plugin_calls",
            "Calls of the server's transport plugins, by plugin, call and outcome",
            Family::<PluginCallLabels, Counter>::default(),
        );
        let plugin_call_seconds: HistogramFamily<PluginLabel> = register(
            &mut registry,
            "plugin_call_duration_seconds",
            "Time of one transport plugin call, by plugin",
            Family::new_with_constructor(latency_histogram),
        );
        let seats = register(
            &mut registry,
            "seats",
            "Seats of each license with a pool",
            Family::<LicenseLabel, Gauge>::default(),
        );
        let seats_held = register(
            &mut registry,
            "seats_held",
            "Seats held now (leases and borrows not ended), by license",
            Family::<LicenseLabel, Gauge>::default(),
        );
        let seats_borrowed = register(
            &mut registry,
            "seats_borrowed",
            "Seats borrowed out now, by license",
            Family::<LicenseLabel, Gauge>::default(),
        );
        registry.register(
            "store_transaction_duration_seconds",
            "Time of one store transaction, commit included",
            transactions,
        );
        Metrics {
            registry,
            requests,
            request_seconds,
            rate_limited,
            decisions,
            decision_seconds,
            plugin_calls,
            plugin_call_seconds,
            seats,
            seats_held,
            seats_borrowed,
        }
    }

    /// Sets the seat gauges to `usage`, forgetting licenses no longer in it.
    pub fn set_seats(&self, usage: &[crate::store::SeatUsage]) {
        self.seats.clear();
        self.seats_held.clear();
        self.seats_borrowed.clear();
        let gauge = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        for license in usage {
            let label = LicenseLabel {
                license: license.license_key.clone(),
            };
            self.seats.get_or_create(&label).set(gauge(license.seats));
            self.seats_held
                .get_or_create(&label)
                .set(gauge(license.held));
            self.seats_borrowed
                .get_or_create(&label)
                .set(gauge(license.borrowed));
        }
    }

    /// Counts one answered request.
    pub fn request(&self, route: &str, status: u16, took: Duration) {
        let route = route.to_owned();
        self.requests
            .get_or_create(&RouteStatus {
                route: route.clone(),
                status,
            })
            .inc();
        let label = RouteLabel { route };
        self.request_seconds
            .get_or_create(&label)
            .observe(took.as_secs_f64());
        if status == 429 {
            self.rate_limited.get_or_create(&label).inc();
        }
    }

    /// Counts one decision.
    pub fn decision(&self, action: &str, allowed: bool, code: &str, took: Duration) {
        self.decisions
            .get_or_create(&DecisionLabels {
                action: action.to_owned(),
                verdict: if allowed { "allow" } else { "deny" }.to_owned(),
                code: code.to_owned(),
            })
            .inc();
        self.decision_seconds
            .get_or_create(&ActionLabel {
                action: action.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// Counts one call of the transport plugin `plugin` (its manifest name): `call` is the export
    /// (`decode_request`, `encode_answer`).
    pub fn plugin_call(&self, plugin: &str, call: &str, outcome: PluginOutcome, took: Duration) {
        self.plugin_calls
            .get_or_create(&PluginCallLabels {
                plugin: plugin.to_owned(),
                call: call.to_owned(),
                outcome: outcome.as_str().to_owned(),
            })
            .inc();
        self.plugin_call_seconds
            .get_or_create(&PluginLabel {
                plugin: plugin.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// The metrics in the OpenMetrics text format.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// The layer that counts every request by its route pattern (never its path, which may hold a
/// license key) and status.
pub async fn count_requests(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "-".to_owned(), |path| path.as_str().to_owned());
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    state
        .metrics
        .request(&route, response.status().as_u16(), started.elapsed());
    response
}

/// `GET /metrics`: the server's metrics, for administrators.
#[utoipa::path(
    get,
    path = "/metrics",
    summary = "Prometheus metrics of this server (OpenMetrics text)",
    responses((status = 200, description = "success", body = String, content_type = CONTENT_TYPE)),
    security(("administrator" = []))
)]
pub async fn serve(State(state): State<AppState>, _admin: Admin) -> Result<Response, AppError> {
    scrape(&state).await
}

/// `GET /metrics` on the open metrics address (`metrics.listen`): no token.
async fn serve_open(State(state): State<AppState>) -> Result<Response, AppError> {
    scrape(&state).await
}

/// Reads the seat gauges from the store and encodes every metric.
async fn scrape(state: &AppState) -> Result<Response, AppError> {
    let usage = state.licensing.seat_usage(MAX_LICENSES_REPORTED).await?;
    state.metrics.set_seats(&usage);
    let text = state
        .metrics
        .encode()
        .map_err(|error| AppError::Internal(format!("encoding the metrics: {error}")))?;
    let mut response = text.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    Ok(response)
}

/// The router of the open metrics address: `GET /metrics` without a token and nothing else
/// (every other path is `404 ROUTE_NOT_FOUND`).
pub fn open_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(serve_open))
        .fallback(crate::api::route_not_found)
        .method_not_allowed_fallback(crate::api::method_not_allowed)
        .with_state(state)
}
