//! Size limits of what a request carries, checked before anything reaches the store or the audit
//! log, whether the request came as JSON or as an exchange file.

use licet_engine::{Action, Fingerprint};

/// The longest key, session, dongle serial, fingerprint component name or value accepted, in
/// characters.
pub const MAX_FIELD: usize = 256;
/// The most fingerprint components accepted.
pub const MAX_COMPONENTS: usize = 32;

/// A field of a request is empty or too large.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FieldError {
    /// A text field is empty or longer than [`MAX_FIELD`] characters.
    #[error("`{0}` must be 1 to {MAX_FIELD} characters")]
    Length(&'static str),
    /// A fingerprint has no or more than [`MAX_COMPONENTS`] components.
    #[error("`{0}` must have 1 to {MAX_COMPONENTS} components")]
    Components(&'static str),
}

/// Checks that `value` of the field `name` is 1 to [`MAX_FIELD`] characters (as the OpenAPI
/// document's `maxLength` counts them).
pub fn check_field(name: &'static str, value: &str) -> Result<(), FieldError> {
    if value.is_empty() || value.chars().count() > MAX_FIELD {
        return Err(FieldError::Length(name));
    }
    Ok(())
}

/// Checks a fingerprint's component count and the size of each name and value.
pub fn check_machine(name: &'static str, machine: &Fingerprint) -> Result<(), FieldError> {
    if machine.components.is_empty() || machine.components.len() > MAX_COMPONENTS {
        return Err(FieldError::Components(name));
    }
    for (component, value) in &machine.components {
        check_field(name, component)?;
        check_field(name, value)?;
    }
    Ok(())
}

/// Checks the sizes of what a request carries.
pub fn check_action(action: &Action) -> Result<(), FieldError> {
    if let Some(key) = action.key() {
        check_field("key", key)?;
    }
    if let Some(serial) = action.certificate_serial() {
        check_field("certificate_serial", serial)?;
    }
    if let Some(target) = action.target() {
        check_field("target.product", &target.product)?;
        check_field("target.edition", &target.edition)?;
        check_field("target.version", &target.version)?;
    }
    match action {
        Action::StartTrial { machine, .. }
        | Action::ValidateTrial { machine }
        | Action::Activate { machine, .. }
        | Action::Validate { machine, .. }
        | Action::Return { machine, .. } => check_machine("machine", machine),
        Action::Checkout {
            machine, session, ..
        }
        | Action::Borrow {
            machine, session, ..
        } => {
            check_machine("machine", machine)?;
            check_field("session", session)
        }
        Action::Heartbeat { session, .. }
        | Action::Release { session, .. }
        | Action::ReturnBorrowed { session, .. } => check_field("session", session),
        Action::Transfer { from, to, .. } => {
            check_machine("from", from)?;
            check_machine("to", to)
        }
        Action::Extend { .. } | Action::Revoke { .. } => Ok(()),
    }
}
