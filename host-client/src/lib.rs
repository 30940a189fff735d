//! Licet's client host.
//!
//! This crate holds what runs on the vendor's and the end user's machines outside the server: the
//! embeddable [`Client`] (start-up check, license information, online operations through a
//! [`Transport`] such as the [`HttpTransport`], manual activation and return by files) with its
//! signed local [`state`], the [`machine`] fingerprint, and the `licet` command line's tools:
//! policy checks and scenario tests ([`policy_tools`]) and vendor key management ([`keys`]); the
//! command line itself is [`cli`], which the binary only runs. The C
//! ABI over [`Client`] lives in the `licet-capi` crate; `docs/client.md` describes all of it.
//!
//! A start-up check reads the signed local state, verifies the stored certificate with the
//! vendor's public key and decides offline with
//! [`check_certificate`](licet_engine::offline::check_certificate); nothing but a vendor-signed
//! certificate grants use.

#![deny(missing_docs)]

pub mod cli;
pub mod client;
pub mod dongle;
pub mod http;
pub mod info;
pub mod keys;
pub mod ledger;
pub mod machine;
pub mod plugin_transport;
pub mod policy_tools;
pub mod state;
pub mod transport;

pub use client::{CheckReport, Client, ClientError, Trust, Validation};
pub use dongle::{DongleError, DongleProver};
pub use http::HttpTransport;
pub use info::{LicenseInfo, Status};
pub use machine::{ClockFloor, Environment, FixedProbe, MachineClock, MachineProbe, NativeProbe};
pub use plugin_transport::PluginTransport;
pub use transport::{Reply, SeatQuery, ServedLicense, Transport, TransportError};
