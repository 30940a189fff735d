//! The HTTP transport: engine requests to `licet-server`'s `/v1` API over plain HTTP/1.1.
//!
//! [`HttpTransport`] maps each end-user [`Action`] to its route and JSON body, sends it with a
//! small HTTP/1.1 client over [`TcpStream`] (one connection per request, `Connection: close`,
//! connect, read and write timeouts, a cap on the answer's size) and maps the answer back to a
//! [`Reply`]: `200` is the allowed decision with its certificate, a refusal carrying an engine code
//! is a denied decision, anything else a [`TransportError`]. [`HttpTransport::request`] sends any
//! other request (a method, a path, a body and a bearer token) and returns the answer as it is;
//! `licet-server admin` speaks to the administrator API with it.
//!
//! Server addresses are `http://host[:port][/prefix]`, or `host:port` (the server's address and
//! license port), which means `http://host:port`. There is no TLS: `https://` is refused.
//! Certificates are signed by the vendor (or by a license server under a vendor-signed server
//! license) and verified by the client, so the transport cannot forge a grant, but license keys
//! travel in clear text: use it on a trusted network or behind a local TLS proxy.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use licet_engine::dongle::{DongleProof, CHALLENGE_LEN};
use licet_engine::policy::Method;
use licet_engine::{Action, Actor, Code, Decision, Request, Verdict};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::transport::{Reply, SeatQuery, Transport, TransportError};

/// The default connect, read and write timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest answer (status line, headers and body) read by default.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// The largest header block accepted.
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// A parsed `http://host[:port][/prefix]` server address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    host: String,
    port: u16,
    prefix: String,
}

impl ServerUrl {
    /// Parses `http://host[:port][/prefix]` (port 80 by default; IPv6 hosts in brackets), or
    /// `host:port[/prefix]` without a scheme (the port is then required), which means
    /// `http://host:port[/prefix]`.
    pub fn parse(url: &str) -> Result<ServerUrl, TransportError> {
        let invalid = |why: &str| TransportError::InvalidUrl(format!("`{url}`: {why}"));
        let (rest, port_required) =
            match url.split_once("://") {
                Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => (rest, false),
                Some((scheme, _)) if scheme.eq_ignore_ascii_case("https") => return Err(invalid(
                    "https is not supported; use http:// on a trusted network or a local TLS proxy",
                )),
                Some(_) => return Err(invalid("expected http://host[:port] or host:port")),
                None => (url, true),
            };
        let (authority, path) = match rest.find('/') {
            Some(index) => rest.split_at(index),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(invalid("expected http://host[:port]"));
        }
        if path.contains(['?', '#']) || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(
                "the path may not have a query, a fragment or spaces",
            ));
        }
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| invalid("unclosed `[`"))?;
            let port = match after {
                "" => None,
                _ => Some(
                    after
                        .strip_prefix(':')
                        .ok_or_else(|| invalid("expected `:port` after `]`"))?,
                ),
            };
            (host, port)
        } else {
            match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_'))
        {
            return Err(invalid("invalid host"));
        }
        let port = match port {
            None if port_required => {
                return Err(invalid(
                    "expected http://host[:port] or host:port (the license port)",
                ))
            }
            None => 80,
            Some(port) => port
                .parse::<u16>()
                .ok()
                .filter(|port| *port != 0)
                .ok_or_else(|| invalid("invalid port"))?,
        };
        Ok(ServerUrl {
            host: host.to_owned(),
            port,
            prefix: path.trim_end_matches('/').to_owned(),
        })
    }

    fn host_header(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    fn addresses(&self) -> Result<Vec<SocketAddr>, TransportError> {
        (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map(Iterator::collect)
            .map_err(|error| {
                TransportError::Unreachable(format!("cannot resolve `{}`: {error}", self.host))
            })
    }
}

/// An HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The `Content-Type` header, when present.
    pub content_type: Option<String>,
    /// The `Licet-Next` header, when present: the `after` cursor of the next page of an
    /// administrator listing.
    pub next_page: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

/// Sends engine requests to `licet-server` over HTTP/1.1.
#[derive(Debug, Clone)]
pub struct HttpTransport {
    url: ServerUrl,
    product: String,
    timeout: Duration,
    max_response_bytes: usize,
}

impl HttpTransport {
    /// A transport to the server at `url` (`http://host:port`) for `product` (the product id,
    /// needed by trial validation, whose request names only the machine).
    pub fn new(url: &str, product: &str) -> Result<HttpTransport, TransportError> {
        Ok(HttpTransport {
            url: ServerUrl::parse(url)?,
            product: product.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        })
    }

    /// Sets the connect, read and write timeout (and twice it for a whole exchange).
    pub fn with_timeout(mut self, timeout: Duration) -> HttpTransport {
        self.timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Sets the largest answer read; a larger one is an invalid reply.
    pub fn with_max_response_bytes(mut self, bytes: usize) -> HttpTransport {
        self.max_response_bytes = bytes.max(64);
        self
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
        let response = self.get("/v1/seats/query")?;
        if response.status != 200 {
            return match reply_from_response(&response) {
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
        serde_json::from_slice(&response.body).map_err(|error| {
            TransportError::InvalidReply(format!("not a seat query answer: {error}"))
        })
    }

    /// Sends `method` (`GET`, `POST`, `PATCH`, `DELETE`, ...) to `path` with an optional body
    /// (content type and bytes) and an optional bearer token (`Authorization: Bearer TOKEN`), and
    /// returns the answer whatever its status. A method, path, content type or token that could
    /// break the request's head is refused before connecting.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, &[u8])>,
        bearer: Option<&str>,
    ) -> Result<HttpResponse, TransportError> {
        let printable = |text: &str| text.chars().all(|c| c.is_ascii_graphic() || c == ' ');
        if method.is_empty() || !method.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(TransportError::Unsupported(format!(
                "invalid method `{method}`"
            )));
        }
        if !path.starts_with('/') || !printable(path) || path.contains(' ') {
            return Err(TransportError::Unsupported(format!(
                "invalid path `{path}`"
            )));
        }
        let authorization = match bearer {
            Some(token) if token.is_empty() || !token.chars().all(|c| c.is_ascii_graphic()) => {
                return Err(TransportError::Unsupported(
                    "the bearer token has characters a header cannot carry".to_owned(),
                ))
            }
            Some(token) => format!("Authorization: Bearer {token}\r\n"),
            None => String::new(),
        };
        let (content, body) = match body {
            Some((content_type, body)) => {
                if !printable(content_type) {
                    return Err(TransportError::Unsupported(format!(
                        "invalid content type `{content_type}`"
                    )));
                }
                (
                    format!(
                        "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
                        body.len()
                    ),
                    body,
                )
            }
            None => (String::new(), &[][..]),
        };
        let mut stream = self.connect()?;
        let deadline = Instant::now() + self.timeout * 2;
        let head = format!(
            "{method} {}{} HTTP/1.1\r\nHost: {}\r\nUser-Agent: licet/{}\r\nAccept: application/json\r\n\
             {authorization}{content}Connection: close\r\n\r\n",
            self.url.prefix,
            path,
            self.url.host_header(),
            env!("CARGO_PKG_VERSION"),
        );
        let unreachable = |error: std::io::Error| {
            TransportError::Unreachable(format!("cannot send the request: {error}"))
        };
        stream.write_all(head.as_bytes()).map_err(unreachable)?;
        stream.write_all(body).map_err(unreachable)?;
        stream.flush().map_err(unreachable)?;
        read_response(&mut stream, self.max_response_bytes, deadline)
    }

    fn connect(&self) -> Result<TcpStream, TransportError> {
        let mut last = None;
        for address in self.url.addresses()? {
            match TcpStream::connect_timeout(&address, self.timeout) {
                Ok(stream) => {
                    let setup = stream
                        .set_read_timeout(Some(self.timeout))
                        .and_then(|()| stream.set_write_timeout(Some(self.timeout)))
                        .and_then(|()| stream.set_nodelay(true));
                    return match setup {
                        Ok(()) => Ok(stream),
                        Err(error) => Err(TransportError::Unreachable(error.to_string())),
                    };
                }
                Err(error) => last = Some(format!("{address}: {error}")),
            }
        }
        Err(TransportError::Unreachable(last.unwrap_or_else(|| {
            format!("`{}` has no address", self.url.host)
        })))
    }
}

impl HttpTransport {
    fn post_json(&self, path: &str, body: &Value) -> Result<HttpResponse, TransportError> {
        let body = serde_json::to_vec(body)
            .map_err(|error| TransportError::Unsupported(error.to_string()))?;
        self.post(path, "application/json", &body)
    }
}

impl Transport for HttpTransport {
    fn send(&mut self, request: &Request) -> Result<Reply, TransportError> {
        let (path, body) = route(request, &self.product)?;
        reply_from_response(&self.post_json(path, &body)?)
    }

    fn dongle_challenge(&mut self) -> Result<[u8; CHALLENGE_LEN], TransportError> {
        let response = self.post_json("/v1/dongle/challenge", &Value::Null)?;
        if response.status != 200 {
            // A refusal (rate limit, ...) reads like any other.
            return match reply_from_response(&response) {
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

    fn send_with_dongle(
        &mut self,
        request: &Request,
        challenge: &[u8; CHALLENGE_LEN],
        proof: &DongleProof,
    ) -> Result<Reply, TransportError> {
        let (path, mut body) = route(request, &self.product)?;
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
        reply_from_response(&self.post_json(path, &body)?)
    }

    fn seat_query(&mut self) -> Result<SeatQuery, TransportError> {
        self.query_seats()
    }
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

/// Reads one HTTP/1.1 answer: the head, then a `Content-Length` body (or, without one, the body
/// up to the end of the connection), never more than `max_bytes` in all.
fn read_response(
    stream: &mut impl Read,
    max_bytes: usize,
    deadline: Instant,
) -> Result<HttpResponse, TransportError> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(end) = find_head_end(&buffer) {
            break end;
        }
        if buffer.len() > MAX_HEADER_BYTES.min(max_bytes) {
            return Err(TransportError::InvalidReply(
                "the answer's headers are too large".to_owned(),
            ));
        }
        let read = read_some(stream, &mut chunk, deadline)?;
        if read == 0 {
            return Err(TransportError::InvalidReply(
                "the connection closed before the answer's headers ended".to_owned(),
            ));
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = parse_head(&buffer[..head_end])?;
    let mut body = buffer.split_off(head_end + 4);
    match head.content_length {
        Some(length) => {
            if length.saturating_add(head_end + 4) > max_bytes {
                return Err(too_large(max_bytes));
            }
            while body.len() < length {
                let read = read_some(stream, &mut chunk, deadline)?;
                if read == 0 {
                    return Err(TransportError::InvalidReply(format!(
                        "the connection closed after {} of {length} body bytes",
                        body.len()
                    )));
                }
                body.extend_from_slice(&chunk[..read]);
            }
            body.truncate(length);
        }
        None => loop {
            if head_end + 4 + body.len() > max_bytes {
                return Err(too_large(max_bytes));
            }
            let read = read_some(stream, &mut chunk, deadline)?;
            if read == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..read]);
        },
    }
    if head_end + 4 + body.len() > max_bytes {
        return Err(too_large(max_bytes));
    }
    Ok(HttpResponse {
        status: head.status,
        content_type: head.content_type,
        next_page: head.next_page,
        body,
    })
}

fn too_large(max_bytes: usize) -> TransportError {
    TransportError::InvalidReply(format!("the answer is larger than {max_bytes} bytes"))
}

fn read_some(
    stream: &mut impl Read,
    chunk: &mut [u8],
    deadline: Instant,
) -> Result<usize, TransportError> {
    if Instant::now() > deadline {
        return Err(TransportError::Unreachable(
            "the server did not answer in time".to_owned(),
        ));
    }
    loop {
        match stream.read(chunk) {
            Ok(read) => return Ok(read),
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(TransportError::Unreachable(
                    "the server did not answer in time".to_owned(),
                ))
            }
            Err(error) => {
                return Err(TransportError::Unreachable(format!(
                    "cannot read the answer: {error}"
                )))
            }
        }
    }
}

fn find_head_end(buffer: &[u8]) -> Option<usize> {
    buffer.windows(4).position(|window| window == b"\r\n\r\n")
}

struct Head {
    status: u16,
    content_length: Option<usize>,
    content_type: Option<String>,
    next_page: Option<String>,
}

fn parse_head(head: &[u8]) -> Result<Head, TransportError> {
    let invalid = |why: &str| TransportError::InvalidReply(why.to_owned());
    let text =
        std::str::from_utf8(head).map_err(|_| invalid("the answer's headers are not text"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(invalid("not an HTTP/1.x answer"));
    }
    let status = parts
        .next()
        .filter(|code| code.len() == 3)
        .and_then(|code| code.parse::<u16>().ok())
        .filter(|code| (100..=599).contains(code))
        .ok_or_else(|| invalid("invalid status line"))?;
    let mut content_length = None;
    let mut content_type = None;
    let mut next_page = None;
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid("invalid header line"))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let length = value
                .parse::<usize>()
                .map_err(|_| invalid("invalid Content-Length"))?;
            if content_length.is_some_and(|previous| previous != length) {
                return Err(invalid("conflicting Content-Length headers"));
            }
            content_length = Some(length);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(invalid("chunked answers are not supported"));
        } else if name.eq_ignore_ascii_case("content-type") {
            content_type = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case("licet-next") {
            next_page = Some(value.to_owned());
        }
    }
    Ok(Head {
        status,
        content_length,
        content_type,
        next_page,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn the_next_page_header_is_read() {
        let head =
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLicet-Next: K-1/s 2")
                .unwrap();
        assert_eq!(head.next_page.as_deref(), Some("K-1/s 2"));
        let head = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 2").unwrap();
        assert_eq!(head.next_page, None);
    }
    use std::collections::BTreeMap;
    use std::net::TcpListener;
    use std::thread::JoinHandle;

    use licet_engine::{Fingerprint, ProductRef};

    fn machine() -> Fingerprint {
        Fingerprint {
            components: BTreeMap::from([
                ("machine-id".to_owned(), "m1".to_owned()),
                ("mac".to_owned(), "a1".to_owned()),
            ]),
        }
    }

    fn target() -> ProductRef {
        ProductRef {
            product: "gstarcad".to_owned(),
            edition: "professional".to_owned(),
            version: "2027".to_owned(),
        }
    }

    fn end_user(action: Action) -> Request {
        Request {
            actor: Actor::EndUser,
            action,
        }
    }

    /// Serves `answer` to one connection and hands back the request bytes it read.
    fn serve_once(answer: Vec<u8>) -> (String, JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut request = Vec::new();
            let mut chunk = [0u8; 4096];
            // Read the head, then the body its Content-Length announces.
            loop {
                let read = stream.read(&mut chunk).unwrap();
                request.extend_from_slice(&chunk[..read]);
                if let Some(end) = find_head_end(&request) {
                    let head = String::from_utf8_lossy(&request[..end]).to_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|line| line.strip_prefix("content-length: "))
                        .map_or(0, |length| length.trim().parse().unwrap());
                    if request.len() >= end + 4 + length {
                        break;
                    }
                }
                if read == 0 {
                    break;
                }
            }
            stream.write_all(&answer).unwrap();
            request
        });
        (url, handle)
    }

    fn http(status: &str, body: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    #[test]
    fn urls_parse_and_refuse_what_is_not_plain_http() {
        let url = ServerUrl::parse("http://127.0.0.1:8440").unwrap();
        assert_eq!(
            (url.host.as_str(), url.port, url.prefix.as_str()),
            ("127.0.0.1", 8440, "")
        );
        let url = ServerUrl::parse("http://licenses.example.com/licet/").unwrap();
        assert_eq!((url.port, url.prefix.as_str()), (80, "/licet"));
        let url = ServerUrl::parse("http://[::1]:9000").unwrap();
        assert_eq!(
            (url.host.as_str(), url.host_header()),
            ("::1", "[::1]:9000".to_owned())
        );
        // The server's address and license port, without a scheme, is plain HTTP.
        for (text, host, port, prefix) in [
            ("192.168.1.20:8440", "192.168.1.20", 8440, ""),
            (
                "licenses.example.com:27000/licet/",
                "licenses.example.com",
                27000,
                "/licet",
            ),
            ("[::1]:9000", "::1", 9000, ""),
        ] {
            let url = ServerUrl::parse(text).unwrap();
            assert_eq!(
                (url.host.as_str(), url.port, url.prefix.as_str()),
                (host, port, prefix),
                "{text}"
            );
            assert_eq!(
                url,
                ServerUrl::parse(&format!("http://{text}")).unwrap(),
                "{text}"
            );
        }
        for bad in [
            "https://example.com",
            "ftp://example.com",
            "example.com",
            "192.168.1.20",
            "example.com:",
            "[::1]",
            "http://",
            "http://user@host",
            "http://host:0",
            "http://host:99999",
            "http://host:80/a?b",
            "http://ho st",
        ] {
            assert!(
                matches!(ServerUrl::parse(bad), Err(TransportError::InvalidUrl(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn every_end_user_action_maps_to_its_route_and_body() {
        let until = chrono::DateTime::parse_from_rfc3339("2027-02-01T00:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let cases = [
            (
                Action::StartTrial {
                    target: target(),
                    machine: machine(),
                },
                "/v1/trials/start",
                json!({ "target": { "product": "gstarcad", "edition": "professional", "version": "2027" },
                        "machine": { "machine-id": "m1", "mac": "a1" } }),
            ),
            (
                Action::ValidateTrial { machine: machine() },
                "/v1/trials/validate",
                json!({ "product": "gstarcad", "machine": { "machine-id": "m1", "mac": "a1" } }),
            ),
            (
                Action::Activate {
                    key: "K".into(),
                    target: target(),
                    machine: machine(),
                    method: Method::Manual,
                },
                "/v1/activate",
                json!({ "key": "K", "target": { "product": "gstarcad", "edition": "professional", "version": "2027" },
                        "machine": { "machine-id": "m1", "mac": "a1" }, "method": "manual" }),
            ),
            (
                Action::Validate {
                    key: "K".into(),
                    machine: machine(),
                    certificate_serial: None,
                },
                "/v1/validate",
                json!({ "key": "K", "machine": { "machine-id": "m1", "mac": "a1" } }),
            ),
            (
                Action::Return {
                    key: "K".into(),
                    machine: machine(),
                    method: Method::Online,
                    certificate_serial: Some("S-1".into()),
                },
                "/v1/return",
                json!({ "key": "K", "machine": { "machine-id": "m1", "mac": "a1" }, "method": "online",
                        "certificate_serial": "S-1" }),
            ),
            (
                Action::Borrow {
                    key: "K".into(),
                    target: target(),
                    machine: machine(),
                    session: "s".into(),
                    until,
                },
                "/v1/seats/borrow",
                json!({ "key": "K", "target": { "product": "gstarcad", "edition": "professional", "version": "2027" },
                        "machine": { "machine-id": "m1", "mac": "a1" }, "session": "s",
                        "until": "2027-02-01T00:00:00Z" }),
            ),
            (
                Action::Heartbeat {
                    key: "K".into(),
                    session: "s".into(),
                },
                "/v1/seats/heartbeat",
                json!({ "key": "K", "session": "s" }),
            ),
            (
                Action::ReturnBorrowed {
                    key: "K".into(),
                    session: "s".into(),
                    certificate_serial: Some("B-1".into()),
                },
                "/v1/seats/return-borrowed",
                json!({ "key": "K", "session": "s", "certificate_serial": "B-1" }),
            ),
        ];
        for (action, path, body) in cases {
            let (got_path, got_body) = route(&end_user(action), "gstarcad").unwrap();
            assert_eq!((got_path, got_body), (path, body));
        }
    }

    #[test]
    fn administrator_requests_are_not_sent() {
        let revoke = end_user(Action::Revoke { key: "K".into() });
        assert!(matches!(
            route(&revoke, "p"),
            Err(TransportError::Unsupported(_))
        ));
        let as_admin = Request {
            actor: Actor::Administrator,
            action: Action::Validate {
                key: "K".into(),
                machine: machine(),
                certificate_serial: None,
            },
        };
        assert!(matches!(
            route(&as_admin, "p"),
            Err(TransportError::Unsupported(_))
        ));
    }

    #[test]
    fn answers_map_to_replies() {
        let allowed = HttpResponse {
            next_page: None,
            status: 200,
            content_type: None,
            body: br#"{"verdict":"allow","code":"ACTIVATED","rule":"activation.limit","message":"ok","certificate":"CERT","claims":{"x":1}}"#.to_vec(),
        };
        let reply = reply_from_response(&allowed).unwrap();
        assert_eq!(reply.decision.code, Code::Activated);
        assert!(reply.decision.is_allowed());
        assert_eq!(reply.certificate.as_deref(), Some("CERT"));

        let denied = HttpResponse {
            next_page: None,
            status: 409,
            content_type: None,
            body: br#"{"code":"ACTIVATION_LIMIT_REACHED","message":"all used","rule":"activation.limit"}"#.to_vec(),
        };
        let reply = reply_from_response(&denied).unwrap();
        assert_eq!(
            reply.decision,
            Decision::deny(Code::ActivationLimitReached, "activation.limit", "all used")
        );
        assert_eq!(reply.certificate, None);

        let api_error = HttpResponse {
            next_page: None,
            status: 429,
            content_type: None,
            body: br#"{"code":"RATE_LIMITED","message":"slow down","rule":"rate"}"#.to_vec(),
        };
        assert_eq!(
            reply_from_response(&api_error),
            Err(TransportError::Refused {
                status: 429,
                code: "RATE_LIMITED".into(),
                message: "slow down".into()
            })
        );

        // A 200 must carry an allowed code, an error answer a denial; anything else is invalid.
        for (status, body) in [
            (
                200,
                r#"{"verdict":"allow","code":"REVOKED","rule":"r","message":"m"}"#,
            ),
            (
                200,
                r#"{"verdict":"deny","code":"VALID","rule":"r","message":"m"}"#,
            ),
            (
                200,
                r#"{"verdict":"allow","code":"NOPE","rule":"r","message":"m"}"#,
            ),
            (200, "not json"),
            (403, "<html>"),
            (302, "{}"),
        ] {
            let response = HttpResponse {
                status,
                content_type: None,
                next_page: None,
                body: body.as_bytes().to_vec(),
            };
            assert!(
                matches!(
                    reply_from_response(&response),
                    Err(TransportError::InvalidReply(_))
                ),
                "{status} {body}"
            );
        }
        let allowed_code_in_refusal = HttpResponse {
            next_page: None,
            status: 403,
            content_type: None,
            body: br#"{"code":"VALID","message":"m","rule":"r"}"#.to_vec(),
        };
        assert!(matches!(
            reply_from_response(&allowed_code_in_refusal),
            Err(TransportError::Refused { .. })
        ));
    }

    #[test]
    fn sends_a_request_over_loopback_and_reads_the_answer() {
        let answer = http(
            "200 OK",
            r#"{"verdict":"allow","code":"VALID","rule":"validation","message":"fine","certificate":"C"}"#,
        );
        let (url, server) = serve_once(answer);
        let mut transport = HttpTransport::new(&format!("{url}/base/"), "gstarcad").unwrap();
        let request = end_user(Action::Validate {
            key: "K-1".into(),
            machine: machine(),
            certificate_serial: None,
        });
        let reply = transport.send(&request).unwrap();
        assert_eq!(reply.decision.code, Code::Valid);
        assert_eq!(reply.certificate.as_deref(), Some("C"));

        let sent = String::from_utf8(server.join().unwrap()).unwrap();
        let (head, body) = sent.split_once("\r\n\r\n").unwrap();
        assert!(
            head.starts_with("POST /base/v1/validate HTTP/1.1\r\n"),
            "{head}"
        );
        assert!(
            head.contains("\r\nContent-Type: application/json\r\n"),
            "{head}"
        );
        assert!(
            head.contains(&format!("\r\nContent-Length: {}\r\n", body.len())),
            "{head}"
        );
        let body: Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            body,
            json!({ "key": "K-1", "machine": { "machine-id": "m1", "mac": "a1" } })
        );
    }

    #[test]
    fn a_license_servers_answer_carries_its_server_license() {
        let allowed = HttpResponse {
            next_page: None,
            status: 200,
            content_type: None,
            body: br#"{"verdict":"allow","code":"SEAT_GRANTED","rule":"seats.pool","message":"ok","certificate":"CERT","server_license":"SL"}"#.to_vec(),
        };
        let reply = reply_from_response(&allowed).unwrap();
        assert_eq!(reply.certificate.as_deref(), Some("CERT"));
        assert_eq!(reply.server_license.as_deref(), Some("SL"));
        // The activation center's answers have none.
        let center = HttpResponse {
            next_page: None,
            status: 200,
            content_type: None,
            body: br#"{"verdict":"allow","code":"SEAT_GRANTED","rule":"seats.pool","message":"ok","certificate":"CERT"}"#.to_vec(),
        };
        assert_eq!(reply_from_response(&center).unwrap().server_license, None);
    }

    #[test]
    fn a_seat_query_is_a_get_and_reads_the_licenses() {
        let body = r#"{"licenses":[
            {"key":"NET-1","product":"gstarcad","edition":"professional","version":"2027","seats":5,
             "free":3,"borrowed":1,"borrow_max_days":30,"expires_at":"2027-07-01T00:00:00Z",
             "status":"serving","extra":"ignored"},
            {"key":"NET-2","product":"gstarcad","edition":"standard","version":"2027","seats":2,
             "free":0,"borrowed":0,"borrow_max_days":null,"expires_at":null,
             "status":"SERVER_LICENSE_EXPIRED: revalidate"}]}"#;
        let (url, server) = serve_once(http("200 OK", body));
        let host_port = url.trim_start_matches("http://").to_owned();
        let mut transport = HttpTransport::new(&host_port, "").unwrap();
        let query = transport.seat_query().unwrap();
        assert_eq!(query.licenses.len(), 2);
        let first = &query.licenses[0];
        assert_eq!(
            (first.key.as_str(), first.seats, first.free, first.borrowed),
            ("NET-1", 5, 3, 1)
        );
        assert_eq!(first.borrow_max_days, Some(30));
        assert!(first.is_serving());
        assert_eq!(
            (
                query.licenses[1].borrow_max_days,
                query.licenses[1].expires_at
            ),
            (None, None)
        );
        assert!(!query.licenses[1].is_serving());
        let sent = String::from_utf8(server.join().unwrap()).unwrap();
        assert!(
            sent.starts_with("GET /v1/seats/query HTTP/1.1\r\n"),
            "{sent}"
        );
        assert!(!sent.to_lowercase().contains("content-length"), "{sent}");

        // A server without the route is not a license server.
        let (url, server) =
            serve_once(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".to_vec());
        let error = HttpTransport::new(&url, "")
            .unwrap()
            .query_seats()
            .unwrap_err();
        assert!(
            matches!(&error, TransportError::InvalidReply(why) if why.contains("license server")),
            "{error:?}"
        );
        server.join().unwrap();
    }

    #[test]
    fn a_refusal_over_loopback_is_a_denied_decision() {
        let (url, server) = serve_once(http(
            "404 Not Found",
            r#"{"code":"LICENSE_NOT_FOUND","message":"no license `K`","rule":"license.lookup"}"#,
        ));
        let mut transport = HttpTransport::new(&url, "gstarcad").unwrap();
        let reply = transport
            .send(&end_user(Action::Validate {
                key: "K".into(),
                machine: machine(),
                certificate_serial: None,
            }))
            .unwrap();
        assert_eq!(reply.decision.code, Code::LicenseNotFound);
        assert!(!reply.decision.is_allowed());
        assert_eq!(reply.decision.message, "no license `K`");
        server.join().unwrap();
    }

    #[test]
    fn malformed_truncated_and_oversized_answers_are_invalid_replies() {
        let oversized = {
            let body = format!(
                r#"{{"code":"REVOKED","message":"{}","rule":"r"}}"#,
                "x".repeat(5000)
            );
            http("403 Forbidden", &body)
        };
        let cases: Vec<Vec<u8>> = vec![
            b"SMTP ready\r\n\r\n".to_vec(),
            b"HTTP/1.1 2000 OK\r\n\r\n".to_vec(),
            b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"short\":".to_vec(),
            b"HTTP/1.1 200 OK\r\ncontent-length: nope\r\n\r\n".to_vec(),
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
                .to_vec(),
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n{}".to_vec(),
            b"HTTP/1.1 200 OK\r\ncontent-le".to_vec(),
            b"HTTP/1.1 200 OK\r\ncontent-length: 18446744073709551615\r\n\r\n".to_vec(),
            oversized,
        ];
        for answer in cases {
            let shown = String::from_utf8_lossy(&answer[..answer.len().min(60)]).into_owned();
            let (url, server) = serve_once(answer);
            let mut transport = HttpTransport::new(&url, "gstarcad")
                .unwrap()
                .with_max_response_bytes(4096);
            let result = transport.send(&end_user(Action::Validate {
                key: "K".into(),
                machine: machine(),
                certificate_serial: None,
            }));
            assert!(
                matches!(result, Err(TransportError::InvalidReply(_))),
                "{shown}: {result:?}"
            );
            server.join().unwrap();
        }
    }

    #[test]
    fn a_body_ended_by_the_connection_close_is_read() {
        let (url, server) = serve_once(
            b"HTTP/1.0 403 Forbidden\r\n\r\n{\"code\":\"REVOKED\",\"message\":\"revoked\",\"rule\":\"license.status\"}".to_vec(),
        );
        let transport = HttpTransport::new(&url, "gstarcad").unwrap();
        let response = transport
            .post("/v1/validate", "application/json", b"{}")
            .unwrap();
        assert_eq!(response.status, 403);
        assert_eq!(
            reply_from_response(&response).unwrap().decision.code,
            Code::Revoked
        );
        server.join().unwrap();
    }

    #[test]
    fn a_request_carries_its_method_body_and_bearer_token() {
        let (url, server) = serve_once(http("200 OK", r#"{"code":"EXTENDED"}"#));
        let transport = HttpTransport::new(&format!("{url}/base"), "").unwrap();
        let response = transport
            .request(
                "PATCH",
                "/v1/admin/licenses/K-1",
                Some(("application/json", br#"{"seats":7}"#)),
                Some("lct_admin_0123"),
            )
            .unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.body, br#"{"code":"EXTENDED"}"#);
        let sent = String::from_utf8(server.join().unwrap()).unwrap();
        let (head, body) = sent.split_once("\r\n\r\n").unwrap();
        assert!(
            head.starts_with("PATCH /base/v1/admin/licenses/K-1 HTTP/1.1\r\n"),
            "{head}"
        );
        assert!(
            head.contains("\r\nAuthorization: Bearer lct_admin_0123\r\n"),
            "{head}"
        );
        assert!(head.contains("\r\nContent-Length: 11\r\n"), "{head}");
        assert_eq!(body, r#"{"seats":7}"#);

        // Without a body or a token, neither header is sent.
        let (url, server) = serve_once(http("404 Not Found", r#"{"code":"NOT_FOUND"}"#));
        let transport = HttpTransport::new(&url, "").unwrap();
        let response = transport
            .request("DELETE", "/v1/admin/licenses/K/seats/s", None, None)
            .unwrap();
        assert_eq!(response.status, 404);
        let sent = String::from_utf8(server.join().unwrap()).unwrap();
        assert!(
            sent.starts_with("DELETE /v1/admin/licenses/K/seats/s HTTP/1.1\r\n"),
            "{sent}"
        );
        let lower = sent.to_lowercase();
        assert!(
            !lower.contains("authorization") && !lower.contains("content-length"),
            "{sent}"
        );
    }

    #[test]
    fn a_method_or_token_that_would_break_the_head_is_refused_before_connecting() {
        let transport = HttpTransport::new("http://127.0.0.1:9", "").unwrap();
        for (method, token) in [
            ("GET /x HTTP/1.1\r\nX-Evil: 1\r\n\r\nGET", None),
            ("get", None),
            ("", None),
            ("GET", Some("lct_admin_1\r\nX-Evil: 1")),
            ("GET", Some("two words")),
            ("GET", Some("")),
        ] {
            assert!(
                matches!(
                    transport.request(method, "/v1/admin/seats", None, token),
                    Err(TransportError::Unsupported(_))
                ),
                "{method:?} {token:?}"
            );
        }
    }

    #[test]
    fn header_injection_is_refused_before_connecting() {
        // The checks come before any connection is made.
        let transport = HttpTransport::new("http://127.0.0.1:9", "gstarcad").unwrap();
        for (path, content_type) in [
            ("/v1/x\r\nX-Evil: 1", "application/json"),
            ("v1/x", "application/json"),
            ("/v1/x y", "application/json"),
            ("/v1/x", "text/plain\r\nX-Evil: 1"),
        ] {
            assert!(
                matches!(
                    transport.post(path, content_type, b""),
                    Err(TransportError::Unsupported(_))
                ),
                "{path:?} {content_type:?}"
            );
        }
    }

    #[test]
    fn an_answer_without_length_is_capped() {
        let mut answer = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        answer.extend(std::iter::repeat_n(b'x', 20_000));
        let (url, server) = serve_once(answer);
        let transport = HttpTransport::new(&url, "gstarcad")
            .unwrap()
            .with_max_response_bytes(4096);
        let result = transport.post("/v1/validate", "application/json", b"{}");
        assert!(
            matches!(result, Err(TransportError::InvalidReply(_))),
            "{result:?}"
        );
        let _ = server.join();
    }

    #[test]
    fn no_server_is_unreachable_and_silence_times_out() {
        let free = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", free.local_addr().unwrap());
        drop(free);
        let mut transport = HttpTransport::new(&url, "gstarcad").unwrap();
        let request = end_user(Action::ValidateTrial { machine: machine() });
        assert!(matches!(
            transport.send(&request),
            Err(TransportError::Unreachable(_))
        ));

        // A server that accepts and never answers.
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", silent.local_addr().unwrap());
        let mut transport = HttpTransport::new(&url, "gstarcad")
            .unwrap()
            .with_timeout(Duration::from_millis(200));
        assert!(matches!(
            transport.send(&request),
            Err(TransportError::Unreachable(_))
        ));
        drop(silent);
    }
}
