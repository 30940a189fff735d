//! Stateless web sessions: an HMAC-signed cookie carrying the area, the signed-in actor, the
//! expiry and a CSRF secret, keyed by the server's web secret (`web.secret` in the server
//! directory). Replicas that share the file accept each other's sessions; nothing is stored.
//!
//! The web secret keys this HMAC and nothing else.

use std::path::{Path, PathBuf};

use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::config::{Config, ServerRole};
use crate::error::StartError;
use crate::keys::{hex, random_bytes, write_private};

/// The first line's prefix of a web secret file.
const SECRET_PREFIX: &str = "licet-web-secret:";
/// The name of the web secret file in the server directory.
pub const SECRET_FILE: &str = "web.secret";
/// What the MAC covers besides the payload: the purpose and the format version.
const MAC_CONTEXT: &[u8] = b"licet-web-session-v1\0";
/// How long a session lasts without a page being opened.
pub const IDLE: Duration = Duration::minutes(30);
/// How long a session lasts at most after signing in.
pub const ABSOLUTE: Duration = Duration::hours(12);
/// The largest cookie value read.
const MAX_COOKIE: usize = 2048;

/// Why the web secret could not be made.
#[derive(Debug, thiserror::Error)]
#[error("the system random source failed")]
pub struct RandomFailed;

/// The per-server secret that keys the session cookies' HMAC.
#[derive(Clone)]
pub struct WebSecret {
    key: [u8; 32],
}

impl std::fmt::Debug for WebSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebSecret(..)")
    }
}

impl WebSecret {
    /// A fresh random secret (tests, or a server that keeps none).
    pub fn generate() -> Result<WebSecret, RandomFailed> {
        Ok(WebSecret {
            key: random_bytes::<32>().map_err(|_| RandomFailed)?,
        })
    }

    /// A secret from its bytes.
    pub fn from_bytes(key: [u8; 32]) -> WebSecret {
        WebSecret { key }
    }

    /// Where a server keeps its web secret: beside its signing key (`vendor_key` on an activation
    /// center, `server_key` on a license server), the server directory `init` and `--demo` make.
    pub fn path_for(config: &Config) -> Option<PathBuf> {
        let key = match config.role {
            ServerRole::ActivationCenter => config.vendor_key.as_deref(),
            ServerRole::LicenseServer => config.server_key.as_deref(),
        }?;
        Some(
            key.parent()
                .unwrap_or_else(|| Path::new("."))
                .join(SECRET_FILE),
        )
    }

    /// The server's web secret: read from the server directory, or made there on first start.
    pub fn for_config(config: &Config) -> Result<WebSecret, StartError> {
        match WebSecret::path_for(config) {
            Some(path) => WebSecret::load_or_create(&path),
            None => WebSecret::generate().map_err(|_| StartError::Key {
                path: PathBuf::from(SECRET_FILE),
                message: "the system random source failed".into(),
            }),
        }
    }

    /// Reads the secret file at `path`, creating it (owner-only) when it does not exist.
    pub fn load_or_create(path: &Path) -> Result<WebSecret, StartError> {
        let malformed = |message: &str| StartError::Key {
            path: path.to_owned(),
            message: message.to_owned(),
        };
        let io = |source| StartError::Io {
            path: path.to_owned(),
            source,
        };
        if !path.exists() {
            let secret = WebSecret::generate().map_err(|_| malformed("no random bytes"))?;
            let line = format!("{SECRET_PREFIX}{}\n", STANDARD.encode(secret.key));
            match write_private(path, line.as_bytes()) {
                Ok(()) => return Ok(secret),
                // Another replica or process made it first: read theirs.
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(error) => return Err(io(error)),
            }
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        let encoded = text
            .trim()
            .strip_prefix(SECRET_PREFIX)
            .ok_or_else(|| malformed("not a web secret file (`licet-web-secret:` line)"))?;
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| malformed("the web secret is not base64"))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| malformed("the web secret is not 32 bytes"))?;
        Ok(WebSecret { key })
    }

    fn mac(&self, payload: &[u8]) -> Option<Hmac<Sha256>> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).ok()?;
        mac.update(MAC_CONTEXT);
        mac.update(payload);
        Some(mac)
    }
}

/// The three web areas; each has its own cookie, scoped to its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Area {
    /// The online service center (`/service`): end users signed in with their license key.
    Service,
    /// The client interface (`/client`): client accounts of the standard model.
    Client,
    /// The administrator interface (`/admin`).
    Admin,
}

impl Area {
    /// The cookie's name.
    pub fn cookie(self) -> &'static str {
        match self {
            Area::Service => "licet_service",
            Area::Client => "licet_client",
            Area::Admin => "licet_admin",
        }
    }

    /// The path the area and its cookie live under.
    pub fn path(self) -> &'static str {
        match self {
            Area::Service => "/service",
            Area::Client => "/client",
            Area::Admin => "/admin",
        }
    }

    /// The sign-in page.
    pub fn login(self) -> &'static str {
        match self {
            Area::Service => "/service/login",
            Area::Client => "/client/login",
            Area::Admin => "/admin/login",
        }
    }

    /// The name people read.
    pub fn name(self) -> &'static str {
        match self {
            Area::Service => "Online service center",
            Area::Client => "Client interface",
            Area::Admin => "Administration",
        }
    }
}

/// Who a session belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WebActor {
    /// Not signed in yet: the session only carries the CSRF secret of the sign-in form.
    Anonymous,
    /// An end user signed in with a license key.
    EndUser(String),
    /// A client account.
    Client(String),
    /// An administrator, by the name of their token.
    Administrator(String),
}

/// A session, as carried by its cookie.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    /// The area the cookie was made for.
    pub area: Area,
    /// Who is signed in.
    pub actor: WebActor,
    /// When the session ends unless a page is opened (Unix seconds).
    pub exp: i64,
    /// When the session ends at the latest (Unix seconds).
    pub max: i64,
    /// The CSRF secret every form of the session carries (hex); renewed after each accepted form.
    pub csrf: String,
}

/// What a request's cookie says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionState {
    /// No cookie for the area.
    Missing,
    /// A cookie that is not one this server signed for the area (forged, altered, garbled).
    Invalid,
    /// A genuine session that ended.
    Expired,
    /// A genuine, running session.
    Valid(Session),
}

fn fresh_csrf() -> Result<String, RandomFailed> {
    Ok(hex(&random_bytes::<16>().map_err(|_| RandomFailed)?))
}

impl Session {
    /// A new session for `actor` starting at `now`.
    pub fn start(area: Area, actor: WebActor, now: DateTime<Utc>) -> Result<Session, RandomFailed> {
        let max = (now + ABSOLUTE).timestamp();
        Ok(Session {
            area,
            actor,
            exp: (now + IDLE).timestamp().min(max),
            max,
            csrf: fresh_csrf()?,
        })
    }

    /// The same session kept alive at `now` (the idle expiry moves, the absolute one does not).
    pub fn touched(&self, now: DateTime<Utc>) -> Session {
        Session {
            exp: (now + IDLE).timestamp().min(self.max),
            ..self.clone()
        }
    }

    /// The same session with a new CSRF secret, after a form was accepted: the form's token
    /// cannot be sent again.
    pub fn rotated(&self, now: DateTime<Utc>) -> Result<Session, RandomFailed> {
        Ok(Session {
            csrf: fresh_csrf()?,
            ..self.touched(now)
        })
    }

    /// Whether `token` is this session's CSRF token (compared in constant time).
    pub fn csrf_matches(&self, token: &str) -> bool {
        let (a, b) = (self.csrf.as_bytes(), token.as_bytes());
        if a.len() != b.len() || a.is_empty() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    /// The signed cookie value.
    pub fn encode(&self, secret: &WebSecret) -> Option<String> {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).ok()?);
        let tag = secret.mac(payload.as_bytes())?.finalize().into_bytes();
        Some(format!("{payload}.{}", URL_SAFE_NO_PAD.encode(tag)))
    }

    /// Verifies and decodes a cookie value made for `area`.
    pub fn decode(value: &str, area: Area, secret: &WebSecret, now: DateTime<Utc>) -> SessionState {
        if value.len() > MAX_COOKIE {
            return SessionState::Invalid;
        }
        let Some((payload, tag)) = value.split_once('.') else {
            return SessionState::Invalid;
        };
        let Ok(tag) = URL_SAFE_NO_PAD.decode(tag) else {
            return SessionState::Invalid;
        };
        let Some(mac) = secret.mac(payload.as_bytes()) else {
            return SessionState::Invalid;
        };
        if mac.verify_slice(&tag).is_err() {
            return SessionState::Invalid;
        }
        let session: Session = match URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        {
            Some(session) => session,
            None => return SessionState::Invalid,
        };
        if session.area != area {
            return SessionState::Invalid;
        }
        let now = now.timestamp();
        if now >= session.exp || now >= session.max {
            return SessionState::Expired;
        }
        SessionState::Valid(session)
    }

    /// The `Set-Cookie` header carrying the session; `secure` when the page came over TLS.
    pub fn set_cookie(
        &self,
        secret: &WebSecret,
        now: DateTime<Utc>,
        secure: bool,
    ) -> Option<HeaderValue> {
        let value = self.encode(secret)?;
        let max_age = (self.max - now.timestamp()).max(0);
        cookie_header(self.area, &value, max_age, secure)
    }
}

/// The `Set-Cookie` header that removes the area's cookie.
pub fn clear_cookie(area: Area, secure: bool) -> Option<HeaderValue> {
    cookie_header(area, "", 0, secure)
}

fn cookie_header(area: Area, value: &str, max_age: i64, secure: bool) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{}={value}; Path={}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}",
        area.cookie(),
        area.path()
    ))
    .ok()
}

/// The session a request carries for `area`.
pub fn read(
    headers: &HeaderMap,
    area: Area,
    secret: &WebSecret,
    now: DateTime<Utc>,
) -> SessionState {
    let mut found = None;
    for header in headers.get_all(COOKIE) {
        let Ok(text) = header.to_str() else {
            return SessionState::Invalid;
        };
        for pair in text.split(';') {
            if let Some((name, value)) = pair.trim().split_once('=') {
                if name == area.cookie() {
                    if found.is_some() {
                        // Two cookies of the same name: refuse rather than guess.
                        return SessionState::Invalid;
                    }
                    found = Some(value.to_owned());
                }
            }
        }
    }
    match found {
        None => SessionState::Missing,
        Some(value) if value.is_empty() => SessionState::Missing,
        Some(value) => Session::decode(&value, area, secret, now),
    }
}

/// Adds a `Set-Cookie` header to `headers`.
pub fn push_cookie(headers: &mut HeaderMap, value: Option<HeaderValue>) {
    if let Some(value) = value {
        headers.append(SET_COOKIE, value);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sessions_verify_only_with_their_secret_area_and_time() {
        let secret = WebSecret::from_bytes([7; 32]);
        let now = Utc::now();
        let session =
            Session::start(Area::Admin, WebActor::Administrator("ops".into()), now).unwrap();
        let value = session.encode(&secret).unwrap();
        assert_eq!(
            Session::decode(&value, Area::Admin, &secret, now),
            SessionState::Valid(session.clone())
        );
        assert_eq!(
            Session::decode(&value, Area::Client, &secret, now),
            SessionState::Invalid
        );
        let other = WebSecret::from_bytes([8; 32]);
        assert_eq!(
            Session::decode(&value, Area::Admin, &other, now),
            SessionState::Invalid
        );
        assert_eq!(
            Session::decode(&value, Area::Admin, &secret, now + IDLE),
            SessionState::Expired
        );
        let mut tampered = value.clone();
        tampered.insert(3, 'x');
        assert_eq!(
            Session::decode(&tampered, Area::Admin, &secret, now),
            SessionState::Invalid
        );
        assert!(session.csrf_matches(&session.csrf));
        assert!(!session.csrf_matches(""));
        let rotated = session.rotated(now).unwrap();
        assert!(!rotated.csrf_matches(&session.csrf));
    }
}
