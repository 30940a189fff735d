//! The `extern "C"` functions. Every function catches panics, checks its pointers, and records
//! failures for `licet_last_error`; the work itself is done by the safe functions of the crate
//! root.

#![allow(unsafe_code)]

use licet_engine::report::Report as _;
use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Arc;

use licet_client::client::SeatHolder;
use licet_client::Client;

use crate::{Answer, Connection};

/// The product may run: the start-up check or the server allowed, the response file was loaded.
pub const LICET_OK: i32 = 0;
/// The start-up check, the server or the response file check denied; the code and message say
/// why.
pub const LICET_DENIED: i32 = 1;
/// The call failed (bad argument, unreadable file, unreachable server, ...); see
/// `licet_last_error`.
pub const LICET_ERROR: i32 = 2;

/// An opened client: the product's policy, the vendor key and the state directory.
#[derive(Debug)]
pub struct LicetClient {
    /// Shared with the seats checked out through it, which keep it alive until they are released.
    client: Arc<Client>,
    /// How its online operations reach the server.
    connection: crate::Connection,
}

/// A network seat checked out by `licet_seat_checkout` and held by heartbeats on a background
/// thread until `licet_seat_release`.
#[derive(Debug)]
pub struct LicetSeat {
    holder: SeatHolder,
}

thread_local! {
    static LAST_ERROR: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn set_error(message: impl Into<String>) {
    let message = message.into();
    LAST_ERROR.with(|slot| *slot.borrow_mut() = Some(message));
}

fn clear_error() {
    LAST_ERROR.with(|slot| *slot.borrow_mut() = None);
}

/// Runs `body`, turning a panic into an error result.
fn guarded<T>(failure: T, body: impl FnOnce() -> Result<T, String>) -> T {
    clear_error();
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(value)) => value,
        Ok(Err(message)) => {
            set_error(message);
            failure
        }
        Err(_) => {
            set_error("internal error: the licet library panicked");
            failure
        }
    }
}

/// A C string the caller owns; interior NUL bytes (never expected) become spaces.
fn owned_string(text: &str) -> *mut c_char {
    let text = text.replace('\0', " ");
    CString::new(text).map_or(std::ptr::null_mut(), CString::into_raw)
}

/// A UTF-8 string argument.
///
/// # Safety
/// `pointer` must be null or point to a NUL-terminated string valid for the duration of the call
/// (the lifetime `'a` chosen by the caller must not outlive it).
unsafe fn text_argument<'a>(pointer: *const c_char, name: &str) -> Result<&'a str, String> {
    if pointer.is_null() {
        return Err(format!("`{name}` is null"));
    }
    // SAFETY: non-null, and the caller guarantees a NUL-terminated string that outlives `'a`.
    let text = unsafe { CStr::from_ptr(pointer) };
    text.to_str()
        .map_err(|_| format!("`{name}` is not valid UTF-8"))
}

/// A path from a C string argument.
///
/// # Safety
/// `pointer` must be null or point to a NUL-terminated string valid for the duration of the call.
unsafe fn path_argument(pointer: *const c_char, name: &str) -> Result<PathBuf, String> {
    // SAFETY: the caller's guarantee on `pointer` is passed on.
    unsafe { text_argument(pointer, name) }.map(PathBuf::from)
}

/// The contents of a file passed as `length` bytes at `pointer`, or as a NUL-terminated string
/// when `length` is 0.
///
/// # Safety
/// `pointer` must be null, or point to `length` readable bytes when `length` is not 0, or to a
/// NUL-terminated string when it is 0, valid for the duration of the call.
unsafe fn bytes_argument(
    pointer: *const c_char,
    length: usize,
    name: &str,
) -> Result<Vec<u8>, String> {
    if pointer.is_null() {
        return Err(format!("`{name}` is null"));
    }
    if length == 0 {
        // SAFETY: non-null, and the caller guarantees a NUL-terminated string when `length` is 0.
        return Ok(unsafe { CStr::from_ptr(pointer) }.to_bytes().to_vec());
    }
    // SAFETY: non-null, and the caller guarantees `length` readable bytes; they are copied before
    // the call returns.
    Ok(unsafe { std::slice::from_raw_parts(pointer.cast::<u8>(), length) }.to_vec())
}

/// The client behind a handle argument.
///
/// # Safety
/// `client` must be null or a live pointer from `licet_client_open` (for at least `'a`).
unsafe fn client_argument<'a>(client: *const LicetClient) -> Result<&'a LicetClient, String> {
    // SAFETY: the caller guarantees `client` is null or a live handle; null is checked.
    unsafe { client.as_ref() }.ok_or_else(|| "`client` is null".to_owned())
}

/// Writes `text` as a caller-owned string (or null) through `out` when `out` is not null.
///
/// # Safety
/// `out` must be null or valid for writing one pointer.
unsafe fn write_string(out: *mut *mut c_char, text: Option<&str>) {
    if !out.is_null() {
        let value = text.map_or(std::ptr::null_mut(), owned_string);
        // SAFETY: non-null and valid for one pointer write, as the caller guarantees.
        unsafe { *out = value };
    }
}

/// Hands an answer to C: its code and message through the output pointers, and `LICET_OK` or
/// `LICET_DENIED`.
///
/// # Safety
/// `code` and `message` must each be null or valid for writing one pointer.
unsafe fn answered(answer: &Answer, code: *mut *mut c_char, message: *mut *mut c_char) -> i32 {
    // SAFETY: the caller's guarantee on the output pointers is passed on.
    unsafe {
        write_string(code, Some(&answer.code));
        write_string(message, Some(&answer.message));
    }
    if answer.allowed {
        LICET_OK
    } else {
        LICET_DENIED
    }
}

/// Runs a workflow that answers with a decision: clears `*code` and `*message`, runs `body` under
/// [`guarded`] and hands its answer to C.
///
/// # Safety
/// `code` and `message` must each be null or valid for writing one pointer.
unsafe fn decided(
    code: *mut *mut c_char,
    message: *mut *mut c_char,
    body: impl FnOnce() -> Result<Answer, String>,
) -> i32 {
    guarded(LICET_ERROR, || {
        // SAFETY: the caller's guarantee on the output pointers is passed on.
        unsafe {
            write_string(code, None);
            write_string(message, None);
        }
        let answer = body()?;
        // SAFETY: as above.
        Ok(unsafe { answered(&answer, code, message) })
    })
}

/// Opens a client over `state_dir` with the policy file `policy_path` and the vendor public key
/// file `vendor_key_path`. Returns null on failure (see `licet_last_error`). Free the client with
/// `licet_client_free`.
///
/// # Safety
/// Each argument must be null or a NUL-terminated string valid for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn licet_client_open(
    state_dir: *const c_char,
    policy_path: *const c_char,
    vendor_key_path: *const c_char,
) -> *mut LicetClient {
    guarded(std::ptr::null_mut(), || {
        // SAFETY: the caller's guarantee on the three strings is passed on.
        let (state_dir, policy, key) = unsafe {
            (
                path_argument(state_dir, "state_dir")?,
                path_argument(policy_path, "policy_path")?,
                path_argument(vendor_key_path, "vendor_key_path")?,
            )
        };
        let client = crate::open(&state_dir, &policy, &key).map_err(|error| error.report())?;
        Ok(Box::into_raw(Box::new(LicetClient {
            client: Arc::new(client),
            connection: Connection::default(),
        })))
    })
}

/// Opens a client over `state_dir` from the policy's YAML text `policy_yaml` (NUL-terminated) and
/// the vendor's 32-byte Ed25519 public key at `vendor_key`, both compiled into the product so no
/// file on the machine can replace them. Returns null on failure (see `licet_last_error`). Free
/// the client with `licet_client_free`.
///
/// # Safety
/// `state_dir` and `policy_yaml` must each be null or a NUL-terminated string, and `vendor_key`
/// null or 32 readable bytes, valid for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn licet_client_open_embedded(
    state_dir: *const c_char,
    policy_yaml: *const c_char,
    vendor_key: *const u8,
) -> *mut LicetClient {
    guarded(std::ptr::null_mut(), || {
        if vendor_key.is_null() {
            return Err("`vendor_key` is null".to_owned());
        }
        // SAFETY: the caller's guarantee on the strings and the 32 key bytes is passed on.
        let (state_dir, policy, key) = unsafe {
            (
                path_argument(state_dir, "state_dir")?,
                text_argument(policy_yaml, "policy_yaml")?,
                *vendor_key.cast::<[u8; 32]>(),
            )
        };
        let client =
            crate::open_embedded(&state_dir, policy, &key).map_err(|error| error.report())?;
        Ok(Box::into_raw(Box::new(LicetClient {
            client: Arc::new(client),
            connection: Connection::default(),
        })))
    })
}

/// Opens a client over `state_dir` from a vendor-signed product bundle (`bundle_len` bytes at
/// `bundle`, built with `licet bundle build`) and the vendor's 32-byte Ed25519 public key at
/// `vendor_key`, both compiled into the product. The policy, the plugins (the machine's
/// fingerprint comes from the bundle's fingerprint plugin), the server address and the pinned
/// server certificate come from the bundle; online functions given the empty string as
/// `server_url` use the bundle's server. A bundle of another vendor, changed by one byte or
/// naming a plugin it does not carry is refused: null, with the reason in `licet_last_error`.
/// Free the client with `licet_client_free`.
///
/// # Safety
/// `state_dir` must be null or a NUL-terminated string, `bundle` null or `bundle_len` readable
/// bytes, `vendor_key` null or 32 readable bytes, valid for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn licet_client_open_bundle(
    state_dir: *const c_char,
    bundle: *const u8,
    bundle_len: usize,
    vendor_key: *const u8,
) -> *mut LicetClient {
    guarded(std::ptr::null_mut(), || {
        if bundle.is_null() {
            return Err("`bundle` is null".to_owned());
        }
        if vendor_key.is_null() {
            return Err("`vendor_key` is null".to_owned());
        }
        // SAFETY: the caller's guarantee on the string, the bundle's bytes and the 32 key bytes
        // is passed on.
        let (state_dir, bundle, key) = unsafe {
            (
                path_argument(state_dir, "state_dir")?,
                std::slice::from_raw_parts(bundle, bundle_len),
                *vendor_key.cast::<[u8; 32]>(),
            )
        };
        let client =
            crate::open_bundle(&state_dir, bundle, &key).map_err(|error| error.report())?;
        Ok(Box::into_raw(Box::new(LicetClient {
            client: Arc::new(client),
            connection: Connection::default(),
        })))
    })
}

/// Opens a client like `licet_client_open` that also checks the machine's USB dongle, through the
/// vendor-signed dongle plugin in the directory `dongle_plugin` (refused unless signed with the
/// vendor key). The dongle is read over USB HID, or, when `software_dongle` is not null, from that
/// software dongle file (development). Certificates bound to a dongle then pass the start-up check
/// only while the dongle answers, and online activation proves the dongle to the server.
///
/// # Safety
/// Each argument must be null (only `software_dongle` may be) or a NUL-terminated string valid for
/// the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn licet_client_open_with_dongle(
    state_dir: *const c_char,
    policy_path: *const c_char,
    vendor_key_path: *const c_char,
    dongle_plugin: *const c_char,
    software_dongle: *const c_char,
) -> *mut LicetClient {
    guarded(std::ptr::null_mut(), || {
        // SAFETY: the caller's guarantee on the strings is passed on; `software_dongle` is only
        // read when it is not null.
        let (state_dir, policy, key, plugin, software) = unsafe {
            (
                path_argument(state_dir, "state_dir")?,
                path_argument(policy_path, "policy_path")?,
                path_argument(vendor_key_path, "vendor_key_path")?,
                path_argument(dongle_plugin, "dongle_plugin")?,
                if software_dongle.is_null() {
                    None
                } else {
                    Some(path_argument(software_dongle, "software_dongle")?)
                },
            )
        };
        let client =
            crate::open_with_dongle(&state_dir, &policy, &key, &plugin, software.as_deref())
                .map_err(|error| error.report())?;
        Ok(Box::into_raw(Box::new(LicetClient {
            client: Arc::new(client),
            connection: Connection::default(),
        })))
    })
}

/// Frees a client, first waiting for the state write a start-up check may have left running.
/// Null is allowed and does nothing.
///
/// Seats checked out through the client keep what they need of it: a seat still held when its
/// client is freed goes on renewing its lease until `licet_seat_release`, which remains safe to
/// call. Release every seat before the process exits, or the server keeps it until its lease runs
/// out.
///
/// # Safety
/// `client` must be null or a pointer returned by `licet_client_open` not freed before.
#[no_mangle]
pub unsafe extern "C" fn licet_client_free(client: *mut LicetClient) {
    guarded((), || {
        if !client.is_null() {
            // SAFETY: the pointer came from `Box::into_raw` in `licet_client_open` and is freed once.
            let client = unsafe { Box::from_raw(client) };
            // The write is waited for even when a seat keeps the client alive; its failure leaves
            // the previous state in place, as dropping the last reference would.
            let _ = client.client.flush();
            drop(client);
        }
        Ok(())
    })
}

/// Allows (`allow` true) or refuses again (false) plain `http://` to a license server that is not
/// on this machine, for the client's online operations from now on (see `licet
/// --allow-plain-http`): license keys then travel in clear text, so only on a trusted network.
/// Without it such an address is refused before connecting; plain HTTP on loopback is always
/// allowed. Returns `LICET_OK`, or `LICET_ERROR` when `client` is null.
///
/// # Safety
/// `client` must be null or a live pointer from `licet_client_open`, used by no other call while
/// this one runs.
#[no_mangle]
pub unsafe extern "C" fn licet_client_allow_plain_http(
    client: *mut LicetClient,
    allow: bool,
) -> i32 {
    guarded(LICET_ERROR, || {
        // SAFETY: the caller guarantees `client` is null or a live handle used by no other call.
        let client = unsafe { client.as_mut() }.ok_or_else(|| "`client` is null".to_owned())?;
        client.connection.allow_plain_http = allow;
        Ok(LICET_OK)
    })
}

/// Pins the license server's certificate for the client's online operations from now on (see
/// `licet --server-certificate`): the server's TLS certificate must then chain to it (the
/// server's own self-signed certificate, or the CA that issued it), and the public roots are not
/// consulted. `certificate` points to `len` bytes of DER, or of PEM text (its first
/// `CERTIFICATE`); a null `certificate` with `len` 0 removes the pin. Returns `LICET_OK`, or
/// `LICET_ERROR` when `client` is null or the bytes are not a certificate (the previous setting
/// stays; see `licet_last_error`).
///
/// # Safety
/// `client` must be null or a live pointer from `licet_client_open`, used by no other call while
/// this one runs; `certificate` null or valid for reading `len` bytes for the duration of the
/// call.
#[no_mangle]
pub unsafe extern "C" fn licet_client_set_server_certificate(
    client: *mut LicetClient,
    certificate: *const u8,
    len: usize,
) -> i32 {
    guarded(LICET_ERROR, || {
        // SAFETY: the caller guarantees `client` is null or a live handle used by no other call.
        let client = unsafe { client.as_mut() }.ok_or_else(|| "`client` is null".to_owned())?;
        let bytes: &[u8] = match (certificate.is_null(), len) {
            (true, 0) => &[],
            (true, _) => return Err("`certificate` is null".to_owned()),
            // SAFETY: non-null and valid for reading `len` bytes, as the caller guarantees.
            (false, _) => unsafe { std::slice::from_raw_parts(certificate, len) },
        };
        client.connection.pin(bytes)?;
        Ok(LICET_OK)
    })
}

/// Runs the start-up check (see the `licet check` command). Returns `LICET_OK` when the product
/// may run, `LICET_DENIED` when not, `LICET_ERROR` when the check could not run. On `LICET_OK` and
/// `LICET_DENIED`, `*code` (e.g. `VALID`, `EXPIRED`) and `*message` (a sentence) are set to strings
/// the caller frees with `licet_string_free`; on `LICET_ERROR` they are set to null. Either pointer
/// may be null when not wanted. When the check moves the stored time seen forward it writes the
/// state on a background thread; `licet_client_free` waits for it.
///
/// # Safety
/// `client` must be null or a live pointer from `licet_client_open`; `code` and `message` must be
/// null or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn licet_check(
    client: *const LicetClient,
    code: *mut *mut c_char,
    message: *mut *mut c_char,
) -> i32 {
    let body = || {
        // SAFETY: the caller guarantees `client` is null or a live handle.
        let client = unsafe { client_argument(client) }?;
        let report = crate::check(&client.client).map_err(|error| error.report())?;
        Ok(Answer::from(&report))
    };
    // SAFETY: the caller's guarantee on `code` and `message` is passed on.
    unsafe { decided(code, message, body) }
}

/// The license information (product, edition, version, language, key, status, expiry, trust, ...)
/// as a JSON object. Returns null on failure. Free the string with `licet_string_free`.
///
/// # Safety
/// `client` must be null or a live pointer from `licet_client_open`.
#[no_mangle]
pub unsafe extern "C" fn licet_license_info_json(client: *const LicetClient) -> *mut c_char {
    guarded(std::ptr::null_mut(), || {
        // SAFETY: the caller guarantees `client` is null or a live handle.
        let client = unsafe { client_argument(client) }?;
        Ok(owned_string(&crate::info_json(&client.client)?))
    })
}

/// Starts the trial of `edition` online with the license server at `server_url`
/// (`http://host:port`; see the `licet trial start` command). The server records the trial
/// against this machine, so a machine that had it gets its original end back (or
/// `TRIAL_ALREADY_USED`), never a second trial.
///
/// Returns `LICET_OK` when the server allowed (`TRIAL_STARTED`; the trial certificate is stored),
/// `LICET_DENIED` when it denied, `LICET_ERROR` when the request failed (bad argument, server
/// unreachable, ...; see `licet_last_error`). `*code` and `*message` are set as by `licet_check`.
///
/// # Safety
/// `client` must be null or a live pointer from `licet_client_open`; `server_url` and `edition`
/// null or NUL-terminated strings valid for the duration of the call; `code` and `message` null
/// or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn licet_trial_start(
    client: *const LicetClient,
    server_url: *const c_char,
    edition: *const c_char,
    code: *mut *mut c_char,
    message: *mut *mut c_char,
) -> i32 {
    let body = || {
        // SAFETY: the caller guarantees each pointer is null or valid for the call.
        let (client, server_url, edition) = unsafe {
            (
                client_argument(client)?,
                text_argument(server_url, "server_url")?,
                text_argument(edition, "edition")?,
            )
        };
        crate::start_trial(&client.client, &client.connection, server_url, edition)
    };
    // SAFETY: the caller's guarantee on `code` and `message` is passed on.
    unsafe { decided(code, message, body) }
}

/// Activates license `key` for `edition` online with the license server at `server_url` (see
/// `licet activate --server`). Returns `LICET_OK` when the server allowed (`ACTIVATED`; the
/// certificate is stored), `LICET_DENIED` when it denied (e.g. `ACTIVATION_LIMIT`),
/// `LICET_ERROR` when the request failed. `*code` and `*message` are set as by `licet_check`.
///
/// # Safety
/// `client` must be null or a live pointer from `licet_client_open`; the strings null or
/// NUL-terminated and valid for the duration of the call; `code` and `message` null or valid for
/// writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn licet_activate(
    client: *const LicetClient,
    server_url: *const c_char,
    key: *const c_char,
    edition: *const c_char,
    code: *mut *mut c_char,
    message: *mut *mut c_char,
) -> i32 {
    let body = || {
        // SAFETY: the caller guarantees each pointer is null or valid for the call.
        let (client, server_url, key, edition) = unsafe {
            (
                client_argument(client)?,
                text_argument(server_url, "server_url")?,
                text_argument(key, "key")?,
                text_argument(edition, "edition")?,
            )
        };
        crate::activate(&client.client, &client.connection, server_url, key, edition)
    };
    // SAFETY: the caller's guarantee on `code` and `message` is passed on.
    unsafe { decided(code, message, body) }
}

/// Validates the installed license (or trial) online with the license server at `server_url`
/// (see `licet validate`) and stores the fresh certificate. A denial (revoked, expired, ...) is
/// stored too, and the start-up check answers it until a later validation succeeds. Returns
/// `LICET_OK`, `LICET_DENIED` or `LICET_ERROR` (also when nothing is installed) with `*code` and
/// `*message` set as by `licet_check`.
///
/// # Safety
/// `client` must be null or a live pointer from `licet_client_open`; `server_url` null or a
/// NUL-terminated string valid for the duration of the call; `code` and `message` null or valid
/// for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn licet_validate(
    client: *const LicetClient,
    server_url: *const c_char,
    code: *mut *mut c_char,
    message: *mut *mut c_char,
) -> i32 {
    let body = || {
        // SAFETY: the caller guarantees each pointer is null or valid for the call.
        let (client, server_url) = unsafe {
            (
                client_argument(client)?,
                text_argument(server_url, "server_url")?,
            )
        };
        crate::validate(&client.client, &client.connection, server_url)
    };
    // SAFETY: the caller's guarantee on `code` and `message` is passed on.
    unsafe { decided(code, message, body) }
}

/// Returns the installed license online to the license server at `server_url` (see
/// `licet return --server`), freeing the key for another machine. When the server allows it
/// (`RETURNED`) the certificate is removed and the start-up check answers `NOT_ACTIVATED`.
/// Returns `LICET_OK`, `LICET_DENIED` or `LICET_ERROR` (also when no license is installed) with
/// `*code` and `*message` set as by `licet_check`.
///
/// # Safety
/// As for `licet_validate`.
#[no_mangle]
pub unsafe extern "C" fn licet_return(
    client: *const LicetClient,
    server_url: *const c_char,
    code: *mut *mut c_char,
    message: *mut *mut c_char,
) -> i32 {
    let body = || {
        // SAFETY: the caller guarantees each pointer is null or valid for the call.
        let (client, server_url) = unsafe {
            (
                client_argument(client)?,
                text_argument(server_url, "server_url")?,
            )
        };
        crate::return_license(&client.client, &client.connection, server_url)
    };
    // SAFETY: the caller's guarantee on `code` and `message` is passed on.
    unsafe { decided(code, message, body) }
}

/// Installs a vendor-signed certificate delivered as a file (its armored text, NUL-terminated;
/// see `licet license install`). The certificate must verify with the vendor key and be for this
/// product, version and machine; a rejected one is `LICET_ERROR`. Otherwise returns the start-up
/// check with it installed, as `licet_check` does.
///
/// # Safety
/// `client` must be null or a live pointer from `licet_client_open`; `certificate` null or a
/// NUL-terminated string valid for the duration of the call; `code` and `message` null or valid
/// for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn licet_license_install(
    client: *const LicetClient,
    certificate: *const c_char,
    code: *mut *mut c_char,
    message: *mut *mut c_char,
) -> i32 {
    let body = || {
        // SAFETY: the caller guarantees each pointer is null or valid for the call.
        let (client, certificate) = unsafe {
            (
                client_argument(client)?,
                text_argument(certificate, "certificate")?,
            )
        };
        crate::install_certificate(&client.client, certificate)
    };
    // SAFETY: the caller's guarantee on `code` and `message` is passed on.
    unsafe { decided(code, message, body) }
}

/// Sets the language the end user chose, one of the product's languages (see
/// `licet license language`). Returns `LICET_OK`, or `LICET_ERROR` (e.g. an unknown language; see
/// `licet_last_error`).
///
/// # Safety
/// `client` must be null or a live pointer from `licet_client_open`; `language` null or a
/// NUL-terminated string valid for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn licet_set_language(
    client: *const LicetClient,
    language: *const c_char,
) -> i32 {
    guarded(LICET_ERROR, || {
        // SAFETY: the caller guarantees each pointer is null or valid for the call.
        let (client, language) = unsafe {
            (
                client_argument(client)?,
                text_argument(language, "language")?,
            )
        };
        crate::set_language(&client.client, language)?;
        Ok(LICET_OK)
    })
}

/// Begins a manual activation of license `key` for `edition` (see `licet activate --manual`):
/// returns the text of the activation request file (XML) to carry to the vendor, and remembers
/// the request as pending in the state. A client opened from a bundle with a `files` plugin
/// returns that plugin's request file instead (`transport-file`: the armored `-----BEGIN LICET
/// REQUEST-----` text). Returns null on failure (see `licet_last_error`). Free the string with
/// `licet_string_free`.
///
/// # Safety
/// `client` must be null or a live pointer from `licet_client_open`; `key` and `edition` null or
/// NUL-terminated strings valid for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn licet_manual_activation_request(
    client: *const LicetClient,
    key: *const c_char,
    edition: *const c_char,
) -> *mut c_char {
    guarded(std::ptr::null_mut(), || {
        // SAFETY: the caller guarantees each pointer is null or valid for the call.
        let (client, key, edition) = unsafe {
            (
                client_argument(client)?,
                text_argument(key, "key")?,
                text_argument(edition, "edition")?,
            )
        };
        let request = crate::manual_activation_request(&client.client, key, edition)?;
        Ok(owned_string(&request))
    })
}

/// Loads the vendor's activation response file (see `licet activate --load-response`): `length`
/// bytes at `response`, or a NUL-terminated string when `length` is 0. The response must be
/// signed by the vendor and answer a pending request of this machine; then its certificate is
/// installed and the start-up check with it is returned as by `licet_check`. A rejected file
/// (malformed, altered, for another machine, replayed, ...) is `LICET_DENIED` with its code (e.g.
/// `EXCHANGE_MALFORMED`) and message; `LICET_ERROR` is any other failure. A client opened from a
/// bundle with a `files` plugin reads the file through that plugin first: a file it cannot read
/// is `LICET_DENIED` with `RESPONSE_FILE_INVALID`.
///
/// # Safety
/// `client` must be null or a live pointer from `licet_client_open`; `response` null, or
/// `length` readable bytes, or (when `length` is 0) a NUL-terminated string, valid for the
/// duration of the call; `code` and `message` null or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn licet_manual_activation_load(
    client: *const LicetClient,
    response: *const c_char,
    length: usize,
    code: *mut *mut c_char,
    message: *mut *mut c_char,
) -> i32 {
    let body = || {
        // SAFETY: the caller guarantees each pointer is null or valid for the call.
        let (client, response) = unsafe {
            (
                client_argument(client)?,
                bytes_argument(response, length, "response")?,
            )
        };
        crate::manual_activation_load(&client.client, &response)
    };
    // SAFETY: the caller's guarantee on `code` and `message` is passed on.
    unsafe { decided(code, message, body) }
}

/// Begins a manual return of the installed license (see `licet return --manual`): returns the
/// text of the return request file (XML, or the bundle's `files` plugin's file as for
/// `licet_manual_activation_request`) to carry to the vendor. From now on the start-up check
/// denies, until the return response is loaded (the license is gone) or a newer activation
/// response is. Returns null on failure (e.g. no license installed; see `licet_last_error`). Free
/// the string with `licet_string_free`.
///
/// # Safety
/// `client` must be null or a live pointer from `licet_client_open`.
#[no_mangle]
pub unsafe extern "C" fn licet_manual_return_request(client: *const LicetClient) -> *mut c_char {
    guarded(std::ptr::null_mut(), || {
        // SAFETY: the caller guarantees `client` is null or a live handle.
        let client = unsafe { client_argument(client) }?;
        Ok(owned_string(&crate::manual_return_request(&client.client)?))
    })
}

/// Loads the vendor's return response file (see `licet return --load-response`), given as for
/// `licet_manual_activation_load`. When it answers this machine's pending return the license is
/// removed: `LICET_OK` with code `RETURNED`. A rejected file is `LICET_DENIED` with its code and
/// message; `LICET_ERROR` is any other failure.
///
/// # Safety
/// As for `licet_manual_activation_load`.
#[no_mangle]
pub unsafe extern "C" fn licet_manual_return_load(
    client: *const LicetClient,
    response: *const c_char,
    length: usize,
    code: *mut *mut c_char,
    message: *mut *mut c_char,
) -> i32 {
    let body = || {
        // SAFETY: the caller guarantees each pointer is null or valid for the call.
        let (client, response) = unsafe {
            (
                client_argument(client)?,
                bytes_argument(response, length, "response")?,
            )
        };
        crate::manual_return_load(&client.client, &response)
    };
    // SAFETY: the caller's guarantee on `code` and `message` is passed on.
    unsafe { decided(code, message, body) }
}

/// Checks out a network seat of license `key` for `edition` from the license server at
/// `server_url` and holds it (see `licet seat hold`): a background thread renews the lease every
/// third of its length, so the start-up check keeps passing, until `licet_seat_release`.
///
/// Returns the seat when the server granted it (`SEAT_GRANTED`), null otherwise: denied (e.g.
/// `SEATS_EXHAUSTED`, or `CERTIFICATE_OUTSIDE_SERVER_LICENSE` for a certificate a license server
/// sent that its server license does not cover; `*code` and `*message` say why and
/// `licet_last_error` is null) or failed
/// (`*code` and `*message` null; see `licet_last_error`). `*code` and `*message` are set as by
/// `licet_check`.
///
/// The seat shares the client: freeing the client first is safe (the seat keeps what it needs
/// until it is released), but every seat must be released with `licet_seat_release`, or its
/// heartbeats go on until the process exits and the server keeps the seat until its lease runs
/// out.
///
/// # Safety
/// `client` must be null or a live pointer from `licet_client_open`; the strings null or
/// NUL-terminated and valid for the duration of the call; `code` and `message` null or valid for
/// writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn licet_seat_checkout(
    client: *const LicetClient,
    server_url: *const c_char,
    key: *const c_char,
    edition: *const c_char,
    code: *mut *mut c_char,
    message: *mut *mut c_char,
) -> *mut LicetSeat {
    guarded(std::ptr::null_mut(), || {
        // SAFETY: the caller guarantees each pointer is null or valid for the call.
        let (client, server_url, key, edition) = unsafe {
            write_string(code, None);
            write_string(message, None);
            (
                client_argument(client)?,
                text_argument(server_url, "server_url")?,
                text_argument(key, "key")?,
                text_argument(edition, "edition")?,
            )
        };
        let (holder, answer) =
            crate::seat_checkout(&client.client, &client.connection, server_url, key, edition)?;
        // SAFETY: the caller's guarantee on `code` and `message` is passed on.
        unsafe { answered(&answer, code, message) };
        Ok(holder.map_or(std::ptr::null_mut(), |holder| {
            Box::into_raw(Box::new(LicetSeat { holder }))
        }))
    })
}

/// Whether a seat is still held. Returns `LICET_OK` while it is (`*code` and `*message` null),
/// `LICET_DENIED` once a heartbeat found that the license server no longer holds it: its
/// administrator released it (`*code` `LEASE_NOT_FOUND`), the lease lapsed (`LEASE_EXPIRED`), or
/// another denial kept it from being renewed until the lease ran out; `*message` says why. A lost
/// seat is forgotten on this machine (the start-up check no longer passes with it) and is not
/// checked out again by itself: release the handle, and check out again if the product wants
/// to. `LICET_ERROR` when `seat` is null.
///
/// # Safety
/// `seat` must be null or a live pointer from `licet_seat_checkout`; `code` and `message` null or
/// valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn licet_seat_status(
    seat: *const LicetSeat,
    code: *mut *mut c_char,
    message: *mut *mut c_char,
) -> i32 {
    guarded(LICET_ERROR, || {
        // SAFETY: the caller's guarantee on `code` and `message` is passed on.
        unsafe {
            write_string(code, None);
            write_string(message, None);
        }
        // SAFETY: the caller guarantees `seat` is null or a live handle; null is checked.
        let seat = unsafe { seat.as_ref() }.ok_or_else(|| "`seat` is null".to_owned())?;
        Ok(match crate::seat_status(&seat.holder) {
            None => LICET_OK,
            // SAFETY: as above.
            Some(answer) => unsafe { answered(&answer, code, message) },
        })
    })
}

/// Stops a seat's heartbeats, gives the seat back to the license server and frees the handle,
/// whatever the outcome. Returns `LICET_OK` when the server confirmed (`SEAT_RELEASED`),
/// `LICET_DENIED` when it answered otherwise (e.g. `LEASE_NOT_FOUND` after the lease ran out) or
/// when the seat was already lost (its loss's code, see `licet_seat_status`; nothing is sent),
/// `LICET_ERROR` when it could not be asked (the seat then comes back when its lease runs out).
/// `*code` and `*message` are set as by `licet_check`. Null is allowed and does nothing
/// (`LICET_OK`, `*code` and `*message` null).
///
/// # Safety
/// `seat` must be null or a pointer returned by `licet_seat_checkout` not released before;
/// `code` and `message` null or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn licet_seat_release(
    seat: *mut LicetSeat,
    code: *mut *mut c_char,
    message: *mut *mut c_char,
) -> i32 {
    guarded(LICET_ERROR, || {
        // SAFETY: the caller's guarantee on `code` and `message` is passed on.
        unsafe {
            write_string(code, None);
            write_string(message, None);
        }
        if seat.is_null() {
            return Ok(LICET_OK);
        }
        // SAFETY: the pointer came from `Box::into_raw` in `licet_seat_checkout` and is freed
        // once.
        let seat = unsafe { Box::from_raw(seat) };
        let answer = crate::seat_release(seat.holder)?;
        // SAFETY: as above.
        Ok(unsafe { answered(&answer, code, message) })
    })
}

/// Borrows a network seat of license `key` for `edition` from the license server at
/// `server_url` until `until` (see `licet borrow`): an RFC 3339 time (`2027-03-01T00:00:00Z`) or
/// a date (`2027-03-01`, meaning 00:00 UTC). When the server grants it (`BORROWED`) the start-up
/// check passes without a server until then. Returns `LICET_OK`, `LICET_DENIED` or `LICET_ERROR`
/// (also for a malformed `until`) with `*code` and `*message` set as by `licet_check`.
///
/// # Safety
/// `client` must be null or a live pointer from `licet_client_open`; the strings null or
/// NUL-terminated and valid for the duration of the call; `code` and `message` null or valid for
/// writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn licet_borrow(
    client: *const LicetClient,
    server_url: *const c_char,
    key: *const c_char,
    edition: *const c_char,
    until: *const c_char,
    code: *mut *mut c_char,
    message: *mut *mut c_char,
) -> i32 {
    let body = || {
        // SAFETY: the caller guarantees each pointer is null or valid for the call.
        let (client, server_url, key, edition, until) = unsafe {
            (
                client_argument(client)?,
                text_argument(server_url, "server_url")?,
                text_argument(key, "key")?,
                text_argument(edition, "edition")?,
                text_argument(until, "until")?,
            )
        };
        crate::borrow(
            &client.client,
            &client.connection,
            server_url,
            key,
            edition,
            until,
        )
    };
    // SAFETY: the caller's guarantee on `code` and `message` is passed on.
    unsafe { decided(code, message, body) }
}

/// Returns the borrowed seat early to the license server at `server_url` (see
/// `licet borrow return`). The borrow certificate is removed once the server confirms
/// (`BORROW_RETURNED`). Returns `LICET_OK`, `LICET_DENIED` or `LICET_ERROR` (also when nothing is
/// borrowed) with `*code` and `*message` set as by `licet_check`.
///
/// # Safety
/// As for `licet_validate`.
#[no_mangle]
pub unsafe extern "C" fn licet_borrow_return(
    client: *const LicetClient,
    server_url: *const c_char,
    code: *mut *mut c_char,
    message: *mut *mut c_char,
) -> i32 {
    let body = || {
        // SAFETY: the caller guarantees each pointer is null or valid for the call.
        let (client, server_url) = unsafe {
            (
                client_argument(client)?,
                text_argument(server_url, "server_url")?,
            )
        };
        crate::return_borrowed(&client.client, &client.connection, server_url)
    };
    // SAFETY: the caller's guarantee on `code` and `message` is passed on.
    unsafe { decided(code, message, body) }
}

/// The message of the last failure on this thread, or null when the last call succeeded. Free it
/// with `licet_string_free`.
#[no_mangle]
pub extern "C" fn licet_last_error() -> *mut c_char {
    catch_unwind(|| {
        LAST_ERROR.with(|slot| {
            slot.borrow()
                .as_deref()
                .map_or(std::ptr::null_mut(), owned_string)
        })
    })
    .unwrap_or(std::ptr::null_mut())
}

/// Frees a string returned by this library. Null is allowed and does nothing.
///
/// # Safety
/// `text` must be null or a string returned by this library not freed before.
#[no_mangle]
pub unsafe extern "C" fn licet_string_free(text: *mut c_char) {
    if !text.is_null() {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: the string came from `CString::into_raw` in this library and is freed once.
            drop(unsafe { CString::from_raw(text) });
        }));
    }
}

/// The library's version, a static string the caller must not free.
#[no_mangle]
pub extern "C" fn licet_version() -> *const c_char {
    static VERSION: &CStr =
        match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(version) => version,
            Err(_) => c"unknown",
        };
    VERSION.as_ptr()
}
