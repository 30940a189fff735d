//! A license server and its activation center: activation, revalidation and return, online
//! (`/v1/server/activate|validate|return` over HTTP) or by request and response files carried by
//! hand, and the background task that revalidates every served server license.
//!
//! Online answers carry the server license in `server_license`; by files, the license-server
//! activation request names the server's fingerprint and public key, its response
//! ([`ServerActivationResponse`]) carries the server license, and a return is the usual return
//! request of role `license-server` naming the server license's serial. Pending requests are kept
//! in `exchange-state.json` with the engine's [`ExchangeState`], which refuses a response that
//! answers no pending request of this machine, replays or older ones.

use licet_engine::report::Report as _;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, SubsecRound, Utc};
use licet_client::http::{HttpTransport, PinnedCertificate};
use licet_engine::exchange::{
    ActivationRequest, ExchangeState, Nonce, ReturnRequest, ReturnResponse, Role,
    ServerActivationResponse,
};
use licet_engine::server_license::ServerLicenseClaims;
use licet_engine::{Code, ProductRef};
use serde_json::{json, Value};

use super::{files, Entry, LicenseServer, LicenseServerError, ServedLicense};
use crate::service::Licensing;

/// How long one request to the activation center may take.
const CENTER_TIMEOUT: Duration = Duration::from_secs(15);
/// How often the server directory is read again for server licenses installed or returned by
/// the command line while the server runs.
pub const RESCAN_INTERVAL: Duration = Duration::from_secs(5);

/// What a revalidation did to one server license.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revalidation {
    /// The center answered a fresh server license, now served (seats, expiry, features as it
    /// says).
    Renewed {
        /// Seats of the fresh server license.
        seats: u32,
    },
    /// The center answered `REVOKED`, `EXPIRED` or `NOT_ACTIVATED`; the key is no longer served.
    Withdrawn {
        /// The center's code.
        code: String,
    },
    /// The center could not be asked, or its answer could not be used; the stored server license
    /// is served until its offline period ends.
    Kept {
        /// Why.
        reason: String,
    },
}

impl LicenseServer {
    fn center_url(&self, url: Option<&str>) -> Result<String, LicenseServerError> {
        url.or(self.center.as_deref())
            .map(str::to_owned)
            .ok_or_else(|| {
                LicenseServerError::Invalid(
                    "no activation center is configured (`center:`); give --center URL, or exchange request and response files".to_owned(),
                )
            })
    }

    fn server_key_base64(&self) -> String {
        STANDARD.encode(self.public_key().as_bytes())
    }

    /// The claims of the server license stored for `key` (served or not).
    pub fn stored_claims(&self, key: &str) -> Result<ServerLicenseClaims, LicenseServerError> {
        self.entry(key)
            .and_then(|entry| entry.claims().cloned())
            .ok_or_else(|| LicenseServerError::NotStored(key.to_owned()))
    }

    /// Activates the network license `key` on this license server online: answers the installed
    /// server license.
    pub async fn activate_online(
        &self,
        center: Option<&str>,
        key: &str,
        product: &str,
        edition: &str,
        now: DateTime<Utc>,
    ) -> Result<Arc<ServedLicense>, LicenseServerError> {
        let url = self.center_url(center)?;
        let policy = self.policy(product)?.clone();
        let machine = self.fingerprint(&policy)?;
        let body = json!({
            "key": key,
            "target": { "product": product, "edition": edition, "version": policy.product.version },
            "machine": machine,
            "server_key": self.server_key_base64(),
        });
        let answer = post(
            &url,
            self.center_certificate.as_ref(),
            product,
            "/v1/server/activate",
            body,
        )
        .await?;
        let text = granted_server_license(answer)?;
        self.install(&text, now).await
    }

    /// Asks the center about `key` once: a fresh server license replaces the stored one; a
    /// `REVOKED`, `EXPIRED` or `NOT_ACTIVATED` answer withdraws it; anything else keeps it.
    pub async fn revalidate(
        &self,
        center: Option<&str>,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Revalidation, LicenseServerError> {
        let url = self.center_url(center)?;
        let claims = self.stored_claims(key)?;
        let policy = self.policy(&claims.product)?.clone();
        let machine = self.fingerprint(&policy)?;
        let body = json!({ "key": key, "machine": machine, "server_key": self.server_key_base64(),
                           "certificate_serial": claims.serial });
        let answer = match post(
            &url,
            self.center_certificate.as_ref(),
            &claims.product,
            "/v1/server/validate",
            body,
        )
        .await
        {
            Ok(answer) => answer,
            Err(LicenseServerError::Unreachable(reason)) => {
                return Ok(Revalidation::Kept { reason })
            }
            Err(error) => return Err(error),
        };
        if answer.status != 200 {
            let (code, message) = refusal_of(&answer.body);
            let withdrawn = match code.as_str() {
                "REVOKED" => Some(Code::Revoked),
                "EXPIRED" => Some(Code::ServerLicenseExpired),
                "NOT_ACTIVATED" | "EXCHANGE_SERIAL_RETURNED" => Some(Code::ServerLicenseInvalid),
                _ => None,
            };
            return match withdrawn {
                Some(denial) => {
                    self.withdraw(
                        key,
                        denial,
                        format!("the activation center answered {code}: {message}"),
                    )
                    .await?;
                    Ok(Revalidation::Withdrawn { code })
                }
                None => Ok(Revalidation::Kept {
                    reason: format!(
                        "the activation center answered {} {code}: {message}",
                        answer.status
                    ),
                }),
            };
        }
        let text = match granted_server_license(answer) {
            Ok(text) => text,
            Err(error) => {
                return Ok(Revalidation::Kept {
                    reason: error.report(),
                })
            }
        };
        match self.install(&text, now).await {
            Ok(served) => Ok(Revalidation::Renewed {
                seats: served.license.claims().seats,
            }),
            Err(LicenseServerError::Refused { code, reason }) => Ok(Revalidation::Kept {
                reason: format!("the fresh server license is refused: {code}: {reason}"),
            }),
            Err(error) => Err(error),
        }
    }

    /// Revalidates every served server license with the configured center (nothing without
    /// one); what happened to each.
    pub async fn revalidate_all(&self, now: DateTime<Utc>) -> Vec<(String, Revalidation)> {
        if self.center.is_none() {
            return Vec::new();
        }
        let keys: Vec<String> = self
            .entries()
            .into_iter()
            .filter(|(_, entry)| matches!(entry, Entry::Served(_)))
            .map(|(key, _)| key)
            .collect();
        let mut done = Vec::new();
        for key in keys {
            let outcome = match self.revalidate(None, &key, now).await {
                Ok(outcome) => outcome,
                Err(error) => Revalidation::Kept {
                    reason: error.report(),
                },
            };
            match &outcome {
                Revalidation::Renewed { seats } => {
                    tracing::info!("server license of `{key}` revalidated: {seats} seats");
                }
                Revalidation::Withdrawn { code } => {
                    tracing::warn!(
                        "server license of `{key}` withdrawn by the activation center: {code}"
                    );
                }
                Revalidation::Kept { reason } => {
                    tracing::warn!("server license of `{key}` not revalidated: {reason}");
                }
            }
            done.push((key, outcome));
        }
        done
    }

    /// Returns `key` to the center online, then forgets its server license.
    pub async fn return_online(
        &self,
        center: Option<&str>,
        key: &str,
    ) -> Result<(), LicenseServerError> {
        let url = self.center_url(center)?;
        let claims = self.stored_claims(key)?;
        let policy = self.policy(&claims.product)?.clone();
        let machine = self.fingerprint(&policy)?;
        // The center frees the activation only for the serial of the server license it holds.
        let body = json!({ "key": key, "machine": machine, "server_key": self.server_key_base64(),
                           "certificate_serial": claims.serial });
        let answer = post(
            &url,
            self.center_certificate.as_ref(),
            &claims.product,
            "/v1/server/return",
            body,
        )
        .await?;
        if answer.status != 200 {
            let (code, message) = refusal_of(&answer.body);
            return Err(LicenseServerError::Center {
                status: answer.status,
                code,
                message,
            });
        }
        self.forget(key).await
    }

    /// Writes a license-server activation request for `key` (also to renew a stored server
    /// license by files) and remembers it as pending; answers the file's text.
    pub fn activation_request(
        &self,
        key: &str,
        product: &str,
        edition: &str,
        now: DateTime<Utc>,
    ) -> Result<String, LicenseServerError> {
        let policy = self.policy(product)?.clone();
        let request = ActivationRequest {
            role: Role::LicenseServer,
            license_key: key.to_owned(),
            target: ProductRef {
                product: product.to_owned(),
                edition: edition.to_owned(),
                version: policy.product.version.clone(),
            },
            machine: self.fingerprint(&policy)?,
            nonce: nonce()?,
            created_at: now.trunc_subsecs(0),
            server_key: Some(self.public_key().to_bytes()),
        };
        let mut state = files::read_exchange_state(&self.dir)?;
        let text = state.begin_activation(&request)?;
        files::write_exchange_state(&self.dir, &state)?;
        Ok(text)
    }

    /// Loads a license-server activation response: verified with the vendor key, answering a
    /// pending request of this machine, newer than the last one; its server license is
    /// installed (replacing the stored one of the key).
    pub async fn load_activation_response(
        &self,
        file: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Arc<ServedLicense>, LicenseServerError> {
        let response = ServerActivationResponse::from_xml(file, &self.vendor)?;
        let product = response.server_license().claims().product.clone();
        let policy = self.policy(&product)?.clone();
        let machine = self.fingerprint(&policy)?;
        let mut state = files::read_exchange_state(&self.dir)?;
        state.accept_server_activation(&response, &machine)?;
        let served = self
            .install(&response.server_license().to_armored(), now)
            .await?;
        files::write_exchange_state(&self.dir, &state)?;
        Ok(served)
    }

    /// Writes a return request for the stored server license of `key` and remembers it as
    /// pending; from now on the key is not served. Answers the file's text.
    pub fn return_request(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<String, LicenseServerError> {
        let claims = self.stored_claims(key)?;
        let policy = self.policy(&claims.product)?.clone();
        let request = ReturnRequest {
            role: Role::LicenseServer,
            license_key: key.to_owned(),
            target: ProductRef {
                product: claims.product.clone(),
                edition: claims.edition.clone(),
                version: claims.version.clone(),
            },
            machine: self.fingerprint(&policy)?,
            nonce: nonce()?,
            created_at: now.trunc_subsecs(0),
            certificate_serial: claims.serial.clone(),
        };
        let mut state = files::read_exchange_state(&self.dir)?;
        let text = state.begin_return(&request)?;
        files::write_exchange_state(&self.dir, &state)?;
        Ok(text)
    }

    /// Loads a return response: verified with the vendor key and answering the pending return
    /// of this machine; the key's server license is then forgotten.
    pub async fn load_return_response(&self, file: &[u8]) -> Result<String, LicenseServerError> {
        let response = ReturnResponse::from_xml(file, &self.vendor)?;
        let key = response.license_key().to_owned();
        let claims = self.stored_claims(&key)?;
        let policy = self.policy(&claims.product)?.clone();
        let machine = self.fingerprint(&policy)?;
        let mut state: ExchangeState = files::read_exchange_state(&self.dir)?;
        state.accept_return(&response, &machine)?;
        self.forget(&key).await?;
        files::write_exchange_state(&self.dir, &state)?;
        Ok(key)
    }
}

fn nonce() -> Result<Nonce, LicenseServerError> {
    crate::keys::random_bytes::<32>()
        .map(Nonce)
        .map_err(|error| {
            LicenseServerError::Invalid(format!("the system random source failed: {error}"))
        })
}

/// An answer of the center: its status and JSON body.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: Value,
}

/// Posts JSON to the center with the client's HTTP transport (on a blocking thread).
/// `pin`, when set, is the certificate the center's TLS certificate must chain to.
async fn post(
    url: &str,
    pin: Option<&PinnedCertificate>,
    product: &str,
    path: &str,
    body: Value,
) -> Result<Answer, LicenseServerError> {
    let mut transport = HttpTransport::new(url, product)
        .map_err(|error| LicenseServerError::Invalid(error.report()))?
        .with_timeout(CENTER_TIMEOUT);
    if let Some(pin) = pin {
        transport = transport.with_pinned_certificate(pin.clone());
    }
    let path = path.to_owned();
    let bytes =
        serde_json::to_vec(&body).map_err(|error| LicenseServerError::Invalid(error.report()))?;
    let response =
        tokio::task::spawn_blocking(move || transport.post(&path, "application/json", &bytes))
            .await
            .map_err(|error| LicenseServerError::Unreachable(error.report()))?
            .map_err(|error| LicenseServerError::Unreachable(error.report()))?;
    let body = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    Ok(Answer {
        status: response.status,
        body,
    })
}

/// The code and sentence of a refusal.
fn refusal_of(body: &Value) -> (String, String) {
    let text = |name: &str| body[name].as_str().unwrap_or_default().to_owned();
    let code = text("code");
    (
        if code.is_empty() {
            "UNKNOWN".to_owned()
        } else {
            code
        },
        text("message"),
    )
}

/// The armored server license of an allowed answer, or the center's refusal.
fn granted_server_license(answer: Answer) -> Result<String, LicenseServerError> {
    if answer.status != 200 {
        let (code, message) = refusal_of(&answer.body);
        return Err(LicenseServerError::Center {
            status: answer.status,
            code,
            message,
        });
    }
    answer.body["server_license"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| {
            LicenseServerError::Unreachable(
                "the activation center's answer carries no server license".to_owned(),
            )
        })
}

/// The license server's background work while it serves: reads the directory again every
/// [`RESCAN_INTERVAL`] (server licenses installed or returned by the command line) and
/// revalidates every served server license with the center every `revalidate_every`.
pub async fn run_lifecycle(licensing: Licensing) {
    let Some(server) = licensing.license_server().cloned() else {
        return;
    };
    let every = server.revalidate_every().max(Duration::from_secs(1));
    let mut rescan = tokio::time::interval(RESCAN_INTERVAL);
    let mut revalidate = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    rescan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    revalidate.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = rescan.tick() => {
                if let Err(error) = server.reload().await {
                    tracing::warn!("reading the server licenses failed: {}", error.report());
                }
            }
            _ = revalidate.tick() => {
                server.revalidate_all(licensing.now()).await;
            }
        }
    }
}
