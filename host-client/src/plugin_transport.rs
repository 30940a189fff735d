//! The transport plugin transport: end-user requests through a vendor-signed transport plugin.
//!
//! [`PluginTransport`] builds the same request as [`HttpTransport`](crate::http::HttpTransport)
//! (the route and JSON body of [`crate::http::route`]) and hands the plugin a JSON envelope
//! `{"method":"POST","route":"/v1/activate","body":{...}}` as its payload. The plugin encodes it
//! for the wire (`wire.encode`, `licet:plugin@0.1.0` or `0.2.0`); the plugin host posts it to
//! the one URL the plugin's signed manifest allows, over the hosts' shared HTTP client (HTTPS,
//! an optional pinned certificate, plain HTTP on loopback or by opt-in), and the plugin decodes
//! the reply (`wire.decode`) into the answer envelope `{"status":200,"body":{...}}`: the status
//! and JSON body the server's API answered, read exactly as `HttpTransport` reads an answer.
//! On the server the plugin's own `accept` side unwraps the request at
//! `POST /v1/transport/{name}`; see "Transports end to end" in `docs/plugins.md`.
//!
//! As with every transport, certificates are verified by the client with the vendor key: a
//! plugin can lose or garble a reply, never forge a grant.

use licet_engine::report::Report as _;
use std::sync::Arc;

use licet_engine::dongle::{DongleProof, CHALLENGE_LEN};
use licet_engine::Request;
use licet_plugin_host::http::{HttpResponse, HttpSettings};
use licet_plugin_host::{HttpsClient, PluginError, TransportPlugin};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::http::{
    challenge_from_response, reply_from_response, route, route_with_dongle,
    seat_query_from_response, DONGLE_CHALLENGE_ROUTE, SEAT_QUERY_ROUTE,
};
use crate::transport::{Reply, SeatQuery, Transport, TransportError};

/// Sends end-user requests through a loaded transport plugin.
#[derive(Debug)]
pub struct PluginTransport {
    plugin: Arc<TransportPlugin>,
    client: HttpsClient,
    product: String,
}

#[derive(Deserialize)]
struct AnswerEnvelope {
    status: u16,
    #[serde(default)]
    body: Value,
}

impl PluginTransport {
    /// A transport through `plugin` (loaded with
    /// [`PluginHost::load_transport`](licet_plugin_host::PluginHost::load_transport)) for
    /// `product` (the product id, which trial validation names), over the default HTTP settings.
    pub fn new(plugin: TransportPlugin, product: &str) -> PluginTransport {
        PluginTransport::shared(Arc::new(plugin), product)
    }

    /// Like [`PluginTransport::new`], over a plugin shared with other transports (a product
    /// bundle's `online` plugin).
    pub fn shared(plugin: Arc<TransportPlugin>, product: &str) -> PluginTransport {
        PluginTransport {
            plugin,
            client: HttpsClient::default(),
            product: product.to_owned(),
        }
    }

    /// Uses `settings` for the HTTP the host does for the plugin (timeouts, answer cap, plain
    /// HTTP off loopback, a pinned certificate).
    pub fn with_http_settings(mut self, settings: HttpSettings) -> PluginTransport {
        self.client = HttpsClient::new(settings);
        self
    }

    /// The plugin.
    pub fn plugin(&self) -> &TransportPlugin {
        &self.plugin
    }

    /// Sends `method` to `route` with `body` through the plugin and returns the answer the API
    /// gave, as an HTTP answer.
    fn exchange(
        &self,
        method: &str,
        route: &str,
        body: Option<&Value>,
    ) -> Result<HttpResponse, TransportError> {
        let mut envelope = json!({ "method": method, "route": route });
        if let Some(body) = body {
            envelope["body"] = body.clone();
        }
        let payload = serde_json::to_vec(&envelope)
            .map_err(|error| TransportError::Unsupported(error.report()))?;
        let answer = self
            .plugin
            .exchange_http(&self.client, &payload)
            .map_err(plugin_error)?;
        let answer: AnswerEnvelope = serde_json::from_slice(&answer).map_err(|error| {
            TransportError::InvalidReply(format!("not an answer envelope: {error}"))
        })?;
        let body = serde_json::to_vec(&answer.body)
            .map_err(|error| TransportError::InvalidReply(error.report()))?;
        Ok(HttpResponse {
            status: answer.status,
            content_type: Some("application/json".to_owned()),
            next_page: None,
            body,
        })
    }
}

/// A failed plugin exchange as a transport error: the host's HTTP failures as
/// [`HttpTransport`](crate::http::HttpTransport) reports them, the plugin's own and the
/// sandbox's as [`TransportError::Plugin`].
fn plugin_error(error: PluginError) -> TransportError {
    match error {
        PluginError::Http(error) => error.into(),
        other => TransportError::Plugin(other.report()),
    }
}

impl Transport for PluginTransport {
    fn send(&mut self, request: &Request) -> Result<Reply, TransportError> {
        let (path, body) = route(request, &self.product)?;
        reply_from_response(&self.exchange("POST", path, Some(&body))?)
    }

    fn dongle_challenge(&mut self) -> Result<[u8; CHALLENGE_LEN], TransportError> {
        challenge_from_response(&self.exchange("POST", DONGLE_CHALLENGE_ROUTE, None)?)
    }

    fn send_with_dongle(
        &mut self,
        request: &Request,
        challenge: &[u8; CHALLENGE_LEN],
        proof: &DongleProof,
    ) -> Result<Reply, TransportError> {
        let (path, body) = route_with_dongle(request, &self.product, challenge, proof)?;
        reply_from_response(&self.exchange("POST", path, Some(&body))?)
    }

    fn seat_query(&mut self) -> Result<SeatQuery, TransportError> {
        seat_query_from_response(&self.exchange("GET", SEAT_QUERY_ROUTE, None)?)
    }
}
