//! What a `licet` command ends with: its [`Outcome`] (the exit code) or the [`CliError`] that
//! made it fail.

use std::path::PathBuf;

use crate::keys::KeyError;
use crate::policy_tools::ToolError;
use crate::{ClientError, TransportError};

/// The exit code of `licet`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Outcome {
    /// The check or the online operation was allowed, or the command succeeded.
    Allowed = 0,
    /// The licensing decision denied (its code and sentence were printed), or a policy check or
    /// scenario test did not pass.
    Denied = 1,
    /// The arguments are not a valid command line; nothing was run.
    Usage = 2,
    /// A file could not be read or written or is invalid, or the server could not be reached or
    /// answered something invalid.
    Failed = 3,
}

impl Outcome {
    /// [`Outcome::Allowed`] when `allowed`, else [`Outcome::Denied`].
    pub fn decided(allowed: bool) -> Outcome {
        if allowed {
            Outcome::Allowed
        } else {
            Outcome::Denied
        }
    }

    /// The exit code.
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<Outcome> for std::process::ExitCode {
    fn from(outcome: Outcome) -> std::process::ExitCode {
        std::process::ExitCode::from(outcome.code())
    }
}

/// Why a `licet` command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// The arguments are not a valid command line.
    #[error(transparent)]
    Usage(#[from] clap::Error),
    /// No per-user data directory is known for the state.
    #[error("no per-user data directory is known; pass --state-dir")]
    NoStateDir,
    /// The client failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The server could not be reached, or answered something invalid.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// A vendor key could not be made or written.
    #[error("cannot write keys into `{}`", dir.display())]
    Keys {
        /// The directory of the key files.
        dir: PathBuf,
        /// Why.
        source: KeyError,
    },
    /// A product bundle could not be built or does not verify.
    #[error(transparent)]
    Bundle(Box<crate::bundle::BundleBuildError>),
    /// A policy or scenario could not be tested.
    #[error(transparent)]
    Tool(#[from] ToolError),
    /// A file could not be read or written.
    #[error("cannot {action} `{}`", path.display())]
    File {
        /// What was done: `read`, `create`, `write`, `read the server certificate`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is larger than any exchange file; it was not read.
    #[error("`{}` is larger than any exchange file ({max} bytes)", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The largest exchange file.
        max: usize,
    },
    /// An answer could not be written as JSON.
    #[error("cannot write the answer as JSON")]
    Json(#[from] serde_json::Error),
    /// The signals or standard input that end a seat hold could not be watched.
    #[error("cannot {what}")]
    Watch {
        /// What could not be done.
        what: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Both threads that end a seat hold ended without saying so.
    #[error("the stop signal and input threads both ended")]
    WatchEnded,
}

impl CliError {
    /// A file error: `action` on `path` failed with `source`.
    pub(crate) fn file(
        action: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> CliError {
        let path = path.to_path_buf();
        move |source| CliError::File {
            action,
            path,
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use licet_engine::report::chain;

    #[test]
    fn exit_codes_are_the_documented_ones() {
        let codes = [
            Outcome::Allowed,
            Outcome::Denied,
            Outcome::Usage,
            Outcome::Failed,
        ]
        .map(Outcome::code);
        assert_eq!(codes, [0, 1, 2, 3]);
        assert_eq!(Outcome::decided(true), Outcome::Allowed);
        assert_eq!(Outcome::decided(false), Outcome::Denied);
    }

    #[test]
    fn the_chain_names_each_cause_once() {
        let missing = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let error = CliError::file("read", std::path::Path::new("a.cert"))(missing);
        assert_eq!(
            chain(&error).to_string(),
            "cannot read `a.cert`: no such file"
        );
        let exists = CliError::Keys {
            dir: PathBuf::from("out"),
            source: KeyError::Exists(PathBuf::from("out/vendor.pub")),
        };
        assert_eq!(
            chain(&exists).to_string(),
            "cannot write keys into `out`: `out/vendor.pub` exists already; pass --force to \
             replace it"
        );
        let tool = CliError::Tool(ToolError::Io {
            path: PathBuf::from("p.yaml"),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "gone"),
        });
        assert_eq!(chain(&tool).to_string(), "`p.yaml`: gone");
    }
}
