//! The HTTP transport: engine requests to `licet-server`'s `/v1` API over HTTPS (or plain HTTP
//! on loopback).
//!
//! [`HttpTransport`] maps each end-user [`Action`] to its route and JSON body, sends it through
//! the hosts' shared client ([`licet_plugin_host::http::HttpAgent`]: `ureq` with rustls; connect,
//! send and receive timeouts, a cap on the answer's size, no redirects followed, one connection
//! per request) and maps the answer back to a [`Reply`]: `200` is the allowed decision with its
//! certificate, a refusal carrying an engine code is a denied decision, anything else a
//! [`TransportError`]. [`HttpTransport::request`] sends any other request (a method, a path, a
//! body and a bearer token) and returns the answer as it is; `licet-server admin` speaks to the
//! administrator API with it.
//!
//! Server addresses are `https://host[:port][/prefix]`, `http://host[:port][/prefix]`, or
//! `host:port[/prefix]` (the license server's address and port as end users type them), which
//! means `https://host:port`, or `http://host:port` on loopback (`127.0.0.0/8`, `::1`,
//! `localhost`). Plain HTTP to any other host is refused ([`TransportError::PlainHttpRefused`])
//! unless [`HttpTransport::allow_plain_http`] is called. The server's certificate must chain to the
//! Mozilla roots (`webpki-roots`), or, when the vendor pins one
//! ([`HttpTransport::with_pinned_certificate`]), to the pinned certificate alone. Certificates are
//! signed by the vendor (or by a license server under a vendor-signed server license) and verified
//! by the client either way, so the transport cannot forge a grant; TLS keeps license keys and
//! sessions private on the wire.

use licet_engine::report::Report as _;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use licet_engine::dongle::{DongleProof, CHALLENGE_LEN};
use licet_engine::policy::Method;
use licet_engine::{Action, Actor, Code, Decision, Request, Verdict};
use licet_plugin_host::http::{HttpAgent, HttpRequest};
pub use licet_plugin_host::http::{
    HttpResponse, HttpSettings, PinnedCertificate, Scheme, ServerUrl, DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT,
};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::transport::{Reply, SeatQuery, Transport, TransportError};

/// Sends engine requests to `licet-server` over HTTPS (or plain HTTP on loopback).
#[derive(Debug, Clone)]
pub struct HttpTransport {
    url: ServerUrl,
    product: String,
    agent: HttpAgent,
}

impl HttpTransport {
    /// A transport to the server at `url` (`https://host[:port]`, `http://host[:port]` or
    /// `host:port`) for `product` (the product id, needed by trial validation, whose request
    /// names only the machine).
    pub fn new(url: &str, product: &str) -> Result<HttpTransport, TransportError> {
        Ok(HttpTransport {
            url: ServerUrl::parse(url)?,
            product: product.to_owned(),
            agent: HttpAgent::new(HttpSettings::default()),
        })
    }

    /// The server's address.
    pub fn url(&self) -> &ServerUrl {
        &self.url
    }

    fn with_settings(mut self, change: impl FnOnce(&mut HttpSettings)) -> HttpTransport {
        let mut settings = self.agent.settings().clone();
        change(&mut settings);
        self.agent = HttpAgent::new(settings);
        self
    }

    /// Uses `settings` for the connection (timeouts, answer cap, plain HTTP off loopback, a
    /// pinned certificate).
    pub fn with_http_settings(mut self, settings: HttpSettings) -> HttpTransport {
        self.agent = HttpAgent::new(settings);
        self
    }

    /// Sets the connect, read and write timeout (and twice it for a whole exchange).
    pub fn with_timeout(self, timeout: Duration) -> HttpTransport {
        self.with_settings(|settings| settings.timeout = timeout.max(Duration::from_millis(1)))
    }

    /// Sets the largest answer read; a larger one is [`TransportError::TooLarge`].
    pub fn with_max_response_bytes(self, bytes: usize) -> HttpTransport {
        self.with_settings(|settings| settings.max_response_bytes = bytes.max(64))
    }

    /// Allows plain `http://` to a server that is not on this machine (license keys then travel
    /// in clear text: only on a trusted network).
    pub fn allow_plain_http(self) -> HttpTransport {
        self.with_settings(|settings| settings.allow_plain_http = true)
    }

    /// Trusts only `certificate` (the server's own, or the CA that issued it) for the server's
    /// TLS certificate, instead of the public roots.
    pub fn with_pinned_certificate(self, certificate: PinnedCertificate) -> HttpTransport {
        self.with_settings(|settings| settings.pinned_certificate = Some(certificate))
    }

    /// Like [`HttpTransport::with_pinned_certificate`], from the certificate's DER or PEM bytes.
    pub fn with_pinned_certificate_bytes(
        self,
        certificate: &[u8],
    ) -> Result<HttpTransport, TransportError> {
        Ok(self.with_pinned_certificate(PinnedCertificate::from_bytes(certificate)?))
    }

    /// Posts `body` with `content_type` to `path` (e.g. `/v1/exchange`) and returns the answer
    /// whatever its status.
    pub fn post(
        &self,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<HttpResponse, TransportError> {
        self.request("POST", path, Some((content_type, body)), None)
    }

    /// Gets `path` (e.g. `/v1/seats/query`) and returns the answer whatever its status.
    pub fn get(&self, path: &str) -> Result<HttpResponse, TransportError> {
        self.request("GET", path, None, None)
    }

    /// What the license server serves (`GET /v1/seats/query`).
    pub fn query_seats(&self) -> Result<SeatQuery, TransportError> {
        seat_query_from_response(&self.get("/v1/seats/query")?)
    }

    /// Sends `method` (`GET`, `POST`, `PATCH`, `DELETE`, ...) to `path` with an optional body
    /// (content type and bytes) and an optional bearer token (`Authorization: Bearer TOKEN`), and
    /// returns the answer whatever its status. A method, path, content type or token that could
    /// break the request's head is refused before connecting, and so is plain HTTP to a server
    /// that is not on this machine unless it was allowed.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, &[u8])>,
        bearer: Option<&str>,
    ) -> Result<HttpResponse, TransportError> {
        let request = HttpRequest {
            method,
            path,
            body,
            bearer,
        };
        Ok(self.agent.send(&self.url, &request)?)
    }
}

impl HttpTransport {
    fn post_json(&self, path: &str, body: &Value) -> Result<HttpResponse, TransportError> {
        let body = serde_json::to_vec(body)
            .map_err(|error| TransportError::Unsupported(error.report()))?;
        self.post(path, "application/json", &body)
    }
}

impl Transport for HttpTransport {
    fn send(&mut self, request: &Request) -> Result<Reply, TransportError> {
        let (path, body) = route(request, &self.product)?;
        reply_from_response(&self.post_json(path, &body)?)
    }

    fn dongle_challenge(&mut self) -> Result<[u8; CHALLENGE_LEN], TransportError> {
        challenge_from_response(&self.post_json(DONGLE_CHALLENGE_ROUTE, &Value::Null)?)
    }

    fn send_with_dongle(
        &mut self,
        request: &Request,
        challenge: &[u8; CHALLENGE_LEN],
        proof: &DongleProof,
    ) -> Result<Reply, TransportError> {
        let (path, body) = route_with_dongle(request, &self.product, challenge, proof)?;
        reply_from_response(&self.post_json(path, &body)?)
    }

    fn seat_query(&mut self) -> Result<SeatQuery, TransportError> {
        self.query_seats()
    }
}

/// The route of a dongle challenge (`POST`, no body).
pub const DONGLE_CHALLENGE_ROUTE: &str = "/v1/dongle/challenge";
/// The route of a seat query (`GET`).
pub const SEAT_QUERY_ROUTE: &str = "/v1/seats/query";

/// The challenge an answer to [`DONGLE_CHALLENGE_ROUTE`] carries.
pub fn challenge_from_response(
    response: &HttpResponse,
) -> Result<[u8; CHALLENGE_LEN], TransportError> {
    if response.status != 200 {
        // A refusal (rate limit, ...) reads like any other.
        return match reply_from_response(response) {
            Ok(_) => Err(TransportError::InvalidReply(format!(
                "HTTP {} to a dongle challenge request",
                response.status
            ))),
            Err(error) => Err(error),
        };
    }
    #[derive(Deserialize)]
    struct ChallengeBody {
        challenge: String,
    }
    let body: ChallengeBody = serde_json::from_slice(&response.body).map_err(|error| {
        TransportError::InvalidReply(format!("not a dongle challenge: {error}"))
    })?;
    STANDARD
        .decode(&body.challenge)
        .ok()
        .and_then(|bytes| <[u8; CHALLENGE_LEN]>::try_from(bytes).ok())
        .ok_or_else(|| {
            TransportError::InvalidReply("the dongle challenge is not 32 bytes".to_owned())
        })
}

/// What an answer to [`SEAT_QUERY_ROUTE`] says the license server serves.
pub fn seat_query_from_response(response: &HttpResponse) -> Result<SeatQuery, TransportError> {
    if response.status != 200 {
        return match reply_from_response(response) {
            Ok(reply) => Err(TransportError::Refused {
                status: response.status,
                code: reply.decision.code.as_str().to_owned(),
                message: reply.decision.message,
            }),
            Err(TransportError::InvalidReply(_)) if matches!(response.status, 404 | 405) => {
                Err(TransportError::InvalidReply(format!(
                    "HTTP {}: the server does not answer seat queries; is it a license server?",
                    response.status
                )))
            }
            Err(error) => Err(error),
        };
    }
    serde_json::from_slice(&response.body)
        .map_err(|error| TransportError::InvalidReply(format!("not a seat query answer: {error}")))
}

/// The route and JSON body of an end-user request that carries the dongle's answer `proof` to
/// `challenge` (activation, validation and return only).
pub fn route_with_dongle(
    request: &Request,
    product: &str,
    challenge: &[u8; CHALLENGE_LEN],
    proof: &DongleProof,
) -> Result<(&'static str, Value), TransportError> {
    let (path, mut body) = route(request, product)?;
    if !matches!(
        request.action,
        Action::Activate { .. } | Action::Validate { .. } | Action::Return { .. }
    ) {
        return Err(TransportError::Unsupported(format!(
            "`{}` requests carry no dongle proof",
            request.action.kind().as_str()
        )));
    }
    body["dongle"] = json!({
        "challenge": STANDARD.encode(challenge),
        "proof": STANDARD.encode(proof.to_bytes()),
    });
    Ok((path, body))
}

/// The route and JSON body of an end-user request. `product` is the product id (trial validation
/// names it; the engine request does not).
pub fn route(request: &Request, product: &str) -> Result<(&'static str, Value), TransportError> {
    if request.actor != Actor::EndUser {
        return Err(TransportError::Unsupported(
            "only end-user requests go over the HTTP transport".to_owned(),
        ));
    }
    let method = |method: &Method| match method {
        Method::Online => "online",
        Method::Manual => "manual",
    };
    Ok(match &request.action {
        Action::StartTrial { target, machine } => (
            "/v1/trials/start",
            json!({ "target": target, "machine": machine }),
        ),
        Action::ValidateTrial { machine } => (
            "/v1/trials/validate",
            json!({ "product": product, "machine": machine }),
        ),
        Action::Activate {
            key,
            target,
            machine,
            method: how,
        } => (
            "/v1/activate",
            json!({ "key": key, "target": target, "machine": machine, "method": method(how) }),
        ),
        Action::Validate {
            key,
            machine,
            certificate_serial,
        } => (
            "/v1/validate",
            with_serial(
                json!({ "key": key, "machine": machine }),
                certificate_serial,
            ),
        ),
        Action::Return {
            key,
            machine,
            method: how,
            certificate_serial,
        } => (
            "/v1/return",
            with_serial(
                json!({ "key": key, "machine": machine, "method": method(how) }),
                certificate_serial,
            ),
        ),
        Action::Transfer { key, from, to } => (
            "/v1/transfer",
            json!({ "key": key, "from": from, "to": to }),
        ),
        Action::Checkout {
            key,
            target,
            machine,
            session,
        } => (
            "/v1/seats/checkout",
            json!({ "key": key, "target": target, "machine": machine, "session": session }),
        ),
        Action::Heartbeat { key, session } => (
            "/v1/seats/heartbeat",
            json!({ "key": key, "session": session }),
        ),
        Action::Release { key, session } => (
            "/v1/seats/release",
            json!({ "key": key, "session": session }),
        ),
        Action::Borrow {
            key,
            target,
            machine,
            session,
            until,
        } => (
            "/v1/seats/borrow",
            json!({ "key": key, "target": target, "machine": machine, "session": session,
                    "until": until }),
        ),
        Action::ReturnBorrowed {
            key,
            session,
            certificate_serial,
        } => (
            "/v1/seats/return-borrowed",
            with_serial(
                json!({ "key": key, "session": session }),
                certificate_serial,
            ),
        ),
        Action::Extend { .. } | Action::Revoke { .. } => {
            return Err(TransportError::Unsupported(
                "administrator requests do not go over the end-user transport".to_owned(),
            ))
        }
    })
}

/// `body` with the certificate serial the request presents, when it presents one.
fn with_serial(mut body: Value, serial: &Option<String>) -> Value {
    if let (Some(serial), Value::Object(fields)) = (serial, &mut body) {
        fields.insert(
            "certificate_serial".to_owned(),
            Value::String(serial.clone()),
        );
    }
    body
}

#[derive(Deserialize)]
struct AllowedBody {
    verdict: Verdict,
    code: String,
    rule: String,
    message: String,
    #[serde(default)]
    certificate: Option<String>,
    #[serde(default)]
    server_license: Option<String>,
}

#[derive(Deserialize)]
struct RefusalBody {
    code: String,
    message: String,
    rule: String,
}

/// The [`Reply`] an answer of the `/v1` API stands for.
pub fn reply_from_response(response: &HttpResponse) -> Result<Reply, TransportError> {
    let invalid =
        |why: String| TransportError::InvalidReply(format!("HTTP {}: {why}", response.status));
    match response.status {
        200 => {
            let body: AllowedBody = serde_json::from_slice(&response.body)
                .map_err(|error| invalid(format!("not a decision: {error}")))?;
            let code = Code::from_name(&body.code)
                .filter(|code| code.is_allowed() && body.verdict == Verdict::Allow)
                .ok_or_else(|| invalid(format!("`{}` is not an allowed decision", body.code)))?;
            Ok(Reply {
                decision: Decision::allow(code, body.rule, body.message, Vec::new()),
                certificate: body.certificate,
                server_license: body.server_license,
            })
        }
        400..=599 => {
            let body: RefusalBody = serde_json::from_slice(&response.body)
                .map_err(|error| invalid(format!("not an error answer: {error}")))?;
            match Code::from_name(&body.code).filter(|code| !code.is_allowed()) {
                Some(code) => Ok(Reply::new(
                    Decision::deny(code, body.rule, body.message),
                    None,
                )),
                None => Err(TransportError::Refused {
                    status: response.status,
                    code: body.code,
                    message: body.message,
                }),
            }
        }
        status => Err(invalid(format!("unexpected status {status}"))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
