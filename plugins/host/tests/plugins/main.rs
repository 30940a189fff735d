//! The plugin host driven the way the client and server hosts use it, with the shipped plugins
//! and the hostile test plugins built from `plugins/guests`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod accept;
mod cache;
mod dongle;
mod hardware;
mod hostile;
mod legacy;
mod signing;
mod support;
mod text;
mod tls;
mod transport;
