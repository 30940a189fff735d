//! Licet's license policy engine.
//!
//! Vendors describe licensing in declarative YAML [policies](policy). The engine answers every
//! request (activate, validate, checkout, heartbeat, borrow, return, transfer, extend, trial, ...)
//! with a [`Decision`]: allowed or denied, a stable [`Code`], the rule that decided, a sentence, and
//! the [`Effect`]s the host applies. [`decide`] is a pure function of the policy, the stored
//! [`State`], the [`Request`] and the time: no I/O, no clock, no randomness, so the same inputs
//! always give the same decision, and a failing rule denies.
//!
//! What a decision grants is carried by a [`certificate`]: the canonical bytes of its claims signed
//! with the vendor's Ed25519 key, verifiable offline with the public key alone.
//!
//! A customer's license server serves seats under a vendor-signed [`server_license`] and signs
//! their certificates with its own key; [`signature`] gives every kind of signed document its own
//! context, so bytes signed for one purpose never verify as another.
//!
//! [`bundle`] reads and writes signed product bundles: the policy, plugins and servers a product
//! ships in one file.
//!
//! [`dongle`] derives dongle serials from their keys and checks their proofs of presence.
//!
//! [`exchange`] reads and writes the request and response files of manual (offline) activation
//! and return, and keeps the client's record of pending requests.
//!
//! [`effects`] holds the effect rules every host applies decisions' effects by.
//!
//! [`scenario`] runs timelines of requests against a policy with an in-memory store, which is how
//! vendors test their policies (`licet policy test`).

#![deny(missing_docs)]

pub mod bundle;
pub mod calendar;
pub mod certificate;
mod codec;
mod decide;
pub mod decision;
pub mod dongle;
pub mod effects;
pub mod exchange;
pub mod fingerprint;
pub mod offline;
pub mod policy;
pub mod report;
pub mod request;
pub mod scenario;
mod script;
pub mod server_license;
pub mod signature;
pub mod state;

pub use decide::decide;
pub use decision::{Code, Decision, Effect, Verdict};
pub use fingerprint::Fingerprint;
pub use policy::{Policy, PolicyError};
pub use request::{Action, Actor, ProductRef, Request, RequestKind};
pub use state::State;
