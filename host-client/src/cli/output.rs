//! What the commands print: decisions as `CODE: sentence`, start-up checks as a line or JSON.

use licet_engine::report::Report as _;
use std::io::Write as _;

use licet_engine::Decision;

use super::{CliError, Outcome};
use crate::{CheckReport, ClientError};

/// Writes to standard output; a closed pipe (`licet ... | head`) is not an error.
pub(crate) fn emit(text: &str) {
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// Prints the server's decision as `CODE: sentence`; allowed or denied.
pub(crate) fn online_outcome(decision: &Decision) -> Outcome {
    emit(&format!("{}: {}\n", decision.code, decision.message));
    Outcome::decided(decision.is_allowed())
}

/// The outcome of an online operation: its decision, or a certificate refused with a code
/// (`CERTIFICATE_OUTSIDE_SERVER_LICENSE`, `SERVER_LICENSE_INVALID`, `SERVER_LICENSE_EXPIRED`),
/// printed as `CODE: sentence`, denied, with nothing stored. Any other failure is an error.
pub(crate) fn decided(result: Result<Decision, ClientError>) -> Result<Outcome, CliError> {
    match result {
        Ok(decision) => Ok(online_outcome(&decision)),
        Err(ClientError::ServerLicense(error)) => {
            emit(&format!("{}: {}\n", error.code(), error.report()));
            Ok(Outcome::Denied)
        }
        Err(error) => Err(error.into()),
    }
}

/// What a transport plugin refused (a block with a typo, naming the line; a file that is not its
/// response file) is a denial with `code`, and a rejected exchange file one with its own code
/// ([`ClientError::carried_refusal`]); anything else an error.
pub(crate) fn carried_failure(error: ClientError, code: &str) -> Result<Outcome, CliError> {
    match error.carried_refusal(code) {
        Some(refusal) => {
            emit(&format!("{}: {}\n", refusal.code, refusal.message));
            Ok(Outcome::Denied)
        }
        None => Err(error.into()),
    }
}

/// A start-up check as `CODE: sentence`, with a note when an online validation is due.
pub(crate) fn report_line(report: &CheckReport) -> String {
    let decision = &report.decision;
    let mut line = format!("{}: {}\n", decision.code, decision.message);
    if report.validation_due && decision.is_allowed() {
        line.push_str("note: an online validation is due\n");
    }
    line
}

/// A start-up check as JSON.
pub(crate) fn report_json(report: &CheckReport) -> serde_json::Value {
    serde_json::json!({
        "allowed": report.decision.is_allowed(),
        "code": report.decision.code,
        "rule": report.decision.rule,
        "message": report.decision.message,
        "trust": report.trust.as_str(),
        "validation_due": report.validation_due,
    })
}
