//! The server's configuration file (YAML).
//!
//! ```yaml
//! listen: 127.0.0.1:8440
//! database: sqlite:///var/lib/licet/licet.db     # or postgres://user@host:5432/licet
//! policies: [policies/gstarcad.yaml]
//! vendor_key: keys/vendor.secret
//! ```
//!
//! A customer's license server has no vendor key; it signs with its own key under the server
//! licenses the activation center granted it:
//!
//! ```yaml
//! role: license-server
//! server_key: server.secret
//! vendor_public_key: vendor.pub
//! center: https://licenses.example.com:8440  # optional (offline LAN: request and response files)
//! center_certificate: center.pem              # optional: pin the center's TLS certificate
//! policies: [gstarcad.yaml]
//! database: sqlite:///srv/licet/licet.db
//! ```
//!
//! Without a `tls` section (certificate and key) the server speaks plain HTTP, which it does
//! only on a loopback address unless `http.allow_plain: true` says a TLS-terminating proxy is in
//! front of it:
//!
//! ```yaml
//! listen: 0.0.0.0:8440
//! tls: { certificate: server.pem, key: server.key }
//! ```
//!
//! Relative paths are relative to the configuration file's directory.

use licet_engine::report::Report as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::StartError;
use crate::listener::HttpSettings;
use crate::logging::LogFormat;
use crate::ratelimit::RateLimits;
use crate::store::Synchronous;
use crate::tls::TlsConfig;

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

/// The optional open metrics address: `GET /metrics` without a token, on this address only, in
/// plain HTTP. It must be a private address (loopback, RFC 1918, link-local or IPv6 unique
/// local), reachable by the scraper and no one else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// The address (`IP:port`) to serve the metrics on.
    pub listen: String,
}

impl MetricsConfig {
    /// The address to bind, checked to be a private IP address.
    pub fn address(&self) -> Result<SocketAddr, String> {
        let address: SocketAddr = self.listen.parse().map_err(|_| {
            format!(
                "metrics.listen `{}` is not an IP address and port (a host name is not accepted)",
                self.listen
            )
        })?;
        if !is_private(address.ip()) {
            return Err(format!(
                "metrics.listen `{}` is not a private address: the open metrics endpoint has no \
                 token and speaks plain HTTP, so it listens only on a loopback, private \
                 (10/8, 172.16/12, 192.168/16), link-local or IPv6 unique local address",
                self.listen
            ));
        }
        Ok(address)
    }
}

/// Whether `ip` is a loopback, private, link-local or IPv6 unique local address.
fn is_private(ip: std::net::IpAddr) -> bool {
    match ip.to_canonical() {
        std::net::IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        std::net::IpAddr::V6(v6) => {
            v6.is_loopback() || v6.is_unique_local() || v6.is_unicast_link_local()
        }
    }
}

fn default_dongle_poll() -> u64 {
    2
}

/// What a server is: the vendor's activation center or a customer's license server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServerRole {
    /// The vendor's server: holds the vendor key, issues licenses, activates machines and
    /// license servers, and may serve seats of network licenses itself.
    #[default]
    ActivationCenter,
    /// A customer's network license server: never holds the vendor key; serves the seats of the
    /// server licenses the activation center granted it, signing with its own key.
    LicenseServer,
}

impl ServerRole {
    /// The name used in configuration files.
    pub fn as_str(self) -> &'static str {
        match self {
            ServerRole::ActivationCenter => "activation-center",
            ServerRole::LicenseServer => "license-server",
        }
    }
}

/// The configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `activation-center` (default) or `license-server`.
    #[serde(default)]
    pub role: ServerRole,
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// `sqlite:///path/to/file.db` or `postgres://...`.
    pub database: String,
    /// Policy files, one per product.
    pub policies: Vec<PathBuf>,
    /// The vendor's secret key file (`licet keys generate`); activation centers only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_key: Option<PathBuf>,
    /// A license server's own secret key file (same format); license servers only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_key: Option<PathBuf>,
    /// The vendor's public key file, which verifies server licenses; license servers only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_public_key: Option<PathBuf>,
    /// The activation center's URL (`https://host:port`, `http://host:port` on loopback, or
    /// `host:port`) a license server activates and revalidates with; absent on an offline LAN
    /// (request and response files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub center: Option<String>,
    /// A certificate file (DER or PEM) the center's TLS certificate must chain to, instead of the
    /// public roots: the center's own certificate or the vendor's CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub center_certificate: Option<PathBuf>,
    /// How often a license server revalidates its server licenses with the center, in hours.
    #[serde(
        default = "default_revalidate_hours",
        skip_serializing_if = "is_default_revalidate_hours"
    )]
    pub revalidate_hours: u64,
    /// The same interval in seconds; overrides `revalidate_hours` when set (testing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revalidate_seconds: Option<u64>,
    /// Where a license server keeps its server licenses and pending request files; the
    /// directory of `server_key` by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_dir: Option<PathBuf>,
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
    /// Transport plugins (vendor-signed plugin directories, `licet:plugin@0.2.0`) whose server
    /// side answers `POST /v1/transport/{name}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transports: Vec<PathBuf>,
    /// How often ended leases are swept, in seconds.
    #[serde(default = "default_sweep")]
    pub sweep_seconds: u64,
    /// The HTTP listener's timeouts, connection cap and shutdown deadline.
    #[serde(default)]
    pub http: HttpSettings,
    /// The certificate and key of HTTPS; without it the server speaks plain HTTP (on a loopback
    /// address only, unless `http.allow_plain`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// How the server logs: `human` (default) or `json` (`--log-format` overrides it).
    #[serde(default)]
    pub log_format: LogFormat,
    /// A separate address serving `GET /metrics` without a token (absent: metrics only on the
    /// main listener, to an administrator token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<MetricsConfig>,
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

fn default_revalidate_hours() -> u64 {
    24
}

fn is_default_revalidate_hours(hours: &u64) -> bool {
    *hours == default_revalidate_hours()
}

impl Default for Config {
    /// An activation center on `127.0.0.1:8440` with no database, policy or key yet.
    fn default() -> Self {
        Config {
            role: ServerRole::default(),
            listen: default_listen(),
            database: String::new(),
            policies: Vec::new(),
            vendor_key: None,
            server_key: None,
            vendor_public_key: None,
            center: None,
            center_certificate: None,
            revalidate_hours: default_revalidate_hours(),
            revalidate_seconds: None,
            state_dir: None,
            admin_tokens: Vec::new(),
            sqlite_synchronous: Synchronous::default(),
            postgres_max_connections: default_connections(),
            rate_limits: RateLimits::default(),
            dongle: None,
            transports: Vec::new(),
            sweep_seconds: default_sweep(),
            http: HttpSettings::default(),
            tls: None,
            log_format: LogFormat::default(),
            metrics: None,
        }
    }
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
                message: error.report(),
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
        config.http.check().map_err(|message| StartError::Config {
            path: path.to_owned(),
            message,
        })?;
        config.check_role().map_err(|message| StartError::Config {
            path: path.to_owned(),
            message,
        })?;
        if let Some(metrics) = &config.metrics {
            metrics.address().map_err(|message| StartError::Config {
                path: path.to_owned(),
                message,
            })?;
        }
        config
            .check_listen_security()
            .map_err(|message| StartError::Config {
                path: path.to_owned(),
                message,
            })?;
        Ok(config)
    }

    /// Checks the plain-HTTP rule where `listen` is an IP address (a host name is checked
    /// against the address it binds, [`Config::check_plain_http`]), and that `http.allow_plain`
    /// is not given beside `tls`.
    pub fn check_listen_security(&self) -> Result<(), String> {
        if self.tls.is_some() && self.http.allow_plain {
            return Err(
                "`http.allow_plain` is for a server without `tls`; remove one of them".to_owned(),
            );
        }
        match self.listen.parse::<SocketAddr>() {
            Ok(address) => self.check_plain_http(address),
            Err(_) => Ok(()),
        }
    }

    /// The plain-HTTP rule for the address the server listens on: without `tls`, only a
    /// loopback address, unless `http.allow_plain`.
    pub fn check_plain_http(&self, address: SocketAddr) -> Result<(), String> {
        crate::tls::check_plain_http(
            &self.listen,
            address.ip(),
            self.tls.is_some(),
            self.http.allow_plain,
        )
    }

    /// Checks that the keys configured fit the role: an activation center has `vendor_key` and
    /// none of the license server's settings; a license server has `server_key` and
    /// `vendor_public_key` and never a `vendor_key`.
    pub fn check_role(&self) -> Result<(), String> {
        match self.role {
            ServerRole::ActivationCenter => {
                if self.vendor_key.is_none() {
                    return Err(
                        "an activation center needs `vendor_key` (the vendor's secret key file)"
                            .to_owned(),
                    );
                }
                for (name, set) in [
                    ("server_key", self.server_key.is_some()),
                    ("vendor_public_key", self.vendor_public_key.is_some()),
                    ("center", self.center.is_some()),
                    ("center_certificate", self.center_certificate.is_some()),
                    ("state_dir", self.state_dir.is_some()),
                    ("revalidate_seconds", self.revalidate_seconds.is_some()),
                ] {
                    if set {
                        return Err(format!(
                            "`{name}` is a setting of `role: license-server`; this server is an activation center"
                        ));
                    }
                }
            }
            ServerRole::LicenseServer => {
                if self.vendor_key.is_some() {
                    return Err("a license server never holds the vendor's secret key: remove `vendor_key` (it signs with its own `server_key` under the server licenses the activation center grants it)".to_owned());
                }
                if self.server_key.is_none() {
                    return Err("a license server needs `server_key` (its own secret key file; `licet-server init --role license-server` creates one)".to_owned());
                }
                if self.vendor_public_key.is_none() {
                    return Err("a license server needs `vendor_public_key` (the vendor's public key file, which verifies server licenses)".to_owned());
                }
                if let Some(center) = &self.center {
                    licet_client::http::ServerUrl::parse(center)
                        .map_err(|error| format!("center: {error}"))?;
                }
                if !(1..=8760).contains(&self.revalidate_hours) {
                    return Err("revalidate_hours must be between 1 and 8760".to_owned());
                }
                if self
                    .revalidate_seconds
                    .is_some_and(|seconds| !(1..=31_536_000).contains(&seconds))
                {
                    return Err("revalidate_seconds must be between 1 and 31536000".to_owned());
                }
            }
        }
        Ok(())
    }

    /// How often a license server revalidates with the center.
    pub fn revalidate_interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs(
            self.revalidate_seconds
                .unwrap_or(self.revalidate_hours.saturating_mul(3600)),
        )
    }

    /// Where a license server keeps its server licenses and pending request files.
    pub fn license_server_dir(&self) -> Option<PathBuf> {
        self.state_dir.clone().or_else(|| {
            self.server_key
                .as_deref()
                .and_then(Path::parent)
                .map(Path::to_owned)
        })
    }

    /// Makes relative paths (policies, keys, state directory, SQLite file) relative to `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        let absolute = |path: &Path| {
            if path.is_absolute() {
                path.to_owned()
            } else {
                base.join(path)
            }
        };
        self.policies = self.policies.iter().map(|p| absolute(p)).collect();
        self.transports = self.transports.iter().map(|p| absolute(p)).collect();
        for path in [
            &mut self.vendor_key,
            &mut self.server_key,
            &mut self.vendor_public_key,
            &mut self.center_certificate,
            &mut self.state_dir,
        ] {
            *path = path.as_deref().map(absolute);
        }
        if let Some(tls) = &mut self.tls {
            tls.resolve_paths(base);
        }
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

#[cfg(test)]
mod tests {
    use super::MetricsConfig;

    fn check(listen: &str) -> Result<std::net::SocketAddr, String> {
        MetricsConfig {
            listen: listen.to_owned(),
        }
        .address()
    }

    #[test]
    fn the_open_metrics_address_must_be_private() {
        for private in [
            "127.0.0.1:9464",
            "10.1.2.3:9464",
            "172.16.0.1:9464",
            "192.168.1.10:9464",
            "169.254.1.1:9464",
            "[::1]:9464",
            "[fd00::1]:9464",
            "[fe80::1]:9464",
            "[::ffff:10.0.0.1]:9464",
        ] {
            assert!(check(private).is_ok(), "{private}");
        }
        for public in [
            "0.0.0.0:9464",
            "8.8.8.8:9464",
            "[::]:9464",
            "[2001:db8::1]:9464",
        ] {
            assert!(
                check(public).is_err_and(|message| message.contains("not a private address")),
                "{public}"
            );
        }
        assert!(check("metrics.example:9464")
            .is_err_and(|message| message.contains("not an IP address")));
    }
}
