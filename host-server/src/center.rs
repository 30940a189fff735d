//! The activation center's side of license servers: a network license is served either by the
//! center itself (a vendor-hosted pool) or by the one customer license server it is activated on,
//! never by both; a license server's activation is answered with a vendor-signed server license.

use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use licet_engine::certificate::{CertificateClaims, CertificateKind};
use licet_engine::report::Report as _;
use licet_engine::server_license::{self, ServerLicense, ServerLicenseClaims};
use licet_engine::state::{License, State};
use licet_engine::{Action, Code, Decision, Policy};

use crate::error::StoreError;

/// The rule of refusals about who activates a network license.
pub const ACTIVATION_RULE: &str = "license_server.activation";
/// The rule of refusals about who serves a network license's seats.
pub const POOL_RULE: &str = "license_server.pool";

/// The center's refusal of a request that does not fit who serves the license, if any.
///
/// - A network license is activated, revalidated and returned only by a license server (the
///   `/v1/server/...` routes or license-server request files); any other license never is.
/// - The center does not lease seats of a network license that is activated on a license server,
///   and does not activate a license server while it leases seats of that license itself.
pub fn pool_refusal(
    policy: &Policy,
    license: &License,
    state: &State,
    action: &Action,
    from_license_server: bool,
    now: DateTime<Utc>,
) -> Option<Decision> {
    let license_type = policy.license_type(&license.license_type)?;
    let network = license_type.kind.is_network();
    match action {
        Action::Activate { .. } | Action::Validate { .. } | Action::Return { .. } => {
            if network && !from_license_server {
                return Some(Decision::deny(
                    Code::WrongLicenseType,
                    ACTIVATION_RULE,
                    format!(
                        "network license `{}` is activated on its license server (`licet-server activate`), not on a machine",
                        license.key
                    ),
                ));
            }
            if !network && from_license_server {
                return Some(Decision::deny(
                    Code::WrongLicenseType,
                    ACTIVATION_RULE,
                    format!(
                        "license `{}` is a {} license; only network licenses activate a license server",
                        license.key, license_type.kind
                    ),
                ));
            }
            let serving = state.seats_held(now);
            if matches!(action, Action::Activate { .. }) && serving > 0 {
                return Some(Decision::deny(
                    Code::ServedElsewhere,
                    POOL_RULE,
                    format!(
                        "the activation center serves {serving} seats of license `{}` itself; they must be released before a license server is activated",
                        license.key
                    ),
                ));
            }
            None
        }
        Action::Checkout { .. } | Action::Borrow { .. }
            if network && state.activations_total() > 0 =>
        {
            Some(Decision::deny(
                Code::ServedElsewhere,
                POOL_RULE,
                format!(
                    "license `{}` is served by the license server it is activated on; ask that server for a seat",
                    license.key
                ),
            ))
        }
        _ => None,
    }
}

/// The vendor-signed server license for the activation certificate `claims` the engine decided
/// for a license server with public key `server_key`.
pub fn grant_server_license(
    policy: &Policy,
    license: &License,
    claims: &CertificateClaims,
    server_key: [u8; 32],
    vendor: &SigningKey,
) -> Result<ServerLicense, StoreError> {
    if claims.kind != CertificateKind::Activation {
        return Err(StoreError::Conflict(
            "a license server is granted a server license only for an activation".to_owned(),
        ));
    }
    let granted = ServerLicenseClaims::grant(policy, license, claims, server_key)
        .map_err(|error| StoreError::Conflict(error.report()))?;
    Ok(server_license::issue(granted, vendor))
}
