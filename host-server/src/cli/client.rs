//! The administrator API of a running server, over the workspace's HTTP client
//! ([`licet_client::HttpTransport`]), as `licet-server admin ...` uses it.
//!
//! The administrator token comes from a file or the environment ([`AdminToken::locate`]), never
//! from a command-line argument, so it never lands in a shell's history or in the process list.

use licet_engine::report::Report as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use licet_client::http::HttpResponse;
use licet_client::{HttpTransport, TransportError};
use serde_json::Value;

/// The server asked when neither `--server` nor `LICET_SERVER` names one (the default `listen`
/// address of a server, and the demonstration server's).
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8440";
/// The environment variable naming the server.
pub const SERVER_ENV: &str = "LICET_SERVER";
/// The environment variable holding the administrator token.
pub const TOKEN_ENV: &str = "LICET_ADMIN_TOKEN";
/// How long one request may take (issuing 1000 licenses included).
pub const TIMEOUT: Duration = Duration::from_secs(60);
/// The largest answer read (1000 audit entries with their details fit).
pub const MAX_ANSWER_BYTES: usize = 32 * 1024 * 1024;
/// The largest token file read.
const MAX_TOKEN_FILE: u64 = 4096;

/// Exit status: the server refused (`CODE: message`).
pub const EXIT_REFUSED: u8 = 1;
/// Exit status: the command line is wrong, or the token (or a password file) is missing or
/// unreadable. `clap`'s own usage errors exit with it too.
pub const EXIT_USAGE: u8 = 2;
/// Exit status: the server cannot be reached, or answered something that is not the API.
pub const EXIT_UNREACHABLE: u8 = 3;

/// Why an administration command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// An argument's value is not usable (a feature setting, a time, a missing option).
    #[error("{0}")]
    Usage(String),
    /// Neither `--token-file` nor `LICET_ADMIN_TOKEN` gives a token.
    #[error(
        "no administrator token: give --token-file FILE, or set {TOKEN_ENV} \
         (the token is never taken from the command line)"
    )]
    NoToken,
    /// A token was given as a command-line argument.
    #[error(
        "the administrator token is not taken from the command line, where it would stay in the \
         shell's history: put it in a file for --token-file FILE, or in {TOKEN_ENV}"
    )]
    TokenOnCommandLine,
    /// A token or password file cannot be read.
    #[error("cannot read {what} `{path}`")]
    File {
        /// `the token file`, `the password file`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The token found is not one a request can carry (empty, several lines, spaces).
    #[error("{0}")]
    BadToken(String),
    /// The server address is not usable.
    #[error("invalid server address {0}")]
    Server(String),
    /// The server refused: its `{code, message}` answer.
    #[error("{code}: {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The API's or the engine's code, e.g. `UNAUTHORIZED`, `EXTENSION_DISABLED`.
        code: String,
        /// The server's sentence.
        message: String,
    },
    /// The server cannot be reached.
    #[error("cannot reach the server at {url}: {why}")]
    Unreachable {
        /// The server.
        url: String,
        /// Why.
        why: String,
    },
    /// The server answered something that is not the administrator API's answer.
    #[error("the server at {url} sent an answer that is not the Licet API's: {why}")]
    InvalidAnswer {
        /// The server.
        url: String,
        /// What is wrong.
        why: String,
    },
    /// The output cannot be written.
    #[error("cannot write the output")]
    Output(#[from] std::io::Error),
}

impl AdminError {
    /// The process exit status for this error (see the `EXIT_` constants).
    pub fn exit_code(&self) -> u8 {
        match self {
            AdminError::Refused { .. } | AdminError::Output(_) => EXIT_REFUSED,
            AdminError::Unreachable { .. } | AdminError::InvalidAnswer { .. } => EXIT_UNREACHABLE,
            _ => EXIT_USAGE,
        }
    }
}

/// An administrator token. Its `Debug` form does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(String);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("AdminToken(..)")
    }
}

impl AdminToken {
    /// The token of `--token-file FILE` when given, otherwise of the environment variable
    /// `LICET_ADMIN_TOKEN` (`env_value`); surrounding white space (the file's last newline) is
    /// dropped.
    pub fn locate(
        token_file: Option<&Path>,
        env_value: Option<String>,
    ) -> Result<AdminToken, AdminError> {
        match (token_file, env_value) {
            (Some(path), _) => AdminToken::from_file(path),
            (None, Some(value)) => AdminToken::parse(&value, TOKEN_ENV),
            (None, None) => Err(AdminError::NoToken),
        }
    }

    /// The token in `path`: one line.
    pub fn from_file(path: &Path) -> Result<AdminToken, AdminError> {
        let error = |source| AdminError::File {
            what: "the token file",
            path: path.to_owned(),
            source,
        };
        let size = std::fs::metadata(path).map_err(error)?.len();
        if size > MAX_TOKEN_FILE {
            return Err(AdminError::BadToken(format!(
                "the token file `{}` has {size} bytes; it should hold one token",
                path.display()
            )));
        }
        let text = std::fs::read_to_string(path).map_err(error)?;
        AdminToken::parse(&text, &format!("the token file `{}`", path.display()))
    }

    /// A token from `text` (of `source`, for the error), trimmed.
    pub fn parse(text: &str, source: &str) -> Result<AdminToken, AdminError> {
        let token = text.trim();
        if token.is_empty() {
            return Err(AdminError::BadToken(format!(
                "{source} is empty; it should hold the administrator token"
            )));
        }
        if !token.chars().all(|c| c.is_ascii_graphic()) {
            return Err(AdminError::BadToken(format!(
                "{source} should hold one token (no spaces, one line)"
            )));
        }
        Ok(AdminToken(token.to_owned()))
    }

    fn as_str(&self) -> &str {
        &self.0
    }
}

/// A successful answer: its JSON, and its text as the server sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The JSON (`null` for an empty answer).
    pub json: Value,
    /// The body as sent.
    pub raw: String,
    /// The `after` cursor of a listing's next page (the `Licet-Next` header), when there is one.
    pub next: Option<String>,
}

/// The administrator API of one server.
#[derive(Debug, Clone)]
pub struct AdminClient {
    transport: HttpTransport,
    url: String,
    token: AdminToken,
}

impl AdminClient {
    /// A client of the server at `server` (`https://HOST:PORT[/prefix]`, `http://HOST:PORT[/prefix]`
    /// on loopback, or `HOST:PORT`: HTTPS, or plain HTTP on loopback).
    pub fn new(server: &str, token: AdminToken) -> Result<AdminClient, AdminError> {
        let transport = HttpTransport::new(server, "")
            .map_err(|error| match error {
                TransportError::InvalidUrl(why) => AdminError::Server(why),
                other => AdminError::Server(other.report()),
            })?
            .with_timeout(TIMEOUT)
            .with_max_response_bytes(MAX_ANSWER_BYTES);
        Ok(AdminClient {
            transport,
            url: server.to_owned(),
            token,
        })
    }

    /// Allows plain `http://` to a server that is not on this machine.
    pub fn allow_plain_http(mut self) -> AdminClient {
        self.transport = self.transport.allow_plain_http();
        self
    }

    /// Waits at most `timeout` to connect, and for each read and write.
    pub fn with_timeout(mut self, timeout: Duration) -> AdminClient {
        self.transport = self.transport.with_timeout(timeout);
        self
    }

    /// Trusts only the certificate in `path` (DER or PEM: the server's own, or the CA that
    /// issued it) for the server's TLS certificate.
    pub fn with_server_certificate(mut self, path: &Path) -> Result<AdminClient, AdminError> {
        let bytes = std::fs::read(path).map_err(|source| AdminError::File {
            what: "the server certificate",
            path: path.to_owned(),
            source,
        })?;
        self.transport = self
            .transport
            .with_pinned_certificate_bytes(&bytes)
            .map_err(|error| AdminError::Usage(format!("`{}`: {error}", path.display())))?;
        Ok(self)
    }

    /// `GET path`: the answer.
    pub fn get(&self, path: &str) -> Result<Answer, AdminError> {
        self.call("GET", path, None)
    }

    /// `METHOD path` with an optional JSON body: the answer of a success, the server's
    /// `{code, message}` as [`AdminError::Refused`] otherwise.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, AdminError> {
        let bytes = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|error| AdminError::Usage(format!("cannot encode the request: {error}")))?;
        let response = self
            .transport
            .request(
                method,
                path,
                bytes.as_deref().map(|bytes| ("application/json", bytes)),
                Some(self.token.as_str()),
            )
            .map_err(|error| self.transport_error(error))?;
        self.answer(&response)
    }

    fn transport_error(&self, error: TransportError) -> AdminError {
        let url = self.url.clone();
        match error {
            TransportError::Unreachable(why) => AdminError::Unreachable { url, why },
            TransportError::InvalidReply(why) => AdminError::InvalidAnswer { url, why },
            error @ TransportError::Tls { .. } => AdminError::Unreachable {
                url,
                why: error.report(),
            },
            error @ TransportError::TooLarge { .. } => AdminError::InvalidAnswer {
                url,
                why: error.report(),
            },
            error @ TransportError::PlainHttpRefused { .. } => AdminError::Usage(error.report()),
            TransportError::Refused {
                status,
                code,
                message,
            } => AdminError::Refused {
                status,
                code,
                message,
            },
            TransportError::InvalidUrl(why) => AdminError::Server(why),
            other => AdminError::Usage(other.report()),
        }
    }

    fn answer(&self, response: &HttpResponse) -> Result<Answer, AdminError> {
        let invalid = |why: String| AdminError::InvalidAnswer {
            url: self.url.clone(),
            why: format!("HTTP {}: {why}", response.status),
        };
        let json = if response.body.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            serde_json::from_slice::<Value>(&response.body)
                .map_err(|error| invalid(format!("not JSON ({error})")))?
        };
        if (200..300).contains(&response.status) {
            return Ok(Answer {
                json,
                raw: String::from_utf8_lossy(&response.body).into_owned(),
                next: response.next_page.clone(),
            });
        }
        match (json["code"].as_str(), json["message"].as_str()) {
            (Some(code), Some(message)) => Err(AdminError::Refused {
                status: response.status,
                code: code.to_owned(),
                message: message.to_owned(),
            }),
            _ => Err(invalid("a refusal without a code".to_owned())),
        }
    }
}

/// `segments` as a path, each percent-encoded: `/v1/admin/licenses/K%2F1`.
pub fn path(segments: &[&str]) -> String {
    segments
        .iter()
        .map(|segment| format!("/{}", encode(segment)))
        .collect()
}

/// `path` with the query of the parameters that have a value: `path?after=K&limit=10`.
pub fn with_query(path: &str, parameters: &[(&str, Option<String>)]) -> String {
    let query: Vec<String> = parameters
        .iter()
        .filter_map(|(name, value)| {
            value
                .as_ref()
                .map(|value| format!("{name}={}", encode(value)))
        })
        .collect();
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

/// Percent-encodes everything but the unreserved characters of RFC 3986.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn the_token_comes_from_the_file_first_then_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("admin.token");
        std::fs::write(&file, "lct_admin_file\n").unwrap();
        let token = AdminToken::locate(Some(&file), Some("lct_admin_env".into())).unwrap();
        assert_eq!(token.as_str(), "lct_admin_file");
        let token = AdminToken::locate(None, Some(" lct_admin_env\n".into())).unwrap();
        assert_eq!(token.as_str(), "lct_admin_env");
        assert!(matches!(
            AdminToken::locate(None, None),
            Err(AdminError::NoToken)
        ));
        // Its Debug form does not show it.
        assert_eq!(format!("{token:?}"), "AdminToken(..)");

        let missing = dir.path().join("missing");
        let error = AdminToken::locate(Some(&missing), None).unwrap_err();
        assert!(matches!(error, AdminError::File { .. }), "{error}");
        assert_eq!(error.exit_code(), EXIT_USAGE);
        std::fs::write(&file, "\n").unwrap();
        assert!(matches!(
            AdminToken::locate(Some(&file), None),
            Err(AdminError::BadToken(_))
        ));
        std::fs::write(&file, "one\ntwo\n").unwrap();
        assert!(matches!(
            AdminToken::locate(Some(&file), None),
            Err(AdminError::BadToken(_))
        ));
        std::fs::write(&file, "x".repeat(5000)).unwrap();
        assert!(matches!(
            AdminToken::locate(Some(&file), None),
            Err(AdminError::BadToken(_))
        ));
    }

    #[test]
    fn paths_and_queries_are_percent_encoded() {
        assert_eq!(
            path(&["v1", "admin", "licenses", "K/1 x", "seats", "s?1"]),
            "/v1/admin/licenses/K%2F1%20x/seats/s%3F1"
        );
        assert_eq!(
            with_query(
                "/v1/admin/audit",
                &[
                    ("license", Some("K&1".to_owned())),
                    ("after", None),
                    ("limit", Some("10".to_owned())),
                ]
            ),
            "/v1/admin/audit?license=K%261&limit=10"
        );
        assert_eq!(with_query("/p", &[("a", None)]), "/p");
    }

    #[test]
    fn refusals_are_errors_with_the_servers_code() {
        let client = AdminClient::new("127.0.0.1:9", AdminToken("t".into())).unwrap();
        let answer = |status, body: &str| HttpResponse {
            next_page: None,
            status,
            content_type: None,
            body: body.as_bytes().to_vec(),
        };
        assert_eq!(
            client.answer(&answer(200, r#"{"a":1}"#)).unwrap().json["a"],
            1
        );
        assert_eq!(client.answer(&answer(204, "")).unwrap().json, Value::Null);
        let refused = client
            .answer(&answer(
                401,
                r#"{"code":"UNAUTHORIZED","message":"the token is not valid","rule":"api.auth"}"#,
            ))
            .unwrap_err();
        assert_eq!(refused.to_string(), "UNAUTHORIZED: the token is not valid");
        assert_eq!(refused.exit_code(), EXIT_REFUSED);
        for (status, body) in [
            (502, "<html>bad gateway</html>"),
            (500, "{}"),
            (200, "nope"),
        ] {
            let error = client.answer(&answer(status, body)).unwrap_err();
            assert!(
                matches!(error, AdminError::InvalidAnswer { .. }),
                "{status} {body}: {error}"
            );
            assert_eq!(error.exit_code(), EXIT_UNREACHABLE);
        }
        assert!(matches!(
            AdminClient::new("ftp://example.invalid", AdminToken("t".into())),
            Err(AdminError::Server(_))
        ));
    }
}
