//! The `extern "C"` functions. Every function catches panics, checks its pointers, and records
//! failures for `licet_last_error`.

#![allow(unsafe_code)]

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use licet_client::Client;

/// The product may run (the start-up check allowed it).
pub const LICET_OK: i32 = 0;
/// The start-up check denied; the code and message say why.
pub const LICET_DENIED: i32 = 1;
/// The call failed (bad argument, unreadable file, ...); see `licet_last_error`.
pub const LICET_ERROR: i32 = 2;

/// An opened client: the product's policy, the vendor key and the state directory.
#[derive(Debug)]
pub struct LicetClient {
    client: Client,
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

/// A path from a C string argument.
///
/// # Safety
/// `pointer` must be null or point to a NUL-terminated string valid for the duration of the call.
unsafe fn path_argument(pointer: *const c_char, name: &str) -> Result<PathBuf, String> {
    if pointer.is_null() {
        return Err(format!("`{name}` is null"));
    }
    // SAFETY: non-null, and the caller guarantees a NUL-terminated string that outlives the call.
    let text = unsafe { CStr::from_ptr(pointer) };
    text.to_str()
        .map(PathBuf::from)
        .map_err(|_| format!("`{name}` is not valid UTF-8"))
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
        let client = crate::open(&state_dir, &policy, &key).map_err(|error| error.to_string())?;
        Ok(Box::into_raw(Box::new(LicetClient { client })))
    })
}

/// Frees a client, first waiting for the state write a start-up check may have left running.
/// Null is allowed and does nothing.
///
/// # Safety
/// `client` must be null or a pointer returned by `licet_client_open` not freed before.
#[no_mangle]
pub unsafe extern "C" fn licet_client_free(client: *mut LicetClient) {
    guarded((), || {
        if !client.is_null() {
            // SAFETY: the pointer came from `Box::into_raw` in `licet_client_open` and is freed once.
            drop(unsafe { Box::from_raw(client) });
        }
        Ok(())
    })
}

/// Runs the start-up check (see the `licet check` command). Returns `LICET_OK` when the product
/// may run, `LICET_DENIED` when not, `LICET_ERROR` when the check could not run. On `LICET_OK` and
/// `LICET_DENIED`, `*code` (e.g. `VALID`, `EXPIRED`) and `*message` (a sentence) are set to strings
/// the caller frees with `licet_string_free`; either pointer may be null when not wanted. When the
/// check moves the stored time seen forward it writes the state on a background thread;
/// `licet_client_free` waits for it.
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
    guarded(LICET_ERROR, || {
        // SAFETY: the caller guarantees `client` is null or a live handle; null is checked.
        let client = unsafe { client.as_ref() }.ok_or("`client` is null")?;
        let report = crate::check(&client.client).map_err(|error| error.to_string())?;
        if !code.is_null() {
            // SAFETY: non-null and valid for one pointer write, as the caller guarantees.
            unsafe { *code = owned_string(report.decision.code.as_str()) };
        }
        if !message.is_null() {
            // SAFETY: non-null and valid for one pointer write, as the caller guarantees.
            unsafe { *message = owned_string(&report.decision.message) };
        }
        Ok(if report.decision.is_allowed() {
            LICET_OK
        } else {
            LICET_DENIED
        })
    })
}

/// The license information (product, edition, version, language, key, status, expiry, trust, ...)
/// as a JSON object. Returns null on failure. Free the string with `licet_string_free`.
///
/// # Safety
/// `client` must be null or a live pointer from `licet_client_open`.
#[no_mangle]
pub unsafe extern "C" fn licet_license_info_json(client: *const LicetClient) -> *mut c_char {
    guarded(std::ptr::null_mut(), || {
        // SAFETY: the caller guarantees `client` is null or a live handle; null is checked.
        let client = unsafe { client.as_ref() }.ok_or("`client` is null")?;
        Ok(owned_string(&crate::info_json(&client.client)?))
    })
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
