//! What the web pages read and keep besides the API's records: client passwords (argon2), the
//! response files the service center answered, audit searches and the seat and denial entries
//! the usage page is computed from. Changes are audited in the same transaction.

use std::collections::BTreeMap;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use chrono::{DateTime, Utc};

use crate::error::StoreError;
use crate::keys::random_bytes;
use crate::service::{admin_audit, Licensing, ServiceError};
use crate::store::{job, AuditEntry, AuditSearch, DenialCount, LicenseRecord, ResponseFileRecord};

/// The shortest client password accepted.
pub const MIN_PASSWORD: usize = 10;
/// The longest client password accepted, in bytes.
pub const MAX_PASSWORD: usize = 256;
/// The most seat entries the usage page reads at once.
pub const MAX_USAGE_EVENTS: i64 = 100_000;

fn hash_password(password: &str) -> Result<String, ServiceError> {
    let bytes = random_bytes::<16>().map_err(|_| ServiceError::Random)?;
    let salt = SaltString::encode_b64(&bytes)
        .map_err(|error| ServiceError::Invalid(format!("password salt: {error}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| {
            ServiceError::Invalid(format!("the password could not be hashed: {error}"))
        })
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ServiceError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| ServiceError::Store(StoreError::WorkerStopped))
}

impl Licensing {
    /// Sets a client's password (argon2id, salted), or removes it with `None`; audited.
    pub async fn set_client_password(
        &self,
        actor: &str,
        id: &str,
        password: Option<&str>,
    ) -> Result<(), ServiceError> {
        let hash = match password {
            Some(password) => {
                let length = password.chars().count();
                if length < MIN_PASSWORD || password.len() > MAX_PASSWORD {
                    return Err(ServiceError::Invalid(format!(
                        "a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters"
                    )));
                }
                let password = password.to_owned();
                Some(blocking(move || hash_password(&password)).await??)
            }
            None => None,
        };
        let now = self.now();
        let audit = admin_audit(
            actor,
            if hash.is_some() {
                "set-client-password"
            } else {
                "clear-client-password"
            },
            None,
            format!(
                "client `{id}` {}",
                if hash.is_some() {
                    "has a new password"
                } else {
                    "has no password any more"
                }
            ),
            &serde_json::json!({ "client": id }),
            now,
        )?;
        let found = self
            .store()
            .execute(SetPassword {
                id: id.to_owned(),
                hash,
                audit,
            })
            .await?;
        if found {
            Ok(())
        } else {
            Err(ServiceError::NotFound(format!("client `{id}`")))
        }
    }

    /// Whether `password` is client `id`'s password. An unknown client or one without a password
    /// costs the same time and answers `false`.
    pub async fn verify_client_password(
        &self,
        id: &str,
        password: &str,
    ) -> Result<bool, ServiceError> {
        let stored = self
            .store()
            .read(ClientPassword { id: id.to_owned() })
            .await?
            .flatten();
        let password = password.to_owned();
        blocking(move || match stored {
            Some(hash) => verify_password(&password, &hash),
            None => {
                // The same work as a real check, so timing does not tell who exists.
                let _ = hash_password(&password);
                false
            }
        })
        .await
    }

    /// Keeps a response file the service center answered; returns its identifier.
    pub async fn keep_response_file(
        &self,
        record: ResponseFileRecord,
    ) -> Result<i64, ServiceError> {
        Ok(self.store().execute(KeepResponse { record }).await?)
    }

    /// The license's latest response files, newest first.
    pub async fn response_files(&self, key: &str) -> Result<Vec<ResponseFileRecord>, ServiceError> {
        Ok(self
            .store()
            .read(ResponseFiles {
                key: key.to_owned(),
            })
            .await?)
    }

    /// Audit entries matching `search`, newest first (at most 500).
    pub async fn search_audit(
        &self,
        mut search: AuditSearch,
    ) -> Result<Vec<AuditEntry>, ServiceError> {
        search.limit = search.limit.clamp(1, 500);
        Ok(self.store().read(SearchAudit { search }).await?)
    }

    /// Allowed seat decisions between `from` and `to`, oldest first, at most `limit`.
    pub async fn seat_events(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        license_key: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, ServiceError> {
        Ok(self
            .store()
            .read(SeatEvents {
                from,
                to,
                license_key: license_key.map(str::to_owned),
                limit: limit.clamp(1, MAX_USAGE_EVENTS),
            })
            .await?)
    }

    /// Denials between `from` and `to`, counted by code.
    pub async fn denial_counts(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        license_key: Option<&str>,
    ) -> Result<Vec<DenialCount>, ServiceError> {
        Ok(self
            .store()
            .read(DenialCounts {
                from,
                to,
                license_key: license_key.map(str::to_owned),
            })
            .await?)
    }

    /// How many activations each license has.
    pub async fn activation_counts(
        &self,
        keys: Vec<String>,
    ) -> Result<BTreeMap<String, usize>, ServiceError> {
        Ok(self.store().read(ActivationCounts { keys }).await?)
    }

    /// The licenses with these keys that exist.
    pub async fn licenses_by_key(
        &self,
        keys: Vec<String>,
    ) -> Result<BTreeMap<String, LicenseRecord>, ServiceError> {
        Ok(self.store().read(LicensesByKey { keys }).await?)
    }
}

job! {
    SetPassword { id: String, hash: Option<String>, audit: AuditEntry } -> bool;
    |this, records| {
        let found = records.set_client_password(&this.id, this.hash.as_deref()).await?;
        if found {
            records.append_audit(&this.audit).await?;
        }
        Ok(found)
    }
}

job! {
    ClientPassword { id: String } -> Option<Option<String>>;
    |this, records| { records.client_password(&this.id).await }
}

job! {
    KeepResponse { record: ResponseFileRecord } -> i64;
    |this, records| { records.insert_response_file(&this.record).await }
}

job! {
    ResponseFiles { key: String } -> Vec<ResponseFileRecord>;
    |this, records| {
        records.response_files(&this.key, crate::store::records::KEPT_RESPONSE_FILES).await
    }
}

job! {
    SearchAudit { search: AuditSearch } -> Vec<AuditEntry>;
    |this, records| { records.search_audit(&this.search).await }
}

job! {
    SeatEvents { from: DateTime<Utc>, to: DateTime<Utc>, license_key: Option<String>, limit: i64 }
        -> Vec<AuditEntry>;
    |this, records| {
        records.seat_events(this.from, this.to, this.license_key.as_deref(), this.limit).await
    }
}

job! {
    DenialCounts { from: DateTime<Utc>, to: DateTime<Utc>, license_key: Option<String> }
        -> Vec<DenialCount>;
    |this, records| {
        records.denial_counts(this.from, this.to, this.license_key.as_deref()).await
    }
}

job! {
    ActivationCounts { keys: Vec<String> } -> BTreeMap<String, usize>;
    |this, records| {
        let mut counts = BTreeMap::new();
        for key in this.keys {
            let count = records.activation_count(&key).await?;
            counts.insert(key, usize::try_from(count).unwrap_or(usize::MAX));
        }
        Ok(counts)
    }
}

job! {
    LicensesByKey { keys: Vec<String> } -> BTreeMap<String, LicenseRecord>;
    |this, records| {
        let mut found = BTreeMap::new();
        for key in this.keys {
            if let Some(record) = records.license(&key).await? {
                found.insert(key, record);
            }
        }
        Ok(found)
    }
}
