//! C ABI of Licet's client host.
//!
//! C and C++ applications link `liblicet` (static or shared) and include `include/licet.h`. The
//! functions wrap [`licet_client::Client`]: open a client from a state directory, a policy file
//! and the vendor's public key file; run the start-up check; read the license information as JSON;
//! start the trial, activate, validate and return online with a license server; activate and
//! return manually by request and response files; hold, borrow and return network seats.
//!
//! Conventions: handles are opaque and freed by their `_free` (or `_release`) function; strings the
//! library returns are owned by the caller and freed with `licet_string_free`; no Rust panic
//! crosses the boundary; every null pointer argument is an error, reported through
//! `licet_last_error` like any other.
//!
//! The unsafe pointer handling is confined to the `ffi` module; everything it calls is the safe
//! code of this module, which only adapts the [`Client`] API to the C conventions.

#![deny(missing_docs)]

mod ffi;

pub use ffi::*;

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use licet_client::client::{SeatHold, SeatHolder, RESPONSE_FILE_INVALID};
use licet_client::http::PinnedCertificate;
use licet_client::{CheckReport, Client, ClientError, HttpTransport, Transport};
use licet_engine::report::Report as _;
use licet_engine::{Code, Decision};

/// What a workflow answered: whether the product may go on, with the engine's code and sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    allowed: bool,
    code: String,
    message: String,
}

impl From<&Decision> for Answer {
    fn from(decision: &Decision) -> Answer {
        Answer {
            allowed: decision.is_allowed(),
            code: decision.code.as_str().to_owned(),
            message: decision.message.clone(),
        }
    }
}

impl From<&CheckReport> for Answer {
    fn from(report: &CheckReport) -> Answer {
        Answer::from(&report.decision)
    }
}

/// Opens a client with the native machine probe.
fn open(state_dir: &Path, policy: &Path, vendor_key: &Path) -> Result<Client, ClientError> {
    Client::open(state_dir, policy, vendor_key)
}

/// Opens a client from the policy's text and the vendor's public key bytes held in memory, with
/// the native machine probe.
fn open_embedded(
    state_dir: &Path,
    policy_yaml: &str,
    vendor_key: &[u8; 32],
) -> Result<Client, ClientError> {
    Client::from_embedded_key(state_dir, policy_yaml, vendor_key)
}

/// Opens a client from a vendor-signed product bundle and the vendor's public key bytes.
fn open_bundle(
    state_dir: &Path,
    bundle: &[u8],
    vendor_key: &[u8; 32],
) -> Result<Client, ClientError> {
    Client::open_bundle(state_dir, bundle, vendor_key)
}

/// Opens a client that checks the machine's USB dongle through the vendor-signed dongle plugin
/// in `dongle_plugin`, over USB HID or the software dongle file `software_dongle`.
fn open_with_dongle(
    state_dir: &Path,
    policy: &Path,
    vendor_key: &Path,
    dongle_plugin: &Path,
    software_dongle: Option<&Path>,
) -> Result<Client, ClientError> {
    Client::open(state_dir, policy, vendor_key)?.with_dongle_plugin(dongle_plugin, software_dongle)
}

/// The start-up check.
fn check(client: &Client) -> Result<CheckReport, ClientError> {
    client.check()
}

/// The license information as pretty JSON.
fn info_json(client: &Client) -> Result<String, String> {
    let info = client.info().map_err(|error| error.report())?;
    serde_json::to_string_pretty(&info).map_err(|error| error.report())
}

/// How a client's online operations reach the license server: HTTPS with the public roots, or
/// plain HTTP on loopback, unless the caller allowed plain HTTP or pinned a certificate.
#[derive(Debug, Clone, Default)]
struct Connection {
    allow_plain_http: bool,
    pinned: Option<PinnedCertificate>,
}

impl Connection {
    /// Pins the certificate in `bytes` (DER or PEM), or removes the pin when `bytes` is empty.
    fn pin(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.pinned = if bytes.is_empty() {
            None
        } else {
            Some(PinnedCertificate::from_bytes(bytes).map_err(|error| error.report())?)
        };
        Ok(())
    }

    /// The HTTP settings of this connection.
    fn settings(&self) -> licet_client::http::HttpSettings {
        licet_client::http::HttpSettings {
            allow_plain_http: self.allow_plain_http,
            pinned_certificate: self.pinned.clone(),
            ..Default::default()
        }
    }
}

/// The transport to the license server at `server_url` for the client's product; the empty
/// string means the product bundle the client was opened from (its online transport plugin, or
/// its server; its pinned certificate unless the caller pinned one).
fn transport(
    client: &Client,
    connection: &Connection,
    server_url: &str,
) -> Result<Box<dyn Transport + Send>, String> {
    let product = &client.policy().product.id;
    let transport: Result<Box<dyn Transport + Send>, _> = match (server_url, client.bundle()) {
        ("", Some(bundle)) => bundle.transport(product, connection.settings()),
        ("", None) => {
            return Err("`server_url` is empty and the client has no product bundle".to_owned())
        }
        (url, _) => HttpTransport::new(url, product)
            .map(|transport| Box::new(transport.with_http_settings(connection.settings())) as _),
    };
    transport.map_err(|error| error.report())
}

/// Runs an online operation through a fresh transport to `server_url`.
fn online(
    client: &Client,
    connection: &Connection,
    server_url: &str,
    operation: impl FnOnce(&Client, &mut dyn Transport) -> Result<Decision, ClientError>,
) -> Result<Answer, String> {
    let mut transport = transport(client, connection, server_url)?;
    match operation(client, &mut *transport) {
        Ok(decision) => Ok(Answer::from(&decision)),
        Err(error) => refusal(error),
    }
}

/// A certificate a license server sent that its server license does not cover is a denial with
/// its code (`CERTIFICATE_OUTSIDE_SERVER_LICENSE`, `SERVER_LICENSE_INVALID`,
/// `SERVER_LICENSE_EXPIRED`), as the command line reports it; any other failure stays an error.
fn refusal(error: ClientError) -> Result<Answer, String> {
    match &error {
        ClientError::ServerLicense(inner) => Ok(Answer {
            allowed: false,
            code: inner.code().as_str().to_owned(),
            message: inner.report(),
        }),
        _ => Err(error.report()),
    }
}

/// Starts the trial of `edition` online (`licet trial start`).
fn start_trial(
    client: &Client,
    connection: &Connection,
    server_url: &str,
    edition: &str,
) -> Result<Answer, String> {
    online(client, connection, server_url, |client, transport| {
        client.start_trial(transport, edition, Utc::now())
    })
}

/// Activates license `key` for `edition` online (`licet activate --server`).
fn activate(
    client: &Client,
    connection: &Connection,
    server_url: &str,
    key: &str,
    edition: &str,
) -> Result<Answer, String> {
    online(client, connection, server_url, |client, transport| {
        client.activate(transport, key, edition, Utc::now())
    })
}

/// Validates the installed license or trial online (`licet validate`).
fn validate(client: &Client, connection: &Connection, server_url: &str) -> Result<Answer, String> {
    online(client, connection, server_url, |client, transport| {
        client.validate(transport, Utc::now())
    })
}

/// Returns the installed license online (`licet return --server`).
fn return_license(
    client: &Client,
    connection: &Connection,
    server_url: &str,
) -> Result<Answer, String> {
    online(client, connection, server_url, |client, transport| {
        client.return_license(transport, Utc::now())
    })
}

/// Borrows a seat of `key` for `edition` until `until` (`licet borrow`).
fn borrow(
    client: &Client,
    connection: &Connection,
    server_url: &str,
    key: &str,
    edition: &str,
    until: &str,
) -> Result<Answer, String> {
    let until = borrow_end(until)?;
    online(client, connection, server_url, |client, transport| {
        client.borrow(transport, key, edition, until, Utc::now())
    })
}

/// Returns the borrowed seat early (`licet borrow return`).
fn return_borrowed(
    client: &Client,
    connection: &Connection,
    server_url: &str,
) -> Result<Answer, String> {
    online(client, connection, server_url, |client, transport| {
        client.return_borrowed(transport, Utc::now())
    })
}

/// The end of a borrow: an RFC 3339 time, or a `YYYY-MM-DD` date meaning 00:00 UTC that day (as
/// `licet borrow --until` takes it).
fn borrow_end(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(|date| date.and_time(NaiveTime::MIN).and_utc())
        .map_err(|_| {
            format!(
                "`until` is `{text}`, not an RFC 3339 time (2027-03-01T00:00:00Z) or a date \
                 (2027-03-01)"
            )
        })
}

/// Installs a vendor-signed certificate given as armored text (`licet license install`).
fn install_certificate(client: &Client, certificate: &str) -> Result<Answer, String> {
    client
        .install_certificate(certificate, Utc::now())
        .map(|report| Answer::from(&report))
        .map_err(|error| error.report())
}

/// Sets the end user's language (`licet license language`).
fn set_language(client: &Client, language: &str) -> Result<(), String> {
    client
        .set_language(language, Utc::now())
        .map_err(|error| error.report())
}

/// The text of a manual activation request file (`licet activate --manual`): the bundle's `files`
/// plugin's request file when the client was opened from a bundle that carries one, else the
/// exchange file.
fn manual_activation_request(client: &Client, key: &str, edition: &str) -> Result<String, String> {
    client
        .manual_activation_file(key, edition, Utc::now())
        .map_err(|error| error.report())
        .and_then(file_text)
}

/// The text of a manual return request file (`licet return --manual`), as
/// [`manual_activation_request`].
fn manual_return_request(client: &Client) -> Result<String, String> {
    client
        .manual_return_file(Utc::now())
        .map_err(|error| error.report())
        .and_then(file_text)
}

/// A request file as the text the C functions return.
fn file_text(file: Vec<u8>) -> Result<String, String> {
    String::from_utf8(file)
        .map_err(|_| "the bundle's file transport made a request file that is not text".to_owned())
}

/// Loads an activation response file (`licet activate --load-response`), read by the bundle's
/// `files` plugin when it carries one.
fn manual_activation_load(client: &Client, response: &[u8]) -> Result<Answer, String> {
    client
        .load_manual_activation_file(response, Utc::now())
        .map(|report| Answer::from(&report))
        .or_else(exchange_denial)
}

/// Loads a return response file (`licet return --load-response`), read by the bundle's `files`
/// plugin when it carries one.
fn manual_return_load(client: &Client, response: &[u8]) -> Result<Answer, String> {
    client
        .load_manual_return_file(response, Utc::now())
        .map(|()| Answer {
            allowed: true,
            code: Code::Returned.as_str().to_owned(),
            message: "the license was removed from this machine".to_owned(),
        })
        .or_else(exchange_denial)
}

/// A rejected response file is a denial with its code (`EXCHANGE_MALFORMED`, ...), and one the
/// bundle's file transport cannot read is `RESPONSE_FILE_INVALID`, as the command line reports
/// them; any other failure stays an error.
fn exchange_denial(error: ClientError) -> Result<Answer, String> {
    match error.carried_refusal(RESPONSE_FILE_INVALID) {
        Some(refusal) => Ok(Answer {
            allowed: false,
            code: refusal.code,
            message: refusal.message,
        }),
        None => Err(error.report()),
    }
}

/// Checks out a network seat held by heartbeats (`licet seat hold`): the holder when granted, the
/// server's denial otherwise.
fn seat_checkout(
    client: &Arc<Client>,
    connection: &Connection,
    server_url: &str,
    key: &str,
    edition: &str,
) -> Result<(Option<SeatHolder>, Answer), String> {
    let transport = transport(client, connection, server_url)?;
    match SeatHolder::checkout(Arc::clone(client), transport, key, edition) {
        Ok(SeatHold::Held(holder)) => {
            let answer = Answer::from(holder.decision());
            Ok((Some(holder), answer))
        }
        Ok(SeatHold::Denied(decision)) => Ok((None, Answer::from(&decision))),
        Err(error) => refusal(error).map(|answer| (None, answer)),
    }
}

/// The loss of a held seat, once the license server no longer holds it; `None` while held.
fn seat_status(holder: &SeatHolder) -> Option<Answer> {
    holder.lost().map(|loss| Answer::from(&loss.decision))
}

/// Stops a seat's heartbeats and releases it.
fn seat_release(holder: SeatHolder) -> Result<Answer, String> {
    holder
        .release()
        .map(|decision| Answer::from(&decision))
        .map_err(|error| error.report())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_borrow_ends_at_an_rfc3339_time_or_at_midnight_utc_of_a_date() {
        assert_eq!(
            borrow_end("2027-03-01T12:00:00+02:00").ok(),
            DateTime::parse_from_rfc3339("2027-03-01T10:00:00Z")
                .ok()
                .map(|time| time.with_timezone(&Utc))
        );
        assert_eq!(
            borrow_end("2027-03-01").ok(),
            DateTime::parse_from_rfc3339("2027-03-01T00:00:00Z")
                .ok()
                .map(|time| time.with_timezone(&Utc))
        );
        let error = borrow_end("next tuesday").err().unwrap_or_default();
        assert!(error.contains("not an RFC 3339 time"), "{error}");
    }
}
