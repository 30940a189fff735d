//! The command line's administration of a running server: `licet-server admin ...`.
//!
//! [`commands`] has the command line (one command per operation of the administrator API,
//! `/v1/admin/...`), [`admin`] turns each into its request and prints the answer,
//! [`client`] sends them over HTTP with an administrator token read from a file or the
//! environment, [`table`] prints the answers as readable tables.

pub mod admin;
pub mod client;
pub mod commands;
pub mod table;
