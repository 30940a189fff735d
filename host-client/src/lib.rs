//! Licet's client host.
//!
//! This crate holds what runs on the vendor's and the end user's machines outside the server: the
//! `licet` command line and the functions behind it. Today that is policy tooling
//! ([`policy_tools`]: check policies, run scenario tests) and vendor key management ([`keys`]).

#![deny(missing_docs)]

pub mod keys;
pub mod policy_tools;
