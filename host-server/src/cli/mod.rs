//! The command line's administration of a running server: `licet-server admin ...`.
//!
//! [`admin`] has the commands (one per operation of the administrator API, `/v1/admin/...`),
//! [`client`] sends them over HTTP with an administrator token read from a file or the
//! environment, [`table`] prints the answers as readable tables.

pub mod admin;
pub mod client;
pub mod table;
