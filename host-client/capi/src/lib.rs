//! C ABI of Licet's client host.
//!
//! C and C++ applications link `liblicet` (static or shared) and include `include/licet.h`. The
//! functions wrap [`licet_client::Client`]: open a client from a state directory, a policy file
//! and the vendor's public key file; run the start-up check; read the license information as JSON.
//!
//! Conventions: handles are opaque and freed by their `_free` function; strings the library returns
//! are owned by the caller and freed with `licet_string_free`; no Rust panic crosses the boundary;
//! every null pointer argument is an error, reported through `licet_last_error` like any other.
//!
//! The unsafe pointer handling is confined to the `ffi` module; everything it calls is safe code.

#![deny(missing_docs)]

mod ffi;

pub use ffi::*;

use licet_client::{CheckReport, Client, ClientError};
use std::path::Path;

/// Opens a client with the native machine probe.
fn open(state_dir: &Path, policy: &Path, vendor_key: &Path) -> Result<Client, ClientError> {
    Client::open(state_dir, policy, vendor_key)
}

/// The start-up check.
fn check(client: &Client) -> Result<CheckReport, ClientError> {
    client.check()
}

/// The license information as pretty JSON.
fn info_json(client: &Client) -> Result<String, String> {
    let info = client.info().map_err(|error| error.to_string())?;
    serde_json::to_string_pretty(&info).map_err(|error| error.to_string())
}
