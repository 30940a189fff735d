//! Error reports: an error and its causes on one line.
//!
//! The crates' errors keep their causes as [`Error::source`] instead of repeating them in their
//! own message, so whoever shows an error (a command line, a log line, the C ABI's last error)
//! shows it with [`chain`]: `outer: cause: root cause`.

use std::error::Error;
use std::fmt;

/// An error followed by each of its causes, separated by `: `. A cause whose message the text
/// before it already holds is left out: some crates' errors say their cause in their own message
/// too.
#[derive(Debug, Clone, Copy)]
pub struct Chain<'a>(&'a (dyn Error + 'static));

/// `error` and its causes, for display.
pub fn chain<'a>(error: &'a (dyn Error + 'static)) -> Chain<'a> {
    Chain(error)
}

/// [`chain`] as a method: `error.report()` is the error and its causes as one string.
pub trait Report {
    /// The error and its causes, `outer: cause: root cause`.
    fn report(&self) -> String;
}

impl<E: Error + 'static> Report for E {
    fn report(&self) -> String {
        chain(self).to_string()
    }
}

impl fmt::Display for Chain<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = self.0.to_string();
        let mut cause = self.0.source();
        while let Some(error) = cause {
            let said = error.to_string();
            if !text.contains(&said) {
                text.push_str(": ");
                text.push_str(&said);
            }
            cause = error.source();
        }
        formatter.write_str(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::chain;

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("the file `{path}`")]
        Io {
            path: String,
            source: std::io::Error,
        },
        #[error(transparent)]
        Inner(#[from] Inner),
    }

    #[derive(Debug, thiserror::Error)]
    #[error("the inner step")]
    struct Inner(#[source] std::io::Error);

    #[test]
    fn an_error_is_shown_with_every_cause_once() {
        let error = Outer::Io {
            path: "a".into(),
            source: std::io::Error::other("denied"),
        };
        assert_eq!(chain(&error).to_string(), "the file `a`: denied");
        let error = Outer::from(Inner(std::io::Error::other("gone")));
        assert_eq!(chain(&error).to_string(), "the inner step: gone");
    }

    #[derive(Debug, thiserror::Error)]
    #[error("wrapped: {0}")]
    struct SaysItsCause(#[source] std::io::Error);

    #[test]
    fn a_cause_the_message_already_says_is_not_repeated() {
        let error = SaysItsCause(std::io::Error::other("gone"));
        assert_eq!(chain(&error).to_string(), "wrapped: gone");
    }

    #[test]
    fn an_error_without_a_cause_is_its_message() {
        let error = std::io::Error::other("alone");
        assert_eq!(chain(&error).to_string(), "alone");
    }
}
