//! The `license-server` role: a customer's network license server, which never holds the vendor's
//! key.
//!
//! The activation center grants a license server one **server license** per network license key
//! (vendor-signed: seats, edition, version, term, lease length, borrowing maximum, features and
//! counters, bound to this server's key and machine, with an offline period). The license server
//! keeps them as armored files in `DIR/server-licenses/<KEY>.lic` and, at start-up and whenever one
//! is installed, verifies each: the vendor's signature, the binding to this server (its own public
//! key and its machine fingerprint, or its network dongle), the loaded policy's hash, and that it
//! is in force. Only verified server licenses are served ([`served`]): the engine decides on a
//! license built from the server license's claims (never from the database row, which exists so
//! that leases have a parent), under the policy with the server license's lease length and
//! borrowing maximum, and certificates are signed with the server's own key once the server
//! license admits them.
//!
//! [`activation`] talks to the activation center (online, or by request and response files) and
//! revalidates periodically; [`status`] is what `licet-server status` and `GET /v1/seats/query`
//! show.

use licet_engine::report::Report as _;
pub mod activation;
mod files;
pub(crate) mod served;
pub mod status;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::{SigningKey, VerifyingKey};
use licet_client::http::PinnedCertificate;
use licet_client::machine::{MachineProbe, NativeProbe};
use licet_engine::certificate::{Binding, TermKind};
use licet_engine::exchange::ExchangeError;
use licet_engine::policy::BorrowingPolicy;
use licet_engine::server_license::{ServerLicense, ServerLicenseClaims};
use licet_engine::state::{License, LicenseStatus, LimitedTerms, Term};
use licet_engine::{Code, Fingerprint, Policy};
use serde::{Deserialize, Serialize};

use crate::dongle::DongleCheck;
use crate::error::StoreError;
use crate::service::Policies;
use crate::store::{job, LicenseRecord, Store};

/// The rule of a license server's refusals of anything but seat traffic.
pub const ROLE_RULE: &str = "license_server.role";
/// The rule of refusals about the server license of the requested key.
pub const LICENSE_RULE: &str = "license_server.license";

/// How a license server identifies its machine: its fingerprint for one product.
pub trait ServerIdentity: Send + Sync + fmt::Debug {
    /// The machine's fingerprint as `product`'s clients would hash it.
    fn fingerprint(&self, product: &str) -> Result<Fingerprint, String>;
}

/// The machine this process runs on, read with the client's [`NativeProbe`].
#[derive(Debug, Default, Clone, Copy)]
pub struct NativeIdentity;

impl ServerIdentity for NativeIdentity {
    fn fingerprint(&self, product: &str) -> Result<Fingerprint, String> {
        NativeProbe::for_product(product)
            .fingerprint()
            .map_err(|error| error.report())
    }
}

/// A fixed fingerprint (tests, and machines identified by other means).
#[derive(Debug, Clone)]
pub struct FixedIdentity(pub Fingerprint);

impl ServerIdentity for FixedIdentity {
    fn fingerprint(&self, _product: &str) -> Result<Fingerprint, String> {
        if self.0.components.is_empty() {
            return Err("no machine fingerprint component could be read".to_owned());
        }
        Ok(self.0.clone())
    }
}

/// Why a license server operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LicenseServerError {
    /// A file could not be read or written.
    #[error("`{path}`")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A server license (or a response carrying one) is refused.
    #[error("{code}: {reason}")]
    Refused {
        /// `SERVER_LICENSE_INVALID`, `SERVER_LICENSE_EXPIRED`, ...
        code: Code,
        /// Why.
        reason: String,
    },
    /// A request or response file is refused.
    #[error("{code}: {source}", code = .source.code())]
    Exchange {
        /// The engine's exchange error.
        #[from]
        source: ExchangeError,
    },
    /// The activation center refused.
    #[error("the activation center refused ({status} {code}): {message}")]
    Center {
        /// The HTTP status.
        status: u16,
        /// The code of its answer.
        code: String,
        /// Its sentence.
        message: String,
    },
    /// The activation center could not be reached, or answered nonsense.
    #[error("the activation center could not be reached: {0}")]
    Unreachable(String),
    /// Nothing is known about the key.
    #[error("no server license of `{0}` is stored on this license server")]
    NotStored(String),
    /// The request is not valid (unknown product, no center configured, ...).
    #[error("{0}")]
    Invalid(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A policy file's text, kept to derive the policy each server license is served under.
#[derive(Debug, Clone)]
pub struct PolicySource {
    /// The file name given to the loader (for diagnostics).
    pub name: String,
    /// The YAML text.
    pub text: String,
}

/// A verified server license, ready to serve.
#[derive(Debug)]
pub struct ServedLicense {
    /// The vendor-signed server license.
    pub license: ServerLicense,
    /// Its armored text, as stored.
    pub armored: String,
    /// The policy with the server license's lease length, borrowing maximum and seats.
    pub policy: Arc<Policy>,
    /// The license the engine decides on, built from the claims.
    pub engine_license: License,
}

/// A server license that is not served, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refusal {
    /// The code requests for the key are denied with.
    pub code: Code,
    /// Why, in a sentence.
    pub reason: String,
    /// Its claims, when its vendor signature verified.
    #[serde(default)]
    pub claims: Option<Box<ServerLicenseClaims>>,
}

/// What the license server knows about one key.
#[derive(Debug, Clone)]
pub enum Entry {
    /// Verified; served while in force.
    Served(Arc<ServedLicense>),
    /// Not served.
    Refused(Arc<Refusal>),
}

impl Entry {
    /// The server license's claims, when its signature verified.
    pub fn claims(&self) -> Option<&ServerLicenseClaims> {
        match self {
            Entry::Served(served) => Some(served.license.claims()),
            Entry::Refused(refusal) => refusal.claims.as_deref(),
        }
    }
}

#[derive(Debug, Clone)]
struct Slot {
    entry: Entry,
    /// The file text the entry was verified from (`None` for a withdrawn one).
    text: Option<String>,
    /// Whether a return was pending when it was verified.
    return_pending: bool,
}

/// What a license server is built from.
#[derive(Debug, Clone)]
pub struct LicenseServerSettings {
    /// The server's own key pair, which signs its seat and borrow certificates.
    pub signing_key: SigningKey,
    /// The vendor's public key, which verifies server licenses and response files.
    pub vendor: VerifyingKey,
    /// Where server licenses and the exchange state are kept.
    pub dir: PathBuf,
    /// The activation center's URL, when the server reaches it.
    pub center: Option<String>,
    /// The certificate the center's TLS certificate must chain to, when one is pinned.
    pub center_certificate: Option<PinnedCertificate>,
    /// How often server licenses are revalidated with the center.
    pub revalidate_every: std::time::Duration,
    /// How the machine is identified.
    pub identity: Arc<dyn ServerIdentity>,
    /// The server's network dongle.
    pub dongle: Arc<dyn DongleCheck>,
    /// The loaded policies.
    pub policies: Policies,
    /// Their sources, by product.
    pub sources: BTreeMap<String, PolicySource>,
    /// The store, to keep a license row for each served key (none for command-line tools that
    /// only handle files).
    pub store: Option<Store>,
}

/// The license server's state: its keys and the server licenses it holds.
#[derive(Debug)]
pub struct LicenseServer {
    signing_key: Arc<SigningKey>,
    vendor: VerifyingKey,
    dir: PathBuf,
    center: Option<String>,
    center_certificate: Option<PinnedCertificate>,
    revalidate_every: std::time::Duration,
    identity: Arc<dyn ServerIdentity>,
    dongle: Arc<dyn DongleCheck>,
    policies: Policies,
    sources: BTreeMap<String, PolicySource>,
    store: Option<Store>,
    entries: RwLock<BTreeMap<String, Slot>>,
    /// Serializes changes to the files and the entries.
    changes: tokio::sync::Mutex<()>,
}

impl LicenseServer {
    /// A license server holding nothing yet; [`LicenseServer::reload`] reads its files.
    pub fn new(settings: LicenseServerSettings) -> LicenseServer {
        LicenseServer {
            signing_key: Arc::new(settings.signing_key),
            vendor: settings.vendor,
            dir: settings.dir,
            center: settings.center,
            center_certificate: settings.center_certificate,
            revalidate_every: settings.revalidate_every,
            identity: settings.identity,
            dongle: settings.dongle,
            policies: settings.policies,
            sources: settings.sources,
            store: settings.store,
            entries: RwLock::new(BTreeMap::new()),
            changes: tokio::sync::Mutex::new(()),
        }
    }

    /// The server's own public key, named by its server licenses.
    pub fn public_key(&self) -> VerifyingKey {
        self.signing_key.verifying_key()
    }

    /// The vendor's public key.
    pub fn vendor_key(&self) -> VerifyingKey {
        self.vendor
    }

    /// The directory of the server licenses and the exchange state.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The activation center's URL, when configured.
    pub fn center(&self) -> Option<&str> {
        self.center.as_deref()
    }

    /// How often server licenses are revalidated.
    pub fn revalidate_every(&self) -> std::time::Duration {
        self.revalidate_every
    }

    /// The loaded policies.
    pub fn policies(&self) -> &Policies {
        &self.policies
    }

    /// The policy of `product`.
    pub fn policy(&self, product: &str) -> Result<&Arc<Policy>, LicenseServerError> {
        self.policies.get(product).ok_or_else(|| {
            LicenseServerError::Invalid(format!(
                "product `{product}` is not licensed by this server (no policy names it)"
            ))
        })
    }

    /// The only product, when the server licenses one; else `product` must name one.
    pub fn product_or_only(&self, product: Option<&str>) -> Result<String, LicenseServerError> {
        match product {
            Some(product) => Ok(self.policy(product)?.product.id.clone()),
            None if self.policies.len() == 1 => self
                .policies
                .keys()
                .next()
                .cloned()
                .ok_or_else(|| LicenseServerError::Invalid("no policy is loaded".to_owned())),
            None => Err(LicenseServerError::Invalid(format!(
                "this server licenses several products ({}); name one with --product",
                self.policies.keys().cloned().collect::<Vec<_>>().join(", ")
            ))),
        }
    }

    /// The machine's fingerprint for `policy`'s product: its policy's components only.
    pub fn fingerprint(&self, policy: &Policy) -> Result<Fingerprint, LicenseServerError> {
        let live = self
            .identity
            .fingerprint(&policy.product.id)
            .map_err(|error| {
                LicenseServerError::Invalid(format!("the machine cannot be identified: {error}"))
            })?;
        let wanted: BTreeSet<&str> = policy
            .fingerprint
            .components
            .iter()
            .map(String::as_str)
            .collect();
        let components: BTreeMap<String, String> = live
            .components
            .into_iter()
            .filter(|(name, _)| wanted.contains(name.as_str()))
            .collect();
        if components.is_empty() {
            return Err(LicenseServerError::Invalid(format!(
                "the machine reports none of the fingerprint components of product `{}` ({})",
                policy.product.id,
                policy.fingerprint.components.join(", ")
            )));
        }
        Ok(Fingerprint { components })
    }

    /// The signing key of the certificates served.
    pub(crate) fn signing_key(&self) -> &Arc<SigningKey> {
        &self.signing_key
    }

    /// What is known about `key` now.
    pub fn entry(&self, key: &str) -> Option<Entry> {
        self.read_entries().get(key).map(|slot| slot.entry.clone())
    }

    /// Every key with what is known about it.
    pub fn entries(&self) -> Vec<(String, Entry)> {
        self.read_entries()
            .iter()
            .map(|(key, slot)| (key.clone(), slot.entry.clone()))
            .collect()
    }

    fn read_entries(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Slot>> {
        self.entries
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write_entries(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Slot>> {
        self.entries
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Verifies an armored server license for this server: the vendor's signature, a product
    /// this server licenses under the same policy, a network license type, and the binding to
    /// this server's key and machine (or network dongle). Whether it is in force is checked
    /// where it is used.
    pub fn verify(&self, text: &str) -> Result<ServedLicense, Refusal> {
        let invalid = |reason: String, claims: Option<&ServerLicenseClaims>| Refusal {
            code: Code::ServerLicenseInvalid,
            reason,
            claims: claims.cloned().map(Box::new),
        };
        let license = ServerLicense::from_armored(text, &self.vendor).map_err(|error| {
            invalid(
                format!(
                    "it is not a server license signed by the vendor ({})",
                    error.report()
                ),
                None,
            )
        })?;
        let claims = license.claims();
        let Some(policy) = self.policies.get(&claims.product) else {
            return Err(invalid(
                format!(
                    "product `{}` is not licensed by this server (no policy names it)",
                    claims.product
                ),
                Some(claims),
            ));
        };
        if claims.policy_hash != policy.hash {
            return Err(invalid(
                format!(
                    "it was issued under another policy than the loaded `{}` of product `{}`",
                    policy.id, claims.product
                ),
                Some(claims),
            ));
        }
        if !policy
            .license_type(&claims.license_type)
            .is_some_and(|license_type| license_type.kind.is_network())
        {
            return Err(invalid(
                format!(
                    "license type `{}` is not a network license type of the policy",
                    claims.license_type
                ),
                Some(claims),
            ));
        }
        let live = match &claims.binding {
            Binding::Fingerprint(_) => Some(
                self.fingerprint(policy)
                    .map_err(|error| invalid(error.report(), Some(claims)))?,
            ),
            Binding::Dongle(_) => None,
        };
        let present = self.dongle.present();
        // The machine is matched with the server license's signed binding rule.
        let machine_matches = live
            .as_ref()
            .is_some_and(|live| license.matches_machine(&live.components));
        license
            .check_bound_to(&self.public_key(), |binding| match (binding, &live) {
                (Binding::Fingerprint(_), Some(_)) => machine_matches,
                // A dongle-bound server license is refused when another dongle is plugged in;
                // while none is, its seats are refused with DONGLE_ABSENT request by request.
                (Binding::Dongle(serial), _) => present.as_ref().is_none_or(|p| p == serial),
                (Binding::Fingerprint(_), None) => false,
            })
            .map_err(|error| Refusal {
                code: error.code(),
                reason: error.report(),
                claims: Some(Box::new(claims.clone())),
            })?;
        let engine_license =
            engine_license(claims).map_err(|reason| invalid(reason, Some(claims)))?;
        let served_policy = self
            .derive_policy(claims, policy)
            .map_err(|reason| invalid(reason, Some(claims)))?;
        Ok(ServedLicense {
            armored: text.to_owned(),
            policy: Arc::new(served_policy),
            engine_license,
            license,
        })
    }

    /// The policy a server license is served under: the loaded one with the server license's
    /// lease length, borrowing maximum and seats for its license type.
    fn derive_policy(
        &self,
        claims: &ServerLicenseClaims,
        loaded: &Policy,
    ) -> Result<Policy, String> {
        let source = self.sources.get(&claims.product).ok_or_else(|| {
            format!(
                "the policy source of product `{}` is not loaded",
                claims.product
            )
        })?;
        let mut policy = Policy::from_yaml(&source.name, &source.text)
            .map_err(|error| format!("the policy cannot be loaded again: {error}"))?;
        if policy.hash != loaded.hash {
            return Err(format!(
                "the policy file `{}` changed since the server started",
                source.name
            ));
        }
        let license_type = policy
            .license_types
            .get_mut(&claims.license_type)
            .ok_or_else(|| format!("license type `{}` is not declared", claims.license_type))?;
        license_type.lease = Some(Duration::seconds(claims.lease_seconds));
        // What an early return does stays the loaded policy's: it is this server's own accounting.
        let early_return = license_type
            .borrowing
            .map(|borrowing| borrowing.early_return)
            .unwrap_or_default();
        license_type.borrowing = claims
            .borrow_max_seconds
            .filter(|_| claims.kinds.borrow)
            .map(|seconds| BorrowingPolicy {
                max: Duration::seconds(seconds),
                early_return,
            });
        license_type.default_seats = Some(claims.seats);
        Ok(policy)
    }

    /// Reads the server licenses stored in the directory and verifies every new or changed one
    /// (unchanged files keep their verified entry). A key whose return is pending is not served;
    /// a withdrawn key (revoked, expired, not activated) keeps its reason. Served keys get their
    /// license row in the store.
    pub async fn reload(&self) -> Result<(), LicenseServerError> {
        let _changes = self.changes.lock().await;
        let stored = files::read_server_licenses(&self.dir)?;
        let withdrawn = files::read_withdrawn(&self.dir)?;
        let pending: BTreeSet<String> = files::read_exchange_state(&self.dir)?
            .pending()
            .filter(|(_, pending)| pending.kind == licet_engine::exchange::PendingKind::Return)
            .map(|(_, pending)| pending.license_key.clone())
            .collect();
        let current = self.read_entries().clone();
        let mut next = BTreeMap::new();
        let mut rows = Vec::new();
        for (key, text) in stored {
            let return_pending = pending.contains(&key);
            let reused = current.get(&key).filter(|slot| {
                slot.text.as_deref() == Some(text.as_str()) && slot.return_pending == return_pending
            });
            if let Some(slot) = reused {
                next.insert(key, slot.clone());
                continue;
            }
            let entry = match self.verify(&text) {
                Ok(served) if served.license.claims().license_key != key => {
                    Entry::Refused(Arc::new(Refusal {
                        code: Code::ServerLicenseInvalid,
                        reason: format!(
                            "the file of `{key}` holds the server license of `{}`",
                            served.license.claims().license_key
                        ),
                        claims: Some(Box::new(served.license.claims().clone())),
                    }))
                }
                Ok(served) if return_pending => Entry::Refused(Arc::new(Refusal {
                    code: Code::ServerLicenseInvalid,
                    reason: "its return to the activation center is pending (load the return response with `licet-server return --load-response`)".to_owned(),
                    claims: Some(Box::new(served.license.claims().clone())),
                })),
                Ok(served) => {
                    rows.push(served.engine_license.clone());
                    Entry::Served(Arc::new(served))
                }
                Err(refusal) => Entry::Refused(Arc::new(refusal)),
            };
            next.insert(
                key,
                Slot {
                    entry,
                    text: Some(text),
                    return_pending,
                },
            );
        }
        for (key, refusal) in withdrawn {
            next.entry(key).or_insert_with(|| Slot {
                entry: Entry::Refused(Arc::new(refusal)),
                text: None,
                return_pending: false,
            });
        }
        for license in rows {
            self.record_row(license).await?;
        }
        *self.write_entries() = next;
        Ok(())
    }

    /// Installs a server license: verifies it (and that it is in force at `now`), keeps the
    /// license row for its key, stores the file atomically and serves it, replacing the one of
    /// the same key. A refused one changes nothing.
    pub async fn install(
        &self,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<Arc<ServedLicense>, LicenseServerError> {
        let served = self
            .verify(text)
            .map_err(|refusal| LicenseServerError::Refused {
                code: refusal.code,
                reason: refusal.reason,
            })?;
        served
            .license
            .check_in_force(now)
            .map_err(|error| LicenseServerError::Refused {
                code: error.code(),
                reason: error.report(),
            })?;
        let key = served.license.claims().license_key.clone();
        let _changes = self.changes.lock().await;
        self.record_row(served.engine_license.clone()).await?;
        files::write_server_license(&self.dir, &key, text)?;
        files::remove_withdrawn(&self.dir, &key)?;
        let served = Arc::new(served);
        self.write_entries().insert(
            key,
            Slot {
                entry: Entry::Served(served.clone()),
                text: Some(text.to_owned()),
                return_pending: false,
            },
        );
        Ok(served)
    }

    /// Stops serving `key` for good (the center revoked it, it expired, or it is no longer
    /// activated on this server): deletes its file and remembers why.
    pub async fn withdraw(
        &self,
        key: &str,
        code: Code,
        reason: String,
    ) -> Result<(), LicenseServerError> {
        let _changes = self.changes.lock().await;
        let claims = self
            .entry(key)
            .and_then(|entry| entry.claims().cloned())
            .map(Box::new);
        let refusal = Refusal {
            code,
            reason,
            claims,
        };
        files::write_withdrawn(&self.dir, key, &refusal)?;
        files::remove_server_license(&self.dir, key)?;
        self.write_entries().insert(
            key.to_owned(),
            Slot {
                entry: Entry::Refused(Arc::new(refusal)),
                text: None,
                return_pending: false,
            },
        );
        Ok(())
    }

    /// Forgets `key` after its return was confirmed: deletes its files.
    pub async fn forget(&self, key: &str) -> Result<(), LicenseServerError> {
        let _changes = self.changes.lock().await;
        files::remove_server_license(&self.dir, key)?;
        files::remove_withdrawn(&self.dir, key)?;
        self.write_entries().remove(key);
        Ok(())
    }

    async fn record_row(&self, license: License) -> Result<(), LicenseServerError> {
        if let Some(store) = &self.store {
            store
                .execute(RecordServedLicense {
                    license,
                    now: Utc::now(),
                })
                .await?;
        }
        Ok(())
    }
}

/// The license the engine decides on for a server license: its claims, enabled, with a fixed
/// window (`limited`) when it ends so that features, counters and expiry are exactly its own.
pub(crate) fn engine_license(claims: &ServerLicenseClaims) -> Result<License, String> {
    let term = match claims.term {
        TermKind::Perpetual => Term::Perpetual,
        TermKind::Rental => Term::Rental {
            ends_at: claims
                .expires_at
                .ok_or("a rental server license must end")?,
        },
        TermKind::Trial => return Err("a server license cannot have trial terms".to_owned()),
    };
    Ok(License {
        key: claims.license_key.clone(),
        product: claims.product.clone(),
        license_type: claims.license_type.clone(),
        edition: claims.edition.clone(),
        version: claims.version.clone(),
        term,
        seats: Some(claims.seats),
        features: claims.features.clone(),
        counters: claims.counters.clone(),
        status: LicenseStatus::Enabled,
        dongle: match &claims.binding {
            Binding::Dongle(serial) => Some(serial.clone()),
            Binding::Fingerprint(_) => None,
        },
        client: None,
        limited: claims.expires_at.map(|expires_at| LimitedTerms {
            not_before: claims.not_before,
            expires_at,
            features: claims.features.clone(),
            counters: claims.counters.clone(),
        }),
    })
}

job! {
    /// Creates or updates the license row of a served key (the parent of its leases).
    RecordServedLicense { license: License, now: DateTime<Utc> } -> ();
    |this, records| {
        match records.lock_license(&this.license.key).await? {
            Some(_) => records.save_license(&this.license, this.now).await,
            None => {
                records
                    .insert_license(&LicenseRecord {
                        license: this.license.clone(),
                        order: None,
                        created_at: this.now,
                    })
                    .await
            }
        }
    }
}
