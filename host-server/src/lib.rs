//! Licet's server host: the vendor's activation center and the customer's network license server.
//!
//! The server embeds `licet-engine`: for each request it loads the stored records of one license
//! into a [`licet_engine::State`], calls [`licet_engine::decide`], applies the decision's effects
//! in one transaction (signing the certificates it asks for and appending to the audit log), and
//! answers over a versioned JSON HTTP API. Only this crate knows HTTP and SQL.
#![deny(missing_docs)]

pub mod admin;
pub mod api;
pub mod center;
pub mod cli;
pub mod config;
pub mod dongle;
mod effects;
pub mod error;
pub mod fields;
pub mod keys;
pub mod license_server;
pub mod listener;
pub mod listing;
pub mod logging;
pub mod loopback;
pub mod metrics;
pub mod ratelimit;
pub mod server;
pub mod service;
pub mod store;
pub mod tls;
pub mod web;
