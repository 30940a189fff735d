//! The server's log: a `tracing` subscriber writing to standard error, in a human format or as
//! JSON lines, and the one line written per licensing decision.

use licet_engine::report::Report as _;
use std::time::Duration;

use licet_engine::Decision;
use serde::{Deserialize, Serialize};
use tracing_subscriber::EnvFilter;

/// The filter used when neither `--log` nor `RUST_LOG` names one.
pub const DEFAULT_FILTER: &str = "info";

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// One readable line per event (default).
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "human" => Ok(LogFormat::Human),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("unknown log format `{other}` (human or json)")),
        }
    }
}

/// Why the log could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The filter does not parse.
    #[error("invalid log filter `{filter}`: {message}")]
    Filter {
        /// The filter given.
        filter: String,
        /// Why it does not parse.
        message: String,
    },
    /// A subscriber was installed already.
    #[error("the log was set up already: {0}")]
    Installed(String),
}

/// Installs the process's subscriber: events to standard error in `format`, filtered by
/// `filter` (`--log`), else `RUST_LOG`, else [`DEFAULT_FILTER`].
pub fn install(format: LogFormat, filter: Option<&str>) -> Result<(), LogError> {
    let from_env = std::env::var("RUST_LOG")
        .ok()
        .filter(|value| !value.trim().is_empty());
    let text = filter
        .map(str::to_owned)
        .or(from_env)
        .unwrap_or_else(|| DEFAULT_FILTER.to_owned());
    let filter = EnvFilter::try_new(&text).map_err(|error| LogError::Filter {
        filter: text.clone(),
        message: error.report(),
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let installed = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    installed.map_err(|error| LogError::Installed(error.to_string()))
}

/// A license key as logged: its first and last four characters (`GSCA…7Q2X`); a key of eight
/// characters or fewer is not shown at all.
pub fn short_key(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "…".to_owned();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

/// Writes the log line of one decision: the action, verdict, code, rule, shortened key, the
/// kind of caller and how long deciding took. The decision's message is not logged (it may
/// name the whole key).
pub fn decision(
    action: &str,
    key: Option<&str>,
    caller: &str,
    decision: &Decision,
    took: Duration,
) {
    let key = key.map_or_else(|| "-".to_owned(), short_key);
    tracing::info!(
        target: "licet::decision",
        action,
        verdict = if decision.is_allowed() { "allow" } else { "deny" },
        code = decision.code.as_str(),
        rule = %decision.rule,
        key = %key,
        caller,
        latency_ms = took.as_secs_f64() * 1000.0,
        "decision"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_shortened_to_their_ends() {
        assert_eq!(short_key("GSCAD-ABCD-EFGH-7Q2X"), "GSCA…7Q2X");
        assert_eq!(short_key("SHORTKEY"), "…");
        assert_eq!(short_key(""), "…");
    }
}
