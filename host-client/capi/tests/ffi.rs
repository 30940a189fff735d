//! The C functions called from Rust the way C calls them: null pointers, errors, ownership.

#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ffi::{CStr, CString};
use std::ptr;

use licet::*;

fn last_error() -> Option<String> {
    let error = licet_last_error();
    if error.is_null() {
        return None;
    }
    // SAFETY: a non-null string returned by the library, freed right after copying.
    let text = unsafe { CStr::from_ptr(error) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: returned by the library and not freed before.
    unsafe { licet_string_free(error) };
    Some(text)
}

#[test]
fn null_pointers_are_errors_not_crashes() {
    // SAFETY: null pointers are allowed arguments.
    let client = unsafe { licet_client_open(ptr::null(), ptr::null(), ptr::null()) };
    assert!(client.is_null());
    assert_eq!(last_error().as_deref(), Some("`state_dir` is null"));

    let mut code = ptr::null_mut();
    // SAFETY: a null client is allowed; `code` is a valid place for one pointer.
    let result = unsafe { licet_check(ptr::null(), &mut code, ptr::null_mut()) };
    assert_eq!(result, LICET_ERROR);
    assert!(code.is_null());
    assert_eq!(last_error().as_deref(), Some("`client` is null"));

    // SAFETY: a null client is allowed.
    assert!(unsafe { licet_license_info_json(ptr::null()) }.is_null());
    assert_eq!(last_error().as_deref(), Some("`client` is null"));

    // SAFETY: freeing null is allowed and does nothing.
    unsafe {
        licet_client_free(ptr::null_mut());
        licet_string_free(ptr::null_mut());
    }
    assert_eq!(
        last_error(),
        None,
        "a successful call clears the last error"
    );
}

#[test]
fn a_missing_key_file_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let state = CString::new(dir.path().to_str().unwrap()).unwrap();
    let policy = CString::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../policies/gstarcad.yaml"
    ))
    .unwrap();
    let key = CString::new(dir.path().join("vendor.pub").to_str().unwrap()).unwrap();
    // SAFETY: three valid NUL-terminated strings.
    let client = unsafe { licet_client_open(state.as_ptr(), policy.as_ptr(), key.as_ptr()) };
    assert!(client.is_null());
    let error = last_error().unwrap();
    assert!(error.contains("vendor.pub"), "{error}");
}

#[test]
fn the_version_is_the_crate_version() {
    // SAFETY: a static NUL-terminated string.
    let version = unsafe { CStr::from_ptr(licet_version()) };
    assert_eq!(version.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
}
