//! Deciding a request on a license server: seat traffic only, within the server license.
//!
//! Checkout, heartbeat, release, borrow and return of a borrowed seat (and an administrator's
//! force-release) are served; anything else is refused. The engine decides on the license built
//! from the verified server license's claims (never the database row) under the policy derived
//! for it, with the leases from the store. A key without a verified server license is denied
//! `SERVER_LICENSE_INVALID` (or the reason it was withdrawn); one not in force is denied
//! `SERVER_LICENSE_EXPIRED` for new seats and heartbeats alike, so held leases lapse (seats can
//! still be released, also those of a server license that was withdrawn). Every certificate is checked with [`ServerLicense::admits`] before anything
//! is applied, then signed with the server's own key, and the answer carries the server license.
//!
//! [`ServerLicense::admits`]: licet_engine::server_license::ServerLicense::admits

use licet_engine::report::Report as _;
use std::sync::Arc;

use chrono::SubsecRound;
use licet_engine::certificate::issue;
use licet_engine::effects::{self, is_seat_effect};
use licet_engine::request::RequestKind;
use licet_engine::server_license::ServerLicenseError;
use licet_engine::state::{License, State};
use licet_engine::{decide, Code, Decision, Effect, Policy};

use super::{engine_license, Entry, LicenseServer, ServedLicense, LICENSE_RULE, ROLE_RULE};
use crate::effects::LicenseRecords;
use crate::error::StoreError;
use crate::service::{audit, DecideJob, Outcome};
use crate::store::{LicenseRecord, Records};

/// The rule of a certificate the server license does not admit.
const ADMITS_RULE: &str = "license_server.admits";

/// Decides one request on a license server, applies it and audits it, in the job's transaction.
pub(crate) async fn decide_served<R: Records>(
    server: Arc<LicenseServer>,
    job: DecideJob,
    records: &mut R,
) -> Result<Outcome, StoreError> {
    let DecideJob {
        request,
        server_dongle,
        context,
        clock,
        ..
    } = job;
    let now = clock.now().trunc_subsecs(0);
    let kind = request.action.kind();
    let seat_traffic = matches!(
        kind,
        RequestKind::Checkout
            | RequestKind::Heartbeat
            | RequestKind::Release
            | RequestKind::Borrow
            | RequestKind::ReturnBorrowed
    );
    let key = request.action.key().filter(|_| seat_traffic);
    let ending = matches!(kind, RequestKind::Release | RequestKind::ReturnBorrowed);
    let mut refusal = None;
    // What the engine decides on: the license from the claims, the policy, and the verified
    // server license (absent when a refused one's seats are given back).
    let mut basis: Option<(License, Arc<Policy>, Option<Arc<ServedLicense>>)> = None;
    match key {
        None => {
            refusal = Some(Decision::deny(
                Code::WrongLicenseType,
                ROLE_RULE,
                format!(
                    "this license server serves seats only; {} happens at the activation center",
                    kind.as_str()
                ),
            ));
        }
        Some(key) => {
            let row = records.lock_license(key).await?;
            match server.entry(key) {
                None => {
                    refusal = Some(Decision::deny(
                        Code::ServerLicenseInvalid,
                        LICENSE_RULE,
                        format!(
                            "no server license of `{key}` is installed on this license server (`licet-server activate`)"
                        ),
                    ));
                }
                Some(Entry::Refused(why)) => {
                    // Seats of a server license that is no longer served can still be given back.
                    let returning = why.claims.as_deref().filter(|_| ending).and_then(|claims| {
                        let license = engine_license(claims).ok()?;
                        let policy = server.policies().get(&claims.product)?.clone();
                        Some((license, policy))
                    });
                    match (returning, &row) {
                        (Some((license, policy)), Some(_)) => basis = Some((license, policy, None)),
                        _ => {
                            refusal = Some(Decision::deny(
                                why.code,
                                LICENSE_RULE,
                                format!(
                                    "the server license of `{key}` is not served: {}",
                                    why.reason
                                ),
                            ));
                        }
                    }
                }
                Some(Entry::Served(license)) => {
                    if let (false, Err(error)) = (ending, license.license.check_in_force(now)) {
                        refusal = Some(Decision::deny(error.code(), LICENSE_RULE, error.report()));
                    } else if kind == RequestKind::Checkout && !license.license.claims().kinds.seat
                    {
                        refusal = Some(Decision::deny(
                            Code::WrongLicenseType,
                            LICENSE_RULE,
                            format!("the server license of `{key}` serves no seats"),
                        ));
                    }
                    if row.is_none() {
                        // The row is only the parent of the leases; a missing one is recreated.
                        records
                            .insert_license(&LicenseRecord {
                                license: license.engine_license.clone(),
                                order: None,
                                created_at: now,
                            })
                            .await?;
                    }
                    basis = Some((
                        license.engine_license.clone(),
                        license.policy.clone(),
                        Some(license),
                    ));
                }
            }
        }
    }
    let (decision, served) = match (refusal, basis, key) {
        (None, Some((engine_license, policy, served)), Some(key)) => {
            let returned = match request.action.certificate_serial() {
                Some(serial) => records.returned_certificate(key, serial).await?,
                None => None,
            };
            let mut state = State {
                license: Some(engine_license),
                dongle: match kind {
                    RequestKind::Checkout | RequestKind::Heartbeat => server_dongle,
                    _ => None,
                },
                returned: returned.into_iter().collect(),
                ..State::default()
            };
            crate::service::load_seats(records, key, &request.action, now, &mut state).await?;
            let mut decision = decide(&policy, &state, &request, now);
            let outside = decision
                .effects
                .iter()
                .find_map(|effect| match (effect, &served) {
                    (Effect::IssueCertificate(claims), Some(served)) => {
                        served.license.admits(claims).err()
                    }
                    (Effect::IssueCertificate(_), None) => Some(ServerLicenseError::NotInForce(
                        "no server license is served to sign under".to_owned(),
                    )),
                    _ => None,
                });
            if let (true, Some(error)) = (decision.is_allowed(), outside) {
                decision = Decision::deny(error.code(), ADMITS_RULE, error.report());
            }
            (decision, served)
        }
        (refusal, _, _) => (
            refusal.unwrap_or_else(|| {
                Decision::deny(
                    Code::InvalidRequest,
                    ROLE_RULE,
                    "the request names no license",
                )
            }),
            None,
        ),
    };
    let mut certificate = None;
    let mut lease_expires_at = None;
    if let (true, Some(key)) = (decision.is_allowed(), key) {
        if let Some(other) = decision
            .effects
            .iter()
            .find(|effect| !is_seat_effect(effect))
        {
            return Err(StoreError::Conflict(format!(
                "a license server does not apply {other:?}"
            )));
        }
        let mut writer = LicenseRecords {
            records: &mut *records,
            key,
            product: "",
            for_license_server: false,
        };
        let applied = effects::apply(&mut writer, None, &decision.effects, now).await?;
        lease_expires_at = applied.lease_expires_at;
        if let Some(claims) = applied.certificates.into_iter().next_back() {
            certificate = Some(issue(claims.clone(), server.signing_key()));
        }
    }
    let serial = certificate
        .as_ref()
        .map(|certificate| certificate.claims().serial.as_str());
    let audit_id = audit(records, &context, &request, &decision, serial, now).await?;
    let server_license = match (&certificate, served) {
        (Some(_), Some(served)) => Some(served.license.clone()),
        _ => None,
    };
    Ok(Outcome {
        decision,
        certificate,
        lease_expires_at,
        audit_id,
        response_file: None,
        server_license,
    })
}
