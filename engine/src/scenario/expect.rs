//! How a step's decision is compared with what the step expects.

use chrono::{DateTime, Utc};

use super::{Expectation, Step, StepReport};
use crate::decision::{Code, Decision};
use crate::request::Request;

/// The report of a step that made a decision, compared with what the step expects.
pub(super) fn checked_step(
    number: usize,
    at: DateTime<Utc>,
    summary: String,
    decision: Decision,
    step: &Step,
) -> StepReport {
    let failures = match &step.expect {
        Some(expectation) => compare(expectation, &decision),
        None => vec!["a step that makes a decision needs `expect`".to_owned()],
    };
    StepReport {
        step: number,
        at,
        summary,
        decision: Some(decision),
        failures,
    }
}

pub(super) fn summarize(request: &Request, machine: Option<&str>) -> String {
    let kind = request.action.kind();
    match (request.action.key(), machine) {
        (Some(key), Some(machine)) => format!("{kind} {key} on {machine}"),
        (Some(key), None) => format!("{kind} {key}"),
        (None, Some(machine)) => format!("{kind} on {machine}"),
        (None, None) => kind.to_string(),
    }
}

fn compare(expectation: &Expectation, decision: &Decision) -> Vec<String> {
    let mut failures = Vec::new();
    let (code, detail) = match expectation {
        Expectation::Code(code) => (code, None),
        Expectation::Detailed(detail) => (&detail.code, Some(detail)),
    };
    match Code::from_name(code) {
        None => failures.push(format!("`{code}` is not a decision code")),
        Some(code) if code != decision.code => {
            failures.push(format!(
                "expected {code}, got {} ({}: {})",
                decision.code, decision.rule, decision.message
            ));
        }
        Some(_) => {}
    }
    let Some(detail) = detail else {
        return failures;
    };
    if let Some(rule) = &detail.rule {
        if rule != &decision.rule {
            failures.push(format!("expected rule `{rule}`, got `{}`", decision.rule));
        }
    }
    let wants_certificate = detail.expires_at.is_some()
        || detail.not_before.is_some()
        || !detail.features.is_empty()
        || !detail.counters.is_empty();
    if !wants_certificate {
        return failures;
    }
    let Some(claims) = decision.certificate() else {
        failures.push("expected a certificate, none was issued".to_owned());
        return failures;
    };
    if let Some(expected) = &detail.expires_at {
        let actual = claims
            .expires_at
            .map_or_else(|| "never".to_owned(), |at| at.to_rfc3339());
        let matches = match expected.parse::<DateTime<Utc>>() {
            Ok(at) => claims.expires_at == Some(at),
            Err(_) => expected == &actual,
        };
        if !matches {
            failures.push(format!("expected expiry {expected}, got {actual}"));
        }
    }
    if let Some(not_before) = detail.not_before {
        if claims.not_before != not_before {
            failures.push(format!(
                "expected not-before {not_before}, got {}",
                claims.not_before
            ));
        }
    }
    for (name, value) in &detail.features {
        if claims.features.get(name) != Some(value) {
            failures.push(format!(
                "expected feature `{name}` = {value}, got {:?}",
                claims.features.get(name)
            ));
        }
    }
    for (name, value) in &detail.counters {
        if claims.counters.get(name) != Some(value) {
            failures.push(format!(
                "expected counter `{name}` = {value}, got {:?}",
                claims.counters.get(name)
            ));
        }
    }
    failures
}
