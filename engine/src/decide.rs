//! The decision function.
//!
//! Checks run in a fixed order and the first failure decides (see `docs/decisions.md`):
//!
//! 1. `clock.rollback`: the request is not before the latest time already seen (beyond tolerance);
//! 2. `request.target`: the product, version and edition asked for exist in the policy;
//! 3. `trial.*` for trial requests, which then skip to the custom rules;
//! 4. `license.exists`: the key names a license of this product and a declared license type;
//! 5. `access.*`: administrators only for extension and revocation; clients only on their own licenses;
//! 6. `license.status`: not revoked;
//! 7. `certificate.returned`: the certificate serial the request presents was not given back;
//! 8. `license.version`, `license.edition`: the key is for this version and the edition asked for;
//! 9. `license_type.*`: the type supports the request, the method and the license's term;
//! 10. `dongle.*`: the dongle is present and is the license's dongle;
//! 11. `license.window`, `license.expiry`: inside the license's validity;
//! 12. `rules.<id>`: the policy's custom rules, in file order; an error denies;
//! 13. the request's own checks (activations, fingerprint, seats, borrowing, removal, transfer).
//!
//! The function is pure: no clock, no I/O, no randomness. The same inputs give the same decision.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, SubsecRound, Timelike, Utc};
use sha2::{Digest, Sha256};

use crate::calendar::limited_window;
use crate::certificate::{Binding, CertificateClaims, CertificateKind, TermKind};
use crate::decision::{Code, Decision, Effect};
use crate::fingerprint::{components_match, shares_any, Fingerprint};
use crate::policy::{EarlyReturn, LicenseKind, LicenseType, Method, Model, Policy, RuleEffect};
use crate::request::{Action, Actor, ProductRef, Request, RequestKind};
use crate::script::ConditionContext;
use crate::state::{Activation, License, LicenseStatus, SeatLease, State, Term, TrialRecord};

/// A denial travels as the error of this result, so checks chain with `?`.
type Outcome = Result<Decision, Decision>;
type Check = Result<(), Decision>;

/// Decides `request` under `policy` given the stored `state`, at time `now`.
///
/// Time is truncated to whole seconds, the precision of certificates.
pub fn decide(policy: &Policy, state: &State, request: &Request, now: DateTime<Utc>) -> Decision {
    let ctx = Ctx {
        policy,
        state,
        request,
        now: now.trunc_subsecs(0),
    };
    match ctx.run() {
        Ok(decision) | Err(decision) => decision,
    }
}

struct Ctx<'a> {
    policy: &'a Policy,
    state: &'a State,
    request: &'a Request,
    now: DateTime<Utc>,
}

/// The license a request is about, with its declared type.
struct Subject<'a> {
    license: &'a License,
    license_type: &'a LicenseType,
}

/// What the custom rules see of a license.
struct RuleFacts<'a> {
    edition: &'a str,
    license_type: &'a str,
    license_kind: &'static str,
    expires_at: Option<DateTime<Utc>>,
    seats: u32,
    features: BTreeMap<String, bool>,
    counters: BTreeMap<String, i64>,
}

fn deny(code: Code, rule: &str, message: impl Into<String>) -> Decision {
    Decision::deny(code, rule, message)
}

impl<'a> Ctx<'a> {
    fn kind(&self) -> RequestKind {
        self.request.action.kind()
    }

    fn is_admin(&self) -> bool {
        self.request.actor == Actor::Administrator
    }

    fn run(&self) -> Outcome {
        self.check_clock()?;
        if let Some(target) = self.request.action.target() {
            self.check_target(target)?;
        }
        match &self.request.action {
            Action::StartTrial { target, machine } => return self.start_trial(target, machine),
            Action::ValidateTrial { machine } => return self.validate_trial(machine),
            _ => {}
        }
        let subject = self.subject()?;
        self.check_access(&subject)?;
        self.check_status(&subject)?;
        self.check_presented(&subject)?;
        self.check_edition_and_version(&subject)?;
        self.check_type(&subject)?;
        self.check_dongle(&subject)?;
        self.check_validity(&subject)?;
        if self.has_rules() {
            self.check_rules(&self.facts(&subject))?;
        }
        self.act(&subject)
    }

    // ---- common checks -------------------------------------------------------------------

    fn check_clock(&self) -> Check {
        match self.state.last_seen {
            Some(last_seen) if self.now + self.policy.clock.rollback_tolerance < last_seen => {
                Err(deny(
                    Code::ClockRollback,
                    "clock.rollback",
                    format!(
                        "the clock reads {} but {} was already seen",
                        self.now, last_seen
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    fn check_target(&self, target: &ProductRef) -> Check {
        let product = &self.policy.product;
        if target.product != product.id {
            return Err(deny(
                Code::ProductMismatch,
                "request.target",
                format!(
                    "product `{}` is not licensed by this policy, which is for `{}`",
                    target.product, product.id
                ),
            ));
        }
        if target.version != product.version {
            return Err(deny(
                Code::VersionMismatch,
                "request.target",
                format!(
                    "version `{}` is not licensed, this policy is for version {}",
                    target.version, product.version
                ),
            ));
        }
        if !product.has_edition(&target.edition) {
            return Err(deny(
                Code::EditionMismatch,
                "request.target",
                format!("`{}` is not an edition of {}", target.edition, product.name),
            ));
        }
        Ok(())
    }

    fn subject(&self) -> Result<Subject<'a>, Decision> {
        let key = self.request.action.key().unwrap_or_default();
        let license = match &self.state.license {
            Some(license) if license.key == key && license.product == self.policy.product.id => {
                license
            }
            _ => {
                return Err(deny(
                    Code::LicenseNotFound,
                    "license.exists",
                    format!(
                        "no license of {} has the key `{key}`",
                        self.policy.product.name
                    ),
                ))
            }
        };
        let license_type = self
            .policy
            .license_type(&license.license_type)
            .ok_or_else(|| {
                deny(
                    Code::UnknownLicenseType,
                    "license.exists",
                    format!(
                        "license type `{}` is not declared in the policy",
                        license.license_type
                    ),
                )
            })?;
        Ok(Subject {
            license,
            license_type,
        })
    }

    fn check_access(&self, subject: &Subject<'_>) -> Check {
        if matches!(self.kind(), RequestKind::Extend | RequestKind::Revoke) && !self.is_admin() {
            return Err(deny(
                Code::AdminRequired,
                "access.admin",
                format!("only administrators may {} a license", self.kind()),
            ));
        }
        if let Actor::Client(client) = &self.request.actor {
            // A license belongs to its order, and the order to its client; a license outside any
            // order names its client directly.
            let owner = match &self.state.order {
                Some(order) => Some(order.client.as_str()),
                None => subject.license.client.as_deref(),
            };
            if owner != Some(client.as_str()) {
                return Err(deny(
                    Code::AccessDenied,
                    "access.owner",
                    format!(
                        "client `{client}` does not own license `{}`",
                        subject.license.key
                    ),
                ));
            }
        }
        Ok(())
    }

    fn check_status(&self, subject: &Subject<'_>) -> Check {
        if subject.license.status == LicenseStatus::Revoked && !self.is_admin() {
            return Err(deny(
                Code::Revoked,
                "license.status",
                format!("license `{}` was revoked", subject.license.key),
            ));
        }
        Ok(())
    }

    /// Refuses a request presenting the serial of a certificate that was given back: a state kept
    /// or restored after its return. The denial stays in the audit log with its own code.
    /// Administrators act on the records, not with a certificate, and are not checked.
    fn check_presented(&self, subject: &Subject<'_>) -> Check {
        let Some(serial) = self
            .request
            .action
            .certificate_serial()
            .filter(|_| !self.is_admin())
        else {
            return Ok(());
        };
        let Some(returned) = self
            .state
            .returned
            .iter()
            .find(|returned| returned.serial == serial)
        else {
            return Ok(());
        };
        let (code, what) = match returned.kind {
            CertificateKind::Borrow => (Code::BorrowSerialReturned, "a borrow"),
            _ => (Code::ExchangeSerialReturned, "an activation"),
        };
        Err(deny(
            code,
            "certificate.returned",
            format!(
                "certificate `{serial}` of license `{}` belongs to {what} returned at {}; a copy kept after its return is not accepted",
                subject.license.key, returned.returned_at
            ),
        ))
    }

    fn check_edition_and_version(&self, subject: &Subject<'_>) -> Check {
        let license = subject.license;
        if license.version != self.policy.product.version {
            return Err(deny(
                Code::VersionMismatch,
                "license.version",
                format!(
                    "license `{}` is for version {}, not {}",
                    license.key, license.version, self.policy.product.version
                ),
            ));
        }
        if let Some(target) = self.request.action.target() {
            if target.edition != license.edition {
                return Err(deny(
                    Code::EditionMismatch,
                    "license.edition",
                    format!(
                        "license `{}` is for the {} edition, not {}",
                        license.key, license.edition, target.edition
                    ),
                ));
            }
        }
        Ok(())
    }

    fn check_type(&self, subject: &Subject<'_>) -> Check {
        let license_type = subject.license_type;
        let kind = license_type.kind;
        let supported = match self.kind() {
            RequestKind::Activate | RequestKind::Validate => kind != LicenseKind::NetworkDongle,
            RequestKind::Checkout | RequestKind::Heartbeat | RequestKind::Release => {
                kind.is_network()
            }
            RequestKind::Borrow | RequestKind::ReturnBorrowed => {
                if license_type.borrowing.is_none() {
                    return Err(deny(
                        Code::NotBorrowable,
                        "license_type.borrowing",
                        format!("`{}` licenses cannot be borrowed", license_type.name),
                    ));
                }
                true
            }
            RequestKind::Return => matches!(kind, LicenseKind::Standalone | LicenseKind::Network),
            RequestKind::Transfer => kind == LicenseKind::Standalone,
            RequestKind::Extend | RequestKind::Revoke => true,
            RequestKind::StartTrial | RequestKind::ValidateTrial => false,
        };
        if !supported {
            return Err(deny(
                Code::WrongLicenseType,
                "license_type.kind",
                format!("a {kind} license does not support {}", self.kind()),
            ));
        }
        let method = match &self.request.action {
            Action::Activate { method, .. } => {
                Some((*method, &license_type.activation, "activation"))
            }
            Action::Return { method, .. } if !self.is_admin() => {
                Some((*method, &license_type.return_methods, "return"))
            }
            _ => None,
        };
        if let Some((method, allowed, what)) = method {
            if !kind.is_dongle() && !allowed.contains(&method) {
                return Err(deny(
                    Code::MethodNotAllowed,
                    &format!("license_type.{what}"),
                    format!(
                        "{} {what} is not allowed for `{}` licenses",
                        method_name(method),
                        license_type.name
                    ),
                ));
            }
        }
        let term_allowed = match subject.license.term {
            Term::Perpetual => license_type.perpetual,
            Term::Rental { .. } => license_type.rental,
        };
        if !term_allowed && !self.is_admin() {
            return Err(deny(
                Code::TermNotAllowed,
                "license_type.terms",
                format!(
                    "`{}` licenses cannot have {} terms",
                    license_type.name,
                    term_name(subject.license.term)
                ),
            ));
        }
        Ok(())
    }

    fn check_dongle(&self, subject: &Subject<'_>) -> Check {
        let needs_dongle = subject.license_type.kind.is_dongle()
            && matches!(
                self.kind(),
                RequestKind::Activate
                    | RequestKind::Validate
                    | RequestKind::Checkout
                    | RequestKind::Heartbeat
            );
        if !needs_dongle {
            return Ok(());
        }
        let Some(present) = &self.state.dongle else {
            return Err(deny(
                Code::DongleAbsent,
                "dongle.present",
                "the USB dongle is not present",
            ));
        };
        if subject.license.dongle.as_deref() != Some(present.as_str()) {
            return Err(deny(
                Code::DongleMismatch,
                "dongle.serial",
                format!(
                    "dongle `{present}` does not hold license `{}`",
                    subject.license.key
                ),
            ));
        }
        Ok(())
    }

    fn check_validity(&self, subject: &Subject<'_>) -> Check {
        let uses_license = matches!(
            self.kind(),
            RequestKind::Activate
                | RequestKind::Validate
                | RequestKind::Checkout
                | RequestKind::Heartbeat
                | RequestKind::Borrow
                | RequestKind::Transfer
        );
        if !uses_license {
            return Ok(());
        }
        let (not_before, expires_at) = self.window(subject.license);
        if let Some(not_before) = not_before {
            if self.now < not_before {
                return Err(deny(
                    Code::NotYetValid,
                    "license.window",
                    format!(
                        "license `{}` is valid from {not_before}",
                        subject.license.key
                    ),
                ));
            }
        }
        if let Some(expires_at) = expires_at {
            if self.now >= expires_at {
                return Err(deny(
                    Code::Expired,
                    "license.expiry",
                    format!("license `{}` expired at {expires_at}", subject.license.key),
                ));
            }
        }
        Ok(())
    }

    /// Whether any custom rule applies to this request kind.
    fn has_rules(&self) -> bool {
        let kind = self.kind();
        self.policy.rules.iter().any(|rule| rule.on.contains(&kind))
    }

    fn check_rules(&self, facts: &RuleFacts<'_>) -> Check {
        let kind = self.kind();
        let rules = self
            .policy
            .rules
            .iter()
            .filter(|rule| rule.on.contains(&kind));
        for rule in rules {
            let context = self.condition_context(facts);
            let rule_id = format!("rules.{}", rule.id);
            match self.policy.scripts.evaluate(&rule.condition, &context) {
                Ok(holds) => {
                    let denies = match rule.effect {
                        RuleEffect::DenyWhen => holds,
                        RuleEffect::Require => !holds,
                    };
                    if denies {
                        return Err(deny(Code::RuleDenied, &rule_id, rule.message.clone()));
                    }
                }
                Err(error) => {
                    return Err(deny(
                        Code::RuleError,
                        &rule_id,
                        format!(
                            "rule `{}` failed, so the request is denied: {error}",
                            rule.id
                        ),
                    ))
                }
            }
        }
        Ok(())
    }

    fn condition_context<'f>(&self, facts: &'f RuleFacts<'f>) -> ConditionContext<'f> {
        let held = self.held_seats();
        let borrow_days = match &self.request.action {
            Action::Borrow { until, .. } => (*until - self.now).num_days(),
            _ => 0,
        };
        ConditionContext {
            request: self.kind().as_str(),
            edition: facts.edition,
            license_type: facts.license_type,
            license_kind: facts.license_kind,
            activations: i64::try_from(self.state.activations_total()).unwrap_or(i64::MAX),
            seats: i64::from(facts.seats),
            seats_in_use: i64::try_from(held).unwrap_or(i64::MAX),
            borrow_days,
            days_left: facts
                .expires_at
                .map_or(-1, |at| (at - self.now).num_days().max(0)),
            hour: i64::from(self.now.hour()),
            weekday: i64::from(self.now.weekday().number_from_monday()),
            features: &facts.features,
            counters: &facts.counters,
        }
    }

    fn facts(&self, subject: &Subject<'a>) -> RuleFacts<'a> {
        let (features, counters) = self.effective_features(subject.license);
        RuleFacts {
            edition: &subject.license.edition,
            license_type: &subject.license_type.name,
            license_kind: subject.license_type.kind.as_str(),
            expires_at: self.window(subject.license).1,
            seats: seats(subject),
            features,
            counters,
        }
    }

    // ---- license data ----------------------------------------------------------------------

    /// `(not_before, expires_at)` of the license, from its fixed limited terms and rental end.
    fn window(&self, license: &License) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        let rental_end = match license.term {
            Term::Rental { ends_at } => Some(ends_at),
            Term::Perpetual => None,
        };
        match &license.limited {
            Some(limited) => (
                Some(limited.not_before),
                Some(rental_end.map_or(limited.expires_at, |end| end.min(limited.expires_at))),
            ),
            None => (None, rental_end),
        }
    }

    /// Features and counters after the cascade of the policy's model.
    fn effective_features(
        &self,
        license: &License,
    ) -> (BTreeMap<String, bool>, BTreeMap<String, i64>) {
        if let Some(limited) = &license.limited {
            return (limited.features.clone(), limited.counters.clone());
        }
        let product = &self.policy.product;
        let mut counters = product.counters.clone();
        match self.policy.model {
            Model::Standard => {
                let mut features = product.features.clone();
                if let Some(order) = &self.state.order {
                    features.extend(order.features.clone());
                    counters.extend(order.counters.clone());
                }
                features.extend(license.features.clone());
                counters.extend(license.counters.clone());
                (features, counters)
            }
            Model::Web { .. } => {
                // Features stored in the serial override the product defaults; a serial without
                // features gets the defaults.
                let mut features = product.features.clone();
                features.extend(license.features.clone());
                counters.extend(license.counters.clone());
                (features, counters)
            }
        }
    }

    fn machine_binding(&self, subject: &Subject<'_>, machine: &Fingerprint) -> Binding {
        match (subject.license_type.kind, &self.state.dongle) {
            (LicenseKind::StandaloneDongle, Some(dongle)) => Binding::Dongle(dongle.clone()),
            _ => Binding::Fingerprint(machine.components.clone()),
        }
    }

    fn same_machine(&self, stored: &Binding, current: &Binding) -> bool {
        match (stored, current) {
            (Binding::Fingerprint(stored), Binding::Fingerprint(current)) => {
                components_match(stored, current, &self.policy.fingerprint)
            }
            (Binding::Dongle(stored), Binding::Dongle(current)) => stored == current,
            _ => false,
        }
    }

    /// The activation whose anchor (the binding recorded at activation) matches `binding`: drift
    /// is always measured from the anchor, so a machine cannot walk away from it step by step.
    fn find_activation(&self, binding: &Binding) -> Option<&'a Activation> {
        self.state
            .activations
            .iter()
            .find(|activation| self.same_machine(activation.anchor(), binding))
    }

    /// The activation a return or transfer from `binding` removes: one whose anchor or current
    /// binding matches it (a machine that drifted in several steps can still give its license
    /// back).
    fn find_removable(&self, binding: &Binding) -> Option<&'a Activation> {
        self.find_activation(binding).or_else(|| {
            self.state
                .activations
                .iter()
                .find(|activation| self.same_machine(&activation.binding, binding))
        })
    }

    fn find_lease(&self, session: &str) -> Option<&'a SeatLease> {
        self.state
            .leases
            .iter()
            .find(|lease| lease.session == session)
    }

    /// The seats of the license held now: the host's count, or the leases counted.
    fn held_seats(&self) -> u64 {
        self.state.seats_held(self.now)
    }

    /// The seats held now by other sessions than `session`.
    fn held_seats_except(&self, session: &str) -> u64 {
        let own = self
            .find_lease(session)
            .is_some_and(|lease| lease.is_held(self.now));
        self.held_seats().saturating_sub(u64::from(own))
    }

    fn claims(
        &self,
        subject: &Subject<'_>,
        kind: CertificateKind,
        binding: Binding,
        limits: Limits,
    ) -> CertificateClaims {
        let license = subject.license;
        let (features, counters) = limits
            .terms
            .unwrap_or_else(|| self.effective_features(license));
        CertificateClaims {
            kind,
            serial: certificate_serial(kind, &license.key, &binding, self.now),
            license_key: license.key.clone(),
            product: self.policy.product.id.clone(),
            edition: license.edition.clone(),
            version: license.version.clone(),
            license_type: subject.license_type.name.clone(),
            term: match license.term {
                Term::Perpetual => TermKind::Perpetual,
                Term::Rental { .. } => TermKind::Rental,
            },
            features,
            counters,
            binding_rule: self.binding_rule(&binding),
            binding,
            issued_at: self.now,
            not_before: limits.not_before.unwrap_or(self.now),
            expires_at: limits.expires_at,
            validate_after: limits.validate_after,
            offline_until: limits.offline_until,
            rollback_tolerance_seconds: self.policy.clock.rollback_tolerance.num_seconds(),
            policy_hash: self.policy.hash,
        }
    }

    /// The signed rule a certificate bound to `binding` is matched with: the policy's fingerprint
    /// rule for a fingerprint, none for a dongle.
    fn binding_rule(&self, binding: &Binding) -> Option<crate::certificate::BindingRule> {
        match binding {
            Binding::Fingerprint(_) => Some(self.policy.binding_rule()),
            Binding::Dongle(_) => None,
        }
    }

    /// The end of an activation certificate's offline period: now plus the type's offline days,
    /// or the validation interval plus the offline grace.
    fn offline_until(&self, subject: &Subject<'_>) -> DateTime<Utc> {
        self.now + self.policy.offline_period(subject.license_type)
    }

    // ---- request-specific checks and effects ------------------------------------------------

    fn act(&self, subject: &Subject<'a>) -> Outcome {
        match &self.request.action {
            Action::Activate { machine, .. } => self.activate(subject, machine),
            Action::Validate { machine, .. } => self.validate(subject, machine),
            Action::Checkout {
                machine, session, ..
            } => self.checkout(subject, machine, session),
            Action::Heartbeat { session, .. } => self.heartbeat(subject, session),
            Action::Release { session, .. } => self.release(session),
            Action::Borrow {
                machine,
                session,
                until,
                ..
            } => self.borrow(subject, machine, session, *until),
            Action::ReturnBorrowed { session, .. } => self.return_borrowed(subject, session),
            Action::Return { machine, .. } => self.remove(subject, machine),
            Action::Transfer { from, to, .. } => self.transfer(subject, from, to),
            Action::Extend {
                expires_at,
                features,
                counters,
                seats,
                ..
            } => self.extend(subject, *expires_at, features, counters, *seats),
            Action::Revoke { .. } => Ok(Decision::allow(
                Code::RevocationApplied,
                "access.admin",
                format!("license `{}` is revoked", subject.license.key),
                vec![Effect::RevokeLicense],
            )),
            Action::StartTrial { .. } | Action::ValidateTrial { .. } => Err(deny(
                Code::InvalidRequest,
                "request.kind",
                "trial requests are not about a license key",
            )),
        }
    }

    /// The activation limit of the license: serial activations in the web model, else one.
    fn activation_limit(&self, subject: &Subject<'_>) -> usize {
        match (self.policy.model, subject.license_type.kind) {
            (
                Model::Web {
                    activations_per_serial,
                },
                LicenseKind::Standalone,
            ) => usize::try_from(activations_per_serial).unwrap_or(1),
            _ => 1,
        }
    }

    fn activate(&self, subject: &Subject<'a>, machine: &Fingerprint) -> Outcome {
        let binding = self.machine_binding(subject, machine);
        let mut effects = Vec::new();
        if let Some(existing) = self.find_activation(&binding) {
            effects.extend(self.drift(subject, existing, &binding)?);
        } else {
            let limit = self.activation_limit(subject);
            let activated = self.state.activations_total();
            if activated >= u64::try_from(limit).unwrap_or(u64::MAX) {
                return Err(deny(
                    Code::ActivationLimitReached,
                    "license.activations",
                    format!(
                        "license `{}` is already activated on {activated} of {limit} allowed machines; return it there first",
                        subject.license.key,
                    ),
                ));
            }
            effects.push(Effect::CreateActivation {
                binding: binding.clone(),
                activated_at: self.now,
            });
        }
        self.push_activation_certificate(subject, binding, &mut effects);
        Ok(Decision::allow(
            Code::Activated,
            "license.activations",
            format!("license `{}` is activated", subject.license.key),
            effects,
        ))
    }

    /// Appends the activation certificate for `binding` (fixing a limited license's terms first)
    /// and records it as the activation's current certificate.
    fn push_activation_certificate(
        &self,
        subject: &Subject<'_>,
        binding: Binding,
        effects: &mut Vec<Effect>,
    ) {
        let limits = self.activation_limits(subject, effects);
        let claims = self.claims(subject, CertificateKind::Activation, binding, limits);
        effects.push(Effect::SetCurrentCertificate {
            binding: claims.binding.clone(),
            serial: claims.serial.clone(),
        });
        effects.push(Effect::IssueCertificate(Box::new(claims)));
    }

    /// The effects of a request from a machine that matches `existing`'s anchor: none when it is
    /// exactly the activation's current binding; otherwise the drift is accepted (the current
    /// binding moves, the anchor stays) and recorded like a transfer, which the transfer limit
    /// counts, so two machines that both match the anchor cannot take turns with one activation
    /// beyond the limit.
    fn drift(
        &self,
        subject: &Subject<'_>,
        existing: &Activation,
        current: &Binding,
    ) -> Result<Vec<Effect>, Decision> {
        if existing.binding == *current {
            return Ok(Vec::new());
        }
        if !self.is_admin() {
            self.check_transfer_limit(subject, "its machine changed again")?;
        }
        Ok(vec![
            Effect::RebindActivation {
                from: existing.binding.clone(),
                to: current.clone(),
            },
            Effect::RecordTransfer { at: self.now },
        ])
    }

    /// Expiry and terms of an activation certificate; fixes a limited license's terms the first time.
    fn activation_limits(&self, subject: &Subject<'_>, effects: &mut Vec<Effect>) -> Limits {
        let license = subject.license;
        let (not_before, expires_at) = self.window(license);
        let offline_until = self.offline_until(subject);
        let validate_after = (self.now + self.policy.validation.interval).min(offline_until);
        let mut limits = Limits {
            not_before,
            expires_at,
            validate_after: Some(validate_after),
            offline_until: Some(offline_until),
            terms: None,
        };
        if let (Some(policy), None) = (&self.policy.limited, &license.limited) {
            let (not_before, limited_end) = limited_window(self.now, policy);
            let (features, counters) = self.effective_features(license);
            effects.push(Effect::FixLimitedTerms {
                not_before,
                expires_at: limited_end,
                features: features.clone(),
                counters: counters.clone(),
            });
            limits.not_before = Some(not_before);
            limits.expires_at = Some(expires_at.map_or(limited_end, |end| end.min(limited_end)));
            limits.terms = Some((features, counters));
        }
        limits
    }

    fn validate(&self, subject: &Subject<'a>, machine: &Fingerprint) -> Outcome {
        let binding = self.machine_binding(subject, machine);
        let Some(existing) = self.find_activation(&binding) else {
            return Err(self.not_activated_here(subject));
        };
        let mut effects = self.drift(subject, existing, &binding)?;
        self.push_activation_certificate(subject, binding, &mut effects);
        Ok(Decision::allow(
            Code::Valid,
            "license.activations",
            format!("license `{}` is valid on this machine", subject.license.key),
            effects,
        ))
    }

    /// Records the current certificate of an activation an end user gives back as returned, so
    /// a copy of it presented later is refused (and stays in the audit log). Removals by
    /// administrators and client accounts are not recorded: the machine learns of them at its
    /// next validation (`NOT_ACTIVATED`).
    fn record_returned(&self, activation: &Activation) -> Option<Effect> {
        returned_effect(
            self.request.actor == Actor::EndUser,
            activation.certificate_serial.as_ref(),
            CertificateKind::Activation,
            self.now,
        )
    }

    fn not_activated_here(&self, subject: &Subject<'_>) -> Decision {
        if self.state.activations_total() == 0 {
            deny(
                Code::NotActivated,
                "license.activations",
                format!("license `{}` is not activated", subject.license.key),
            )
        } else {
            deny(
                Code::FingerprintMismatch,
                "license.fingerprint",
                format!(
                    "license `{}` is activated on another machine, or this machine changed more than the fingerprint rule allows since it was activated (return the license, then activate it again)",
                    subject.license.key
                ),
            )
        }
    }

    fn lease_for(&self, subject: &Subject<'_>) -> chrono::Duration {
        subject
            .license_type
            .lease
            .unwrap_or_else(|| chrono::Duration::seconds(crate::policy::DEFAULT_LEASE_SECONDS))
    }

    fn check_free_seat(&self, subject: &Subject<'_>, session: &str) -> Check {
        let seats = seats(subject);
        if seats == 0 {
            return Err(deny(
                Code::NoSeats,
                "seats.pool",
                format!("license `{}` has no seats", subject.license.key),
            ));
        }
        let held = self.held_seats_except(session);
        if held >= u64::from(seats) {
            return Err(deny(
                Code::SeatsExhausted,
                "seats.pool",
                format!(
                    "all {seats} seats of license `{}` are in use",
                    subject.license.key
                ),
            ));
        }
        Ok(())
    }

    fn checkout(&self, subject: &Subject<'a>, machine: &Fingerprint, session: &str) -> Outcome {
        let binding = Binding::Fingerprint(machine.components.clone());
        let expires_at = self.now + self.lease_for(subject);
        let existing = self
            .find_lease(session)
            .filter(|lease| lease.is_held(self.now));
        let effect = match existing {
            Some(lease) if !self.same_machine(&lease.binding, &binding) => {
                return Err(deny(
                    Code::InvalidRequest,
                    "seats.session",
                    format!("session `{session}` holds a seat for another machine"),
                ))
            }
            Some(lease) if lease.is_borrowed(self.now) => {
                return Err(deny(
                    Code::InvalidRequest,
                    "seats.session",
                    format!("session `{session}` already borrowed its seat"),
                ))
            }
            Some(_) => Effect::RenewLease {
                session: session.to_owned(),
                expires_at,
            },
            None => {
                self.check_free_seat(subject, session)?;
                Effect::LeaseSeat {
                    session: session.to_owned(),
                    binding: binding.clone(),
                    expires_at,
                }
            }
        };
        let license_end = self.window(subject.license).1;
        let limits = Limits {
            not_before: None,
            expires_at: Some(license_end.map_or(expires_at, |end| end.min(expires_at))),
            validate_after: None,
            offline_until: Some(expires_at),
            terms: None,
        };
        let claims = self.claims(subject, CertificateKind::Seat, binding, limits);
        let reconnect = existing.is_some();
        Ok(Decision::allow(
            Code::SeatGranted,
            "seats.pool",
            if reconnect {
                format!(
                    "session `{session}` keeps its seat of license `{}`",
                    subject.license.key
                )
            } else {
                format!(
                    "a seat of license `{}` is leased to session `{session}`",
                    subject.license.key
                )
            },
            vec![effect, Effect::IssueCertificate(Box::new(claims))],
        ))
    }

    fn heartbeat(&self, subject: &Subject<'_>, session: &str) -> Outcome {
        let lease = self
            .find_lease(session)
            .ok_or_else(|| lease_not_found(session))?;
        if lease.is_borrowed(self.now) {
            return Err(deny(
                Code::InvalidRequest,
                "seats.session",
                format!("session `{session}` borrowed its seat and needs no heartbeat"),
            ));
        }
        if !lease.is_held(self.now) {
            return Err(deny(
                Code::LeaseExpired,
                "seats.lease",
                format!(
                    "the lease of session `{session}` lapsed at {}; check out again",
                    lease.expires_at
                ),
            ));
        }
        let expires_at = self.now + self.lease_for(subject);
        // The renewed seat certificate runs to the new end of the lease, so the holder's start-up
        // check keeps passing without a second request.
        let license_end = self.window(subject.license).1;
        let limits = Limits {
            not_before: None,
            expires_at: Some(license_end.map_or(expires_at, |end| end.min(expires_at))),
            validate_after: None,
            offline_until: Some(expires_at),
            terms: None,
        };
        let claims = self.claims(
            subject,
            CertificateKind::Seat,
            lease.binding.clone(),
            limits,
        );
        Ok(Decision::allow(
            Code::LeaseRenewed,
            "seats.lease",
            format!("the lease of session `{session}` runs until {expires_at}"),
            vec![
                Effect::RenewLease {
                    session: session.to_owned(),
                    expires_at,
                },
                Effect::IssueCertificate(Box::new(claims)),
            ],
        ))
    }

    fn release(&self, session: &str) -> Outcome {
        let lease = self
            .find_lease(session)
            .ok_or_else(|| lease_not_found(session))?;
        if lease.is_borrowed(self.now) {
            return Err(deny(
                Code::InvalidRequest,
                "seats.session",
                format!("session `{session}` borrowed its seat; return it as a borrowed license"),
            ));
        }
        Ok(Decision::allow(
            Code::SeatReleased,
            "seats.lease",
            format!("the seat of session `{session}` is back in the pool"),
            vec![Effect::ReleaseSeat {
                session: session.to_owned(),
            }],
        ))
    }

    fn borrow(
        &self,
        subject: &Subject<'a>,
        machine: &Fingerprint,
        session: &str,
        until: DateTime<Utc>,
    ) -> Outcome {
        let until = until.trunc_subsecs(0);
        if until <= self.now {
            return Err(deny(
                Code::InvalidRequest,
                "borrowing.until",
                format!("the borrow end {until} is not in the future"),
            ));
        }
        if let Some(borrowing) = subject.license_type.borrowing {
            if until - self.now > borrowing.max {
                return Err(deny(
                    Code::BorrowTooLong,
                    "license_type.borrowing.max_days",
                    format!(
                        "seats can be borrowed for at most {} days",
                        borrowing.max.num_days()
                    ),
                ));
            }
        }
        if let Some(returned) = self
            .find_lease(session)
            .filter(|lease| lease.is_borrowed(self.now) && lease.returned_at.is_some())
        {
            return Err(deny(
                Code::InvalidRequest,
                "seats.session",
                format!(
                    "session `{session}` returned its borrow early; its seat stays in use until {}, so borrow with a new session",
                    returned.borrowed_until.unwrap_or(self.now)
                ),
            ));
        }
        let binding = Binding::Fingerprint(machine.components.clone());
        let already_borrowed = self.state.leases.iter().any(|lease| {
            lease.is_borrowed_out(self.now) && self.same_machine(&lease.binding, &binding)
        });
        if already_borrowed {
            return Err(deny(
                Code::InvalidRequest,
                "borrowing.machine",
                "this machine already borrowed a seat of the license",
            ));
        }
        let own_lease = self
            .find_lease(session)
            .filter(|lease| lease.is_held(self.now) && self.same_machine(&lease.binding, &binding));
        if own_lease.is_none() {
            self.check_free_seat(subject, session)?;
        }
        let license_end = self.window(subject.license).1;
        let limits = Limits {
            not_before: None,
            expires_at: Some(license_end.map_or(until, |end| end.min(until))),
            validate_after: None,
            // A borrow is for working offline: its offline period is the borrow itself, signed
            // like every other certificate's.
            offline_until: Some(license_end.map_or(until, |end| end.min(until))),
            terms: None,
        };
        let claims = self.claims(subject, CertificateKind::Borrow, binding.clone(), limits);
        Ok(Decision::allow(
            Code::Borrowed,
            "license_type.borrowing",
            format!(
                "a seat of license `{}` is borrowed until {until}",
                subject.license.key
            ),
            vec![
                Effect::BorrowSeat {
                    session: session.to_owned(),
                    binding,
                    until,
                    serial: claims.serial.clone(),
                },
                Effect::IssueCertificate(Box::new(claims)),
            ],
        ))
    }

    fn return_borrowed(&self, subject: &Subject<'_>, session: &str) -> Outcome {
        let lease = self
            .find_lease(session)
            .filter(|lease| lease.is_borrowed(self.now))
            .filter(|lease| self.is_admin() || lease.returned_at.is_none());
        let Some(lease) = lease else {
            return Err(deny(
                Code::BorrowNotFound,
                "license_type.borrowing",
                format!("session `{session}` has no borrowed seat"),
            ));
        };
        if self.request.actor == Actor::EndUser && lease.certificate_serial.is_some() {
            check_current_serial(
                lease.certificate_serial.as_deref(),
                self.request.action.certificate_serial(),
                "borrowing.certificate_serial",
                "borrow",
            )?;
        }
        let returned = returned_effect(
            self.request.actor == Actor::EndUser,
            lease.certificate_serial.as_ref(),
            CertificateKind::Borrow,
            self.now,
        );
        let early_return = subject
            .license_type
            .borrowing
            .map(|borrowing| borrowing.early_return)
            .unwrap_or_default();
        if self.is_admin() || early_return == EarlyReturn::FreesSeat {
            let mut effects = vec![Effect::ReleaseSeat {
                session: session.to_owned(),
            }];
            effects.extend(returned);
            return Ok(Decision::allow(
                Code::BorrowReturned,
                "license_type.borrowing",
                format!("the seat borrowed by session `{session}` is back in the pool"),
                effects,
            ));
        }
        let mut effects = vec![Effect::EndBorrow {
            session: session.to_owned(),
            at: self.now,
        }];
        effects.extend(returned);
        Ok(Decision::allow(
            Code::BorrowReturned,
            "license_type.borrowing.early_return",
            format!(
                "the borrow of session `{session}` ended; its seat stays in use until {} unless an administrator releases it",
                lease.borrowed_until.unwrap_or(self.now)
            ),
            effects,
        ))
    }

    /// Checks that the actor may remove an activation; end-user removals count as transfers.
    fn check_removal(&self, subject: &Subject<'_>) -> Result<Vec<Effect>, Decision> {
        if self.is_admin() {
            return Ok(Vec::new());
        }
        if self.policy.limited.is_some() || subject.license.limited.is_some() {
            return Err(deny(
                Code::RemovalForbidden,
                "limited.removal",
                "limited licenses can only be removed by an administrator",
            ));
        }
        if !self.policy.removal.by_end_user {
            return Err(deny(
                Code::RemovalForbidden,
                "removal.by_end_user",
                "this product does not let end users remove licenses",
            ));
        }
        self.check_transfer_limit(subject, "it cannot be moved again yet")?;
        Ok(vec![Effect::RecordTransfer { at: self.now }])
    }

    /// Refuses one more move when `transfer.max` moves (removals, transfers and accepted
    /// fingerprint drift) were recorded in the last `transfer.period_days`.
    fn check_transfer_limit(&self, subject: &Subject<'_>, consequence: &str) -> Check {
        let Some(limit) = self.policy.transfer else {
            return Ok(());
        };
        let since = self.now - limit.period;
        let recent = self
            .state
            .transfers
            .iter()
            .filter(|at| **at > since)
            .count();
        if recent >= usize::try_from(limit.max).unwrap_or(usize::MAX) {
            return Err(deny(
                Code::TransferLimitReached,
                "transfer.max",
                format!(
                    "license `{}` was moved {recent} times in the last {} days, the most allowed, and {consequence}",
                    subject.license.key,
                    limit.period.num_days()
                ),
            ));
        }
        Ok(())
    }

    fn remove(&self, subject: &Subject<'a>, machine: &Fingerprint) -> Outcome {
        let mut effects = self.check_removal(subject)?;
        let binding = self.machine_binding(subject, machine);
        let Some(existing) = self.find_removable(&binding) else {
            return Err(self.not_activated_here(subject));
        };
        if self.request.actor == Actor::EndUser {
            check_current_serial(
                existing.certificate_serial.as_deref(),
                self.request.action.certificate_serial(),
                "return.certificate_serial",
                "activation",
            )?;
        }
        effects.insert(
            0,
            Effect::RemoveActivation {
                binding: existing.binding.clone(),
            },
        );
        effects.extend(self.record_returned(existing));
        Ok(Decision::allow(
            Code::Returned,
            if self.is_admin() {
                "access.admin"
            } else {
                "removal.by_end_user"
            },
            format!(
                "license `{}` is returned and can be activated on another machine",
                subject.license.key
            ),
            effects,
        ))
    }

    fn transfer(&self, subject: &Subject<'a>, from: &Fingerprint, to: &Fingerprint) -> Outcome {
        let mut effects = self.check_removal(subject)?;
        let from = Binding::Fingerprint(from.components.clone());
        let to = Binding::Fingerprint(to.components.clone());
        let Some(existing) = self.find_removable(&from) else {
            return Err(self.not_activated_here(subject));
        };
        if self.same_machine(&existing.binding, &to) {
            return Err(deny(
                Code::InvalidRequest,
                "transfer.machine",
                "the license is already on the receiving machine",
            ));
        }
        effects.insert(
            0,
            Effect::RemoveActivation {
                binding: existing.binding.clone(),
            },
        );
        effects.extend(self.record_returned(existing));
        effects.push(Effect::CreateActivation {
            binding: to.clone(),
            activated_at: self.now,
        });
        self.push_activation_certificate(subject, to, &mut effects);
        Ok(Decision::allow(
            Code::Transferred,
            "transfer.max",
            format!("license `{}` moved to the new machine", subject.license.key),
            effects,
        ))
    }

    fn extend(
        &self,
        subject: &Subject<'_>,
        expires_at: Option<DateTime<Utc>>,
        features: &BTreeMap<String, bool>,
        counters: &BTreeMap<String, i64>,
        seats: Option<u32>,
    ) -> Outcome {
        if !self.policy.extension.enabled {
            return Err(deny(
                Code::ExtensionDisabled,
                "extension.enabled",
                "this policy does not allow changing issued licenses",
            ));
        }
        let product = &self.policy.product;
        let unknown = features
            .keys()
            .find(|name| !product.features.contains_key(*name))
            .map(|name| format!("feature `{name}`"))
            .or_else(|| {
                counters
                    .keys()
                    .find(|name| !product.counters.contains_key(*name))
                    .map(|name| format!("counter `{name}`"))
            });
        if let Some(unknown) = unknown {
            return Err(deny(
                Code::InvalidRequest,
                "extension.names",
                format!("{unknown} is not declared by the product"),
            ));
        }
        if seats.is_some() && !subject.license_type.kind.is_network() {
            return Err(deny(
                Code::InvalidRequest,
                "extension.seats",
                format!(
                    "`{}` licenses have no seats to change",
                    subject.license_type.name
                ),
            ));
        }
        let has_end = subject.license.limited.is_some()
            || matches!(subject.license.term, Term::Rental { .. });
        if expires_at.is_some() && !has_end && !subject.license_type.rental {
            return Err(deny(
                Code::TermNotAllowed,
                "license_type.terms",
                format!(
                    "`{}` licenses are perpetual and cannot get an expiry",
                    subject.license_type.name
                ),
            ));
        }
        Ok(Decision::allow(
            Code::Extended,
            "extension.enabled",
            format!(
                "license `{}` is updated; clients pick the change up at their next validation",
                subject.license.key
            ),
            vec![Effect::UpdateLicense {
                expires_at: expires_at.map(|at| at.trunc_subsecs(0)),
                features: features.clone(),
                counters: counters.clone(),
                seats,
            }],
        ))
    }

    // ---- trials ------------------------------------------------------------------------------

    fn trial_policy(&self) -> Result<&'a crate::policy::TrialPolicy, Decision> {
        self.policy.trial.as_ref().ok_or_else(|| {
            deny(
                Code::TrialNotOffered,
                "trial.offered",
                format!("{} offers no trial", self.policy.product.name),
            )
        })
    }

    fn trial_facts(&self, edition: &'a str) -> RuleFacts<'a> {
        let product = &self.policy.product;
        RuleFacts {
            edition,
            license_type: "",
            license_kind: "",
            expires_at: None,
            seats: 0,
            features: product
                .features
                .keys()
                .map(|name| (name.clone(), true))
                .collect(),
            counters: product.counters.clone(),
        }
    }

    fn start_trial(&self, target: &'a ProductRef, machine: &Fingerprint) -> Outcome {
        let trial = self.trial_policy()?;
        if !trial.editions.is_empty() && !trial.editions.contains(&target.edition) {
            return Err(deny(
                Code::TrialNotOffered,
                "trial.editions",
                format!("the {} edition has no trial", target.edition),
            ));
        }
        if machine
            .components
            .get(crate::policy::ENVIRONMENT_COMPONENT)
            .is_some_and(|value| value == crate::policy::UNTRUSTED_ENVIRONMENT_VALUE)
        {
            return Err(deny(
                Code::UntrustedEnvironment,
                "trial.environment",
                "the machine's identity cannot be trusted here (bind-mounted identity files or another namespace); no trial is given",
            ));
        }
        let binding = Binding::Fingerprint(machine.components.clone());
        let previous = self.trial_record(trial, &binding);
        let mut effects = Vec::new();
        let (edition, ends_at) = match previous {
            Some((record, _)) if record.ends_at > self.now => {
                (record.edition.as_str(), record.ends_at)
            }
            Some((_, how)) if trial.once_per_machine => {
                return Err(deny(Code::TrialAlreadyUsed, how.rule(), how.sentence()))
            }
            _ => {
                let ends_at = self.now + trial.length;
                effects.push(Effect::RecordTrial {
                    binding: binding.clone(),
                    edition: target.edition.clone(),
                    started_at: self.now,
                    ends_at,
                });
                (target.edition.as_str(), ends_at)
            }
        };
        let facts = self.trial_facts(edition);
        if self.has_rules() {
            self.check_rules(&facts)?;
        }
        effects.push(Effect::IssueCertificate(Box::new(
            self.trial_claims(facts, binding, ends_at),
        )));
        Ok(Decision::allow(
            Code::TrialStarted,
            "trial.once_per_machine",
            format!("the trial runs until {ends_at}"),
            effects,
        ))
    }

    fn validate_trial(&self, machine: &Fingerprint) -> Outcome {
        let trial = self.trial_policy()?;
        let binding = Binding::Fingerprint(machine.components.clone());
        let Some((record, _)) = self.trial_record(trial, &binding) else {
            return Err(deny(
                Code::TrialNotStarted,
                "trial.started",
                "no trial was started on this machine",
            ));
        };
        if record.ends_at <= self.now {
            return Err(deny(
                Code::TrialExpired,
                "trial.length",
                format!("the trial ended at {}", record.ends_at),
            ));
        }
        let facts = self.trial_facts(&record.edition);
        if self.has_rules() {
            self.check_rules(&facts)?;
        }
        let claims = self.trial_claims(facts, binding, record.ends_at);
        Ok(Decision::allow(
            Code::Valid,
            "trial.length",
            format!("the trial runs until {}", record.ends_at),
            vec![Effect::IssueCertificate(Box::new(claims))],
        ))
    }

    /// The trial record of the machine bound to `binding`: one whose machine matches under the
    /// fingerprint rule, else one sharing any strong component with it (same value), so new
    /// network and disk identities on the same machine id (or disk) are still that machine.
    fn trial_record(
        &self,
        trial: &crate::policy::TrialPolicy,
        binding: &Binding,
    ) -> Option<(&'a TrialRecord, TrialMatch)> {
        let trials = &self.state.trials;
        if let Some(record) = trials
            .iter()
            .find(|record| self.same_machine(&record.binding, binding))
        {
            return Some((record, TrialMatch::Machine));
        }
        let Binding::Fingerprint(components) = binding else {
            return None;
        };
        trials.iter().find_map(|record| match &record.binding {
            Binding::Fingerprint(earlier)
                if shares_any(earlier, components, &trial.strong_components) =>
            {
                Some((record, TrialMatch::StrongComponent))
            }
            _ => None,
        })
    }

    fn trial_claims(
        &self,
        facts: RuleFacts<'_>,
        binding: Binding,
        ends_at: DateTime<Utc>,
    ) -> CertificateClaims {
        let product = &self.policy.product;
        CertificateClaims {
            kind: CertificateKind::Trial,
            serial: certificate_serial(CertificateKind::Trial, "", &binding, self.now),
            license_key: String::new(),
            product: product.id.clone(),
            edition: facts.edition.to_owned(),
            version: product.version.clone(),
            license_type: String::new(),
            term: TermKind::Trial,
            features: facts.features,
            counters: facts.counters,
            binding_rule: self.binding_rule(&binding),
            binding,
            issued_at: self.now,
            not_before: self.now,
            expires_at: Some(ends_at),
            validate_after: None,
            // Like an activation: validated online (`validate-trial`) within the validation
            // interval plus the offline grace, never later than the trial's end.
            offline_until: Some(
                (self.now + self.policy.validation.interval + self.policy.validation.offline_grace)
                    .min(ends_at),
            ),
            rollback_tolerance_seconds: self.policy.clock.rollback_tolerance.num_seconds(),
            policy_hash: self.policy.hash,
        }
    }
}

/// How a machine was found to be the machine of an earlier trial.
#[derive(Debug, Clone, Copy)]
enum TrialMatch {
    /// Its fingerprint matches under the fingerprint rule.
    Machine,
    /// It shares a strong component (`trial.strong_components`) with the trial's machine.
    StrongComponent,
}

impl TrialMatch {
    fn rule(self) -> &'static str {
        match self {
            TrialMatch::Machine => "trial.once_per_machine",
            TrialMatch::StrongComponent => "trial.strong_components",
        }
    }

    fn sentence(self) -> &'static str {
        match self {
            TrialMatch::Machine => "this machine already had its trial",
            TrialMatch::StrongComponent => {
                "this machine already had its trial (its machine id or disk is that of an earlier trial)"
            }
        }
    }
}

/// Validity and terms for a certificate.
struct Limits {
    not_before: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
    validate_after: Option<DateTime<Utc>>,
    offline_until: Option<DateTime<Utc>>,
    terms: Option<(BTreeMap<String, bool>, BTreeMap<String, i64>)>,
}

fn seats(subject: &Subject<'_>) -> u32 {
    if !subject.license_type.kind.is_network() {
        return 0;
    }
    subject
        .license
        .seats
        .or(subject.license_type.default_seats)
        .unwrap_or(0)
}

/// The record of a returned certificate `serial`, when an end user gave it back.
fn returned_effect(
    by_end_user: bool,
    serial: Option<&String>,
    kind: CertificateKind,
    at: DateTime<Utc>,
) -> Option<Effect> {
    serial
        .filter(|_| by_end_user)
        .map(|serial| Effect::RecordReturnedCertificate {
            serial: serial.clone(),
            kind,
            at,
        })
}

/// Refuses a return that does not present `current`, the serial of the certificate of the
/// activation (or borrow) it would end: a made-up serial, or one of an older certificate, frees
/// nothing.
fn check_current_serial(
    current: Option<&str>,
    presented: Option<&str>,
    rule: &str,
    what: &str,
) -> Check {
    match (current, presented) {
        (Some(current), Some(presented)) if current == presented => Ok(()),
        (_, None) => Err(deny(
            Code::CertificateNotCurrent,
            rule,
            format!("a return must present the serial of the {what}'s current certificate"),
        )),
        (None, Some(_)) => Err(deny(
            Code::CertificateNotCurrent,
            rule,
            format!("no certificate of this {what} is on record; validate online first, then return"),
        )),
        (Some(_), Some(presented)) => Err(deny(
            Code::CertificateNotCurrent,
            rule,
            format!(
                "certificate `{presented}` is not the current certificate of this {what}; only the machine holding it can return it"
            ),
        )),
    }
}

fn lease_not_found(session: &str) -> Decision {
    deny(
        Code::LeaseNotFound,
        "seats.lease",
        format!("session `{session}` holds no seat"),
    )
}

fn method_name(method: Method) -> &'static str {
    match method {
        Method::Online => "online",
        Method::Manual => "manual",
    }
}

fn term_name(term: Term) -> &'static str {
    match term {
        Term::Perpetual => "perpetual",
        Term::Rental { .. } => "rental",
    }
}

/// A certificate serial derived from what it certifies, so the engine needs no randomness.
fn certificate_serial(
    kind: CertificateKind,
    key: &str,
    binding: &Binding,
    now: DateTime<Utc>,
) -> String {
    let mut hasher = Sha256::new();
    hasher.update([kind as u8]);
    hasher.update(key.as_bytes());
    hasher.update([0]);
    match binding {
        Binding::Fingerprint(components) => {
            for (name, value) in components {
                hasher.update(name.as_bytes());
                hasher.update([0]);
                hasher.update(value.as_bytes());
                hasher.update([0]);
            }
        }
        Binding::Dongle(serial) => hasher.update(serial.as_bytes()),
    }
    hasher.update(now.timestamp().to_be_bytes());
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = hasher.finalize();
    let mut serial = String::with_capacity(24);
    for byte in digest.iter().take(12) {
        serial.push(char::from(HEX[usize::from(byte >> 4)]));
        serial.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    serial
}
