//! HTTP and HTTPS for Licet's hosts: server addresses, trust, and one blocking client.
//!
//! Both the client host (`licet-client`'s `HttpTransport`) and the plugin host's HTTP verb for
//! transport plugins ([`crate::HttpsClient`]) send their requests through [`HttpAgent`], a thin
//! layer over `ureq` with rustls (the `ring` provider). It adds what both need on top of `ureq`:
//!
//! - [`ServerUrl`]: `https://host[:port][/prefix]`, `http://host[:port][/prefix]`, or a bare
//!   `host:port[/prefix]` (the license server's address and port as end users type it). Without a
//!   scheme the address means `https`, except on loopback hosts (`127.0.0.0/8`, `::1`,
//!   `localhost`), where it means `http`.
//! - Plain HTTP to a host that is not loopback is refused before anything is sent
//!   ([`HttpError::PlainHttpRefused`]) unless [`HttpSettings::allow_plain_http`] is set.
//! - Trust: the Mozilla roots of `webpki-roots`, or, when the vendor pins a certificate
//!   ([`PinnedCertificate`]), that certificate alone.
//! - Limits: connect, send and receive timeouts (and twice the timeout for a whole exchange), a
//!   cap on the answer's headers and body, no redirects followed, no proxy, no connection reuse.
//! - Typed errors ([`HttpError`]).

use licet_engine::report::Report as _;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use ureq::http;
use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};

/// The default connect, read and write timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest answer body read by default.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// The largest header block accepted.
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Why an HTTP exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The server address cannot be used.
    #[error("invalid server address {0}")]
    InvalidUrl(String),
    /// Plain `http://` to a host that is not loopback, without the caller's opt-in.
    #[error(
        "plain HTTP to `{host}` is refused: use https:// (or allow plain HTTP explicitly on a trusted network)"
    )]
    PlainHttpRefused {
        /// The host that would have been contacted.
        host: String,
    },
    /// The TLS handshake with the server failed.
    #[error("TLS with `{host}` failed: {failure}")]
    Tls {
        /// The server's host.
        host: String,
        /// What failed.
        failure: TlsFailure,
    },
    /// The server could not be reached: no address, connection refused, or no answer in time.
    #[error("the server cannot be reached: {0}")]
    Unreachable(String),
    /// The answer is larger than the limit.
    #[error("the answer is larger than {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The server answered something that is not a well-formed HTTP answer.
    #[error("the server sent an invalid answer: {0}")]
    InvalidReply(String),
    /// The request cannot be sent as asked (a method, path, header value that would break it).
    #[error("the request cannot be sent: {0}")]
    InvalidRequest(String),
    /// The pinned certificate is neither a DER nor a PEM X.509 certificate.
    #[error("invalid pinned certificate: {0}")]
    InvalidPin(String),
}

/// What failed in a TLS handshake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsFailure {
    /// The server's certificate does not chain to a trusted root (no certificate is pinned).
    #[error("the server's certificate is not trusted: {0}")]
    Untrusted(String),
    /// The server's certificate does not chain to the pinned certificate.
    #[error("the server's certificate does not match the pinned certificate: {0}")]
    PinMismatch(String),
    /// Any other handshake failure (protocol versions, alerts, a server that does not speak TLS).
    #[error("{0}")]
    Handshake(String),
}

/// The scheme of a server address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS.
    Https,
}

impl Scheme {
    fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// A parsed server address: scheme, host, port and path prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    scheme: Scheme,
    host: String,
    port: u16,
    prefix: String,
}

impl ServerUrl {
    /// Parses `https://host[:port][/prefix]` (port 443 by default), `http://host[:port][/prefix]`
    /// (port 80 by default), or `host:port[/prefix]` without a scheme (the port is then required),
    /// which means `https://host:port[/prefix]`, or `http://host:port[/prefix]` when the host is
    /// loopback (`127.0.0.0/8`, `::1`, `localhost`). IPv6 hosts go in brackets.
    pub fn parse(url: &str) -> Result<ServerUrl, HttpError> {
        let invalid = |why: &str| HttpError::InvalidUrl(format!("`{url}`: {why}"));
        let (scheme, rest) = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("https") => {
                (Some(Scheme::Https), rest)
            }
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => {
                (Some(Scheme::Http), rest)
            }
            Some(_) => {
                return Err(invalid(
                    "expected https://host[:port], http://host[:port] or host:port",
                ))
            }
            None => (None, url),
        };
        let (authority, path) = match rest.find('/') {
            Some(index) => rest.split_at(index),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(invalid("expected https://host[:port] or host:port"));
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
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(invalid("invalid IPv6 address"));
            }
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
        let port = match (port, scheme) {
            (None, None) => {
                return Err(invalid(
                    "expected https://host[:port] or host:port (the license port)",
                ))
            }
            (None, Some(Scheme::Https)) => 443,
            (None, Some(Scheme::Http)) => 80,
            (Some(port), _) => port
                .parse::<u16>()
                .ok()
                .filter(|port| *port != 0)
                .ok_or_else(|| invalid("invalid port"))?,
        };
        let scheme = scheme.unwrap_or(if is_loopback_host(host) {
            Scheme::Http
        } else {
            Scheme::Https
        });
        Ok(ServerUrl {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
            prefix: path.trim_end_matches('/').to_owned(),
        })
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The host: a name, or an IP address (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The path prefix every request path is appended to (empty, or `/something`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether the host is this machine: `localhost`, `127.0.0.0/8` or `::1`.
    pub fn is_loopback(&self) -> bool {
        is_loopback_host(&self.host)
    }

    /// The same server without the path prefix.
    pub fn origin(&self) -> ServerUrl {
        ServerUrl {
            prefix: String::new(),
            ..self.clone()
        }
    }

    /// The full URL of `path` (which starts with `/`) on this server.
    pub fn join(&self, path: &str) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!(
            "{}://{host}:{}{}{path}",
            self.scheme.as_str(),
            self.port,
            self.prefix
        )
    }
}

impl fmt::Display for ServerUrl {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.join(""))
    }
}

fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

/// A certificate the vendor pins for its server: when set, the server's certificate must chain
/// to it (it may be the server's own self-signed certificate or the vendor's private CA), and the
/// public roots are not consulted.
#[derive(Clone, PartialEq, Eq)]
pub struct PinnedCertificate {
    der: Vec<u8>,
}

impl fmt::Debug for PinnedCertificate {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("PinnedCertificate")
            .field("der_bytes", &self.der.len())
            .finish()
    }
}

impl PinnedCertificate {
    /// A certificate in DER, or the first `CERTIFICATE` of a PEM text.
    pub fn from_bytes(bytes: &[u8]) -> Result<PinnedCertificate, HttpError> {
        let der = if bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
            CertificateDer::from_pem_slice(bytes)
                .map_err(|error| HttpError::InvalidPin(format!("not a PEM certificate: {error}")))?
                .to_vec()
        } else {
            bytes.to_vec()
        };
        // The same check rustls applies to a root: a parsable X.509 certificate.
        rustls::RootCertStore::empty()
            .add(CertificateDer::from(der.as_slice()))
            .map_err(|error| HttpError::InvalidPin(error.report()))?;
        Ok(PinnedCertificate { der })
    }

    /// The certificate in DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }
}

/// How an [`HttpAgent`] connects and what it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// Connect, send and receive timeout; a whole exchange gets twice this.
    pub timeout: Duration,
    /// The largest answer body read; a larger one is [`HttpError::TooLarge`].
    pub max_response_bytes: usize,
    /// Whether plain `http://` to hosts that are not loopback is allowed.
    pub allow_plain_http: bool,
    /// The certificate the server's must chain to, instead of the public roots.
    pub pinned_certificate: Option<PinnedCertificate>,
}

impl Default for HttpSettings {
    fn default() -> HttpSettings {
        HttpSettings {
            timeout: DEFAULT_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            allow_plain_http: false,
            pinned_certificate: None,
        }
    }
}

/// One request: a method, a path on the server, an optional body (content type and bytes) and an
/// optional bearer token.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    /// `GET`, `POST`, `PATCH`, `DELETE`, ...
    pub method: &'a str,
    /// The path after the server's prefix, starting with `/`.
    pub path: &'a str,
    /// The content type and bytes of the body.
    pub body: Option<(&'a str, &'a [u8])>,
    /// Sent as `Authorization: Bearer TOKEN`.
    pub bearer: Option<&'a str>,
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

/// The blocking HTTP(S) client of Licet's hosts; cheap to clone.
#[derive(Clone)]
pub struct HttpAgent {
    agent: ureq::Agent,
    settings: HttpSettings,
}

impl fmt::Debug for HttpAgent {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("HttpAgent")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl HttpAgent {
    /// An agent with `settings`.
    pub fn new(settings: HttpSettings) -> HttpAgent {
        // Trust: webpki-roots (the Mozilla root program, compiled in) rather than the platform's
        // store. The end user controls the platform's store and could add a root of their own to
        // intercept the license traffic; the compiled-in roots are the same on every machine and
        // need no platform code. A vendor with a private CA or a self-signed server pins its
        // certificate instead, and then only that certificate is trusted.
        let roots = match &settings.pinned_certificate {
            Some(pin) => {
                RootCerts::Specific(Arc::new(vec![Certificate::from_der(pin.der()).to_owned()]))
            }
            None => RootCerts::WebPki,
        };
        let tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .root_certs(roots)
            .build();
        let timeout = Some(settings.timeout);
        let config = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .proxy(None)
            .user_agent(format!("licet/{}", env!("CARGO_PKG_VERSION")))
            .accept("application/json")
            .max_response_header_size(MAX_HEADER_BYTES)
            .max_idle_connections(0)
            .max_idle_connections_per_host(0)
            .no_delay(true)
            .timeout_global(Some(settings.timeout.saturating_mul(2)))
            .timeout_connect(timeout)
            .timeout_send_request(timeout)
            .timeout_send_body(timeout)
            .timeout_recv_response(timeout)
            .timeout_recv_body(timeout)
            .build();
        HttpAgent {
            agent: ureq::Agent::new_with_config(config),
            settings,
        }
    }

    /// The agent's settings.
    pub fn settings(&self) -> &HttpSettings {
        &self.settings
    }

    /// Sends `request` to `server` and returns the answer whatever its status. A plain-HTTP
    /// server that is not loopback (without the opt-in), or a method, path, content type or token
    /// that could break the request's head, is refused before connecting.
    pub fn send(
        &self,
        server: &ServerUrl,
        request: &HttpRequest<'_>,
    ) -> Result<HttpResponse, HttpError> {
        if server.scheme == Scheme::Http && !server.is_loopback() && !self.settings.allow_plain_http
        {
            return Err(HttpError::PlainHttpRefused {
                host: server.host.clone(),
            });
        }
        let builder = checked_request(server, request)?;
        let answer = match request.body {
            Some((content_type, body)) => self.agent.run(
                builder
                    .header(http::header::CONTENT_TYPE, content_type)
                    .body(body)
                    .map_err(|error| HttpError::InvalidRequest(error.report()))?,
            ),
            None => self.agent.run(
                builder
                    .body(())
                    .map_err(|error| HttpError::InvalidRequest(error.report()))?,
            ),
        };
        let mut answer = answer.map_err(|error| self.classify(server, error, false))?;
        let limit = self.settings.max_response_bytes;
        let header = |name: &str| {
            answer
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header("content-type");
        let next_page = header("licet-next");
        let status = answer.status().as_u16();
        let body = answer.body_mut();
        if body
            .content_length()
            .is_some_and(|length| length > limit as u64)
        {
            return Err(HttpError::TooLarge { limit });
        }
        let body = body
            .with_config()
            .limit(limit as u64)
            .read_to_vec()
            .map_err(|error| self.classify(server, error, true))?;
        Ok(HttpResponse {
            status,
            content_type,
            next_page,
            body,
        })
    }

    /// The typed error of a failed exchange; `in_body` when the answer's head had been read.
    fn classify(&self, server: &ServerUrl, error: ureq::Error, in_body: bool) -> HttpError {
        let at = format!("{}:{}", server.host, server.port);
        match error {
            ureq::Error::Timeout(_) => {
                HttpError::Unreachable(format!("`{at}` did not answer in time"))
            }
            ureq::Error::HostNotFound => {
                HttpError::Unreachable(format!("cannot resolve `{}`", server.host))
            }
            ureq::Error::ConnectionFailed => {
                HttpError::Unreachable(format!("cannot connect to `{at}`"))
            }
            ureq::Error::BodyExceedsLimit(_) => HttpError::TooLarge {
                limit: self.settings.max_response_bytes,
            },
            ureq::Error::Rustls(error) => self.tls_failure(server, &error),
            ureq::Error::Tls(why) => HttpError::Tls {
                host: server.host.clone(),
                failure: TlsFailure::Handshake(why.to_owned()),
            },
            ureq::Error::Io(error) => {
                if let Some(tls) = error
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                {
                    return self.tls_failure(server, tls);
                }
                match error.kind() {
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                        HttpError::Unreachable(format!("`{at}` did not answer in time"))
                    }
                    // The server was reached and ended the connection before its answer did.
                    std::io::ErrorKind::UnexpectedEof => HttpError::InvalidReply(format!(
                        "the connection closed before the answer's {} ended",
                        if in_body { "body" } else { "head" }
                    )),
                    std::io::ErrorKind::InvalidData if in_body => {
                        HttpError::InvalidReply(format!("the answer's body is invalid: {error}"))
                    }
                    _ => HttpError::Unreachable(format!("`{at}`: {error}")),
                }
            }
            ureq::Error::Protocol(error) => HttpError::InvalidReply(error.report()),
            ureq::Error::Http(error) => HttpError::InvalidRequest(error.report()),
            ureq::Error::BadUri(why) => HttpError::InvalidUrl(why),
            other => HttpError::InvalidReply(other.report()),
        }
    }

    fn tls_failure(&self, server: &ServerUrl, error: &rustls::Error) -> HttpError {
        let failure = match error {
            rustls::Error::InvalidCertificate(_) if self.settings.pinned_certificate.is_some() => {
                TlsFailure::PinMismatch(error.report())
            }
            rustls::Error::InvalidCertificate(_) => TlsFailure::Untrusted(error.report()),
            other => TlsFailure::Handshake(other.report()),
        };
        HttpError::Tls {
            host: server.host.clone(),
            failure,
        }
    }
}

/// The request's head, after checking that nothing in it could break it.
fn checked_request(
    server: &ServerUrl,
    request: &HttpRequest<'_>,
) -> Result<http::request::Builder, HttpError> {
    let printable = |text: &str| text.chars().all(|c| c.is_ascii_graphic() || c == ' ');
    let method = request.method;
    if method.is_empty() || !method.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(HttpError::InvalidRequest(format!(
            "invalid method `{method}`"
        )));
    }
    let path = request.path;
    if !path.starts_with('/') || !printable(path) || path.contains(' ') {
        return Err(HttpError::InvalidRequest(format!("invalid path `{path}`")));
    }
    if let Some((content_type, _)) = request.body {
        if !printable(content_type) {
            return Err(HttpError::InvalidRequest(format!(
                "invalid content type `{content_type}`"
            )));
        }
    }
    let method = http::Method::from_bytes(method.as_bytes())
        .map_err(|error| HttpError::InvalidRequest(error.report()))?;
    let mut builder = http::Request::builder()
        .method(method)
        .uri(server.join(path));
    match request.bearer {
        Some(token) if token.is_empty() || !token.chars().all(|c| c.is_ascii_graphic()) => {
            return Err(HttpError::InvalidRequest(
                "the bearer token has characters a header cannot carry".to_owned(),
            ))
        }
        Some(token) => {
            builder = builder.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        None => {}
    }
    Ok(builder)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn addresses_parse_with_https_by_default_and_http_on_loopback() {
        for (text, scheme, host, port, prefix) in [
            (
                "https://licenses.example.com",
                Scheme::Https,
                "licenses.example.com",
                443,
                "",
            ),
            (
                "https://licenses.example.com:8443/licet/",
                Scheme::Https,
                "licenses.example.com",
                8443,
                "/licet",
            ),
            ("http://127.0.0.1:8440", Scheme::Http, "127.0.0.1", 8440, ""),
            (
                "http://licenses.example.com/licet/",
                Scheme::Http,
                "licenses.example.com",
                80,
                "/licet",
            ),
            ("HTTP://[::1]:9000", Scheme::Http, "::1", 9000, ""),
            // The license server's IP and port as the guides have the user type them.
            (
                "192.168.1.20:27000",
                Scheme::Https,
                "192.168.1.20",
                27000,
                "",
            ),
            (
                "licenses.example.com:27000/licet/",
                Scheme::Https,
                "licenses.example.com",
                27000,
                "/licet",
            ),
            ("127.0.0.1:8440", Scheme::Http, "127.0.0.1", 8440, ""),
            ("127.10.0.3:8440", Scheme::Http, "127.10.0.3", 8440, ""),
            ("localhost:8440", Scheme::Http, "localhost", 8440, ""),
            ("LocalHost:8440", Scheme::Http, "localhost", 8440, ""),
            ("[::1]:9000", Scheme::Http, "::1", 9000, ""),
            ("[2001:db8::1]:9000", Scheme::Https, "2001:db8::1", 9000, ""),
        ] {
            let url = ServerUrl::parse(text).unwrap();
            assert_eq!(
                (url.scheme(), url.host(), url.port(), url.prefix()),
                (scheme, host, port, prefix),
                "{text}"
            );
        }
        assert_eq!(
            ServerUrl::parse("[::1]:9000/x").unwrap().join("/v1/a"),
            "http://[::1]:9000/x/v1/a"
        );
        assert_eq!(
            ServerUrl::parse("10.0.0.5:27000").unwrap().to_string(),
            "https://10.0.0.5:27000"
        );
        for bad in [
            "ftp://example.com",
            "example.com",
            "192.168.1.20",
            "example.com:",
            "[::1]",
            "[nope]:80",
            "https://",
            "http://user@host",
            "https://host:0",
            "https://host:99999",
            "https://host:80/a?b",
            "https://ho st",
        ] {
            assert!(
                matches!(ServerUrl::parse(bad), Err(HttpError::InvalidUrl(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn plain_http_to_a_remote_host_is_refused_without_connecting() {
        // 192.0.2.1 is TEST-NET-1: nothing answers there, and nothing is sent.
        let agent = HttpAgent::new(HttpSettings::default());
        let request = HttpRequest {
            method: "GET",
            path: "/v1/health",
            body: None,
            bearer: None,
        };
        for text in ["http://192.0.2.1:8440", "http://licenses.example.com"] {
            let url = ServerUrl::parse(text).unwrap();
            assert!(
                matches!(
                    agent.send(&url, &request),
                    Err(HttpError::PlainHttpRefused { .. })
                ),
                "{text}"
            );
        }
    }

    #[test]
    fn a_pin_must_be_a_certificate() {
        assert!(matches!(
            PinnedCertificate::from_bytes(b"not a certificate"),
            Err(HttpError::InvalidPin(_))
        ));
        assert!(matches!(
            PinnedCertificate::from_bytes(
                b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
            ),
            Err(HttpError::InvalidPin(_))
        ));
    }
}
