//! The server's configuration file (YAML).
//!
//! ```yaml
//! listen: 127.0.0.1:8440
//! database: sqlite:///var/lib/licet/licet.db     # or postgres://user@host:5432/licet
//! policies: [policies/gstarcad.yaml]
//! vendor_key: keys/vendor.secret
//! ```
//!
//! Relative paths are relative to the configuration file's directory.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::StartError;
use crate::ratelimit::RateLimits;
use crate::store::Synchronous;

/// An administrator token given in the configuration, by its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminTokenConfig {
    /// Who holds it (shown in the audit log).
    pub name: String,
    /// SHA-256 of the token, 64 lowercase hex digits.
    pub sha256: String,
}

/// The dongle of a network dongle license server: checked through the vendor-signed dongle
/// plugin, which has the dongle sign a fresh challenge every `poll_seconds`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DongleConfig {
    /// The vendor-signed `dongle-hid` plugin directory.
    pub plugin: PathBuf,
    /// A software dongle file used instead of USB devices (development and tests); removing the
    /// file unplugs the dongle.
    #[serde(default)]
    pub software: Option<PathBuf>,
    /// Seconds between two checks of the dongle (1 to 3600, default 2).
    #[serde(default = "default_dongle_poll")]
    pub poll_seconds: u64,
}

fn default_dongle_poll() -> u64 {
    2
}

/// The configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// `sqlite:///path/to/file.db` or `postgres://...`.
    pub database: String,
    /// Policy files, one per product.
    pub policies: Vec<PathBuf>,
    /// The vendor's secret key file (`licet keys generate`).
    pub vendor_key: PathBuf,
    /// Administrator tokens by hash, besides those stored in the database.
    #[serde(default)]
    pub admin_tokens: Vec<AdminTokenConfig>,
    /// How SQLite syncs commits: `full` (default) or `normal`.
    #[serde(default)]
    pub sqlite_synchronous: Synchronous,
    /// The most PostgreSQL connections of this server.
    #[serde(default = "default_connections")]
    pub postgres_max_connections: usize,
    /// Limits on activation attempts.
    #[serde(default)]
    pub rate_limits: RateLimits,
    /// The network dongle of this server, when it serves network dongle licenses.
    #[serde(default)]
    pub dongle: Option<DongleConfig>,
    /// How often ended leases are swept, in seconds.
    #[serde(default = "default_sweep")]
    pub sweep_seconds: u64,
}

fn default_listen() -> String {
    "127.0.0.1:8440".into()
}

fn default_connections() -> usize {
    16
}

fn default_sweep() -> u64 {
    60
}

impl Config {
    /// Reads a configuration file and makes its paths absolute.
    pub fn load(path: &Path) -> Result<Config, StartError> {
        let text = std::fs::read_to_string(path).map_err(|source| StartError::Io {
            path: path.to_owned(),
            source,
        })?;
        let mut config: Config =
            serde_yaml::from_str(&text).map_err(|error| StartError::Config {
                path: path.to_owned(),
                message: error.to_string(),
            })?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        config.resolve_paths(base);
        for token in &config.admin_tokens {
            let valid = token.sha256.len() == 64
                && token
                    .sha256
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
            if !valid {
                return Err(StartError::Config {
                    path: path.to_owned(),
                    message: format!(
                        "admin token `{}`: sha256 must be 64 lowercase hex digits",
                        token.name
                    ),
                });
            }
        }
        if config
            .dongle
            .as_ref()
            .is_some_and(|dongle| !(1..=3600).contains(&dongle.poll_seconds))
        {
            return Err(StartError::Config {
                path: path.to_owned(),
                message: "dongle.poll_seconds must be between 1 and 3600".to_owned(),
            });
        }
        Ok(config)
    }

    /// Makes relative paths (policies, key, SQLite file) relative to `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        let absolute = |path: &Path| {
            if path.is_absolute() {
                path.to_owned()
            } else {
                base.join(path)
            }
        };
        self.policies = self.policies.iter().map(|p| absolute(p)).collect();
        self.vendor_key = absolute(&self.vendor_key);
        if let Some(dongle) = &mut self.dongle {
            dongle.plugin = absolute(&dongle.plugin);
            dongle.software = dongle.software.as_deref().map(absolute);
        }
        if let Some(file) = self.database.strip_prefix("sqlite://") {
            if !file.starts_with('/') {
                self.database = format!("sqlite://{}", absolute(Path::new(file)).display());
            }
        }
    }
}
