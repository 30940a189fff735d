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
fn a_client_opens_from_policy_text_and_key_bytes_compiled_in() {
    let dir = tempfile::tempdir().unwrap();
    let state = CString::new(dir.path().to_str().unwrap()).unwrap();
    let policy_text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../policies/gstarcad.yaml"
    ))
    .unwrap();
    let policy = CString::new(policy_text.clone()).unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32])
        .verifying_key()
        .to_bytes();
    // SAFETY: two valid NUL-terminated strings and 32 key bytes.
    let client =
        unsafe { licet_client_open_embedded(state.as_ptr(), policy.as_ptr(), key.as_ptr()) };
    assert!(!client.is_null(), "{:?}", last_error());
    // SAFETY: a live client.
    let info = take(unsafe { licet_license_info_json(client) }).unwrap();
    assert!(info.contains("\"product\": \"gstarcad\""), "{info}");
    // SAFETY: freed once.
    unsafe { licet_client_free(client) };

    // A policy that does not load and key bytes that are no key are errors, not clients.
    let broken = CString::new(policy_text.replace("product:", "produkt:")).unwrap();
    // SAFETY: as above.
    let client =
        unsafe { licet_client_open_embedded(state.as_ptr(), broken.as_ptr(), key.as_ptr()) };
    assert!(client.is_null());
    assert!(last_error().unwrap().contains("embedded policy"));
    // y = 2 is not the y coordinate of a point of the curve.
    let mut not_a_key = [0u8; 32];
    not_a_key[0] = 2;
    // SAFETY: as above.
    let client =
        unsafe { licet_client_open_embedded(state.as_ptr(), policy.as_ptr(), not_a_key.as_ptr()) };
    assert!(client.is_null());
    assert!(last_error().unwrap().contains("vendor key"));
    // SAFETY: null pointers are allowed and reported.
    let client =
        unsafe { licet_client_open_embedded(state.as_ptr(), policy.as_ptr(), std::ptr::null()) };
    assert!(client.is_null());
    assert!(last_error().unwrap().contains("vendor_key"));
}

#[test]
fn a_client_with_a_dongle_needs_a_dongle_plugin_the_vendor_signed() {
    use licet_plugin_host::test_support::install_dongle_plugin;
    use licet_plugin_host::{SoftwareDongle, DEFAULT_DONGLE_PRODUCT_ID, DEFAULT_DONGLE_VENDOR_ID};

    let dir = tempfile::tempdir().unwrap();
    let vendor = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
    std::fs::write(
        dir.path().join("vendor.pub"),
        licet_client::keys::public_key_text(&vendor.verifying_key()),
    )
    .unwrap();
    let install = |into: &str, key: &ed25519_dalek::SigningKey| {
        install_dongle_plugin(
            &dir.path().join(into),
            key,
            DEFAULT_DONGLE_VENDOR_ID,
            DEFAULT_DONGLE_PRODUCT_ID,
        )
        .unwrap()
    };
    let signed = install("signed", &vendor);
    let foreign = install("foreign", &ed25519_dalek::SigningKey::from_bytes(&[6; 32]));
    let dongle_file = dir.path().join("dev.dongle");
    SoftwareDongle::generate(DEFAULT_DONGLE_VENDOR_ID, DEFAULT_DONGLE_PRODUCT_ID)
        .unwrap()
        .write_file(&dongle_file)
        .unwrap();
    let text = |path: &std::path::Path| CString::new(path.to_str().unwrap()).unwrap();
    let state = text(&dir.path().join("state"));
    let policy = CString::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../policies/gstarcad.yaml"
    ))
    .unwrap();
    let key = text(&dir.path().join("vendor.pub"));
    let open = |plugin: Option<&CString>, software: Option<&CString>| {
        // SAFETY: valid NUL-terminated strings or null where null is allowed.
        unsafe {
            licet_client_open_with_dongle(
                state.as_ptr(),
                policy.as_ptr(),
                key.as_ptr(),
                plugin.map_or(ptr::null(), |plugin| plugin.as_ptr()),
                software.map_or(ptr::null(), |software| software.as_ptr()),
            )
        }
    };

    let client = open(Some(&text(&signed)), Some(&text(&dongle_file)));
    assert!(!client.is_null(), "{:?}", last_error());
    let mut code = ptr::null_mut();
    // SAFETY: a client from `licet_client_open_with_dongle`; `code` is a valid place.
    let result = unsafe { licet_check(client, &mut code, ptr::null_mut()) };
    assert_eq!(result, LICET_DENIED);
    assert_eq!(take(code).as_deref(), Some("NOT_ACTIVATED"));
    // SAFETY: freed once.
    unsafe { licet_client_free(client) };
    // Over USB HID (no software dongle) it opens as well; no dongle is an answer, not an error.
    let client = open(Some(&text(&signed)), None);
    assert!(!client.is_null(), "{:?}", last_error());
    // SAFETY: freed once.
    unsafe { licet_client_free(client) };

    assert!(open(Some(&text(&foreign)), None).is_null());
    let error = last_error().unwrap();
    assert!(error.contains("dongle reader"), "{error}");
    assert!(open(None, None).is_null());
    assert_eq!(last_error().as_deref(), Some("`dongle_plugin` is null"));
}

#[test]
fn the_version_is_the_crate_version() {
    // SAFETY: a static NUL-terminated string.
    let version = unsafe { CStr::from_ptr(licet_version()) };
    assert_eq!(version.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
}

/// A product installation with nothing installed: the policy, a vendor public key and an empty
/// state directory, opened as a client.
struct Installation {
    _dir: tempfile::TempDir,
    client: *mut LicetClient,
}

impl Installation {
    fn new() -> Installation {
        let dir = tempfile::tempdir().unwrap();
        let key_path = dir.path().join("vendor.pub");
        let vendor = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        std::fs::write(
            &key_path,
            licet_client::keys::public_key_text(&vendor.verifying_key()),
        )
        .unwrap();
        let state = c_string(dir.path().join("state").to_str().unwrap());
        let policy = c_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../policies/gstarcad.yaml"
        ));
        let key = c_string(key_path.to_str().unwrap());
        // SAFETY: three valid NUL-terminated strings.
        let client = unsafe { licet_client_open(state.as_ptr(), policy.as_ptr(), key.as_ptr()) };
        assert!(!client.is_null(), "{:?}", last_error());
        Installation { _dir: dir, client }
    }
}

impl Drop for Installation {
    fn drop(&mut self) {
        // SAFETY: opened by `Installation::new` and freed once.
        unsafe { licet_client_free(self.client) };
    }
}

fn c_string(text: &str) -> CString {
    CString::new(text).unwrap()
}

/// Takes a string the library returned, freeing it.
fn take(text: *mut std::ffi::c_char) -> Option<String> {
    if text.is_null() {
        return None;
    }
    // SAFETY: a non-null string returned by the library, freed right after copying.
    let copy = unsafe { CStr::from_ptr(text) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: returned by the library and not freed before.
    unsafe { licet_string_free(text) };
    Some(copy)
}

/// The outcome of a call answering through `code` and `message`: the result, both strings, and
/// the last error.
#[derive(Debug, PartialEq)]
struct Outcome {
    result: i32,
    code: Option<String>,
    message: Option<String>,
    error: Option<String>,
}

/// Calls `call` with output pointers preset to a sentinel, so that the test sees whether the
/// library set them (to a string or to null).
fn outcome(
    call: impl FnOnce(*mut *mut std::ffi::c_char, *mut *mut std::ffi::c_char) -> i32,
) -> Outcome {
    static SENTINEL: &CStr = c"unset";
    let mut code = SENTINEL.as_ptr().cast_mut();
    let mut message = SENTINEL.as_ptr().cast_mut();
    let result = call(&mut code, &mut message);
    assert_ne!(code, SENTINEL.as_ptr().cast_mut(), "`code` was not set");
    assert_ne!(
        message,
        SENTINEL.as_ptr().cast_mut(),
        "`message` was not set"
    );
    Outcome {
        result,
        code: take(code),
        message: take(message),
        error: last_error(),
    }
}

/// Asserts an error outcome whose last error starts with `prefix`, with both outputs null.
fn assert_error(outcome: &Outcome, prefix: &str) {
    assert_eq!(outcome.result, LICET_ERROR, "{outcome:?}");
    assert_eq!((&outcome.code, &outcome.message), (&None, &None));
    let error = outcome.error.as_deref().unwrap_or_default();
    assert!(error.starts_with(prefix), "{outcome:?}");
}

/// A loopback address that refuses connections: port 1 (tcpmux) has no listener.
const UNREACHABLE_SERVER: &CStr = c"http://127.0.0.1:1";

#[test]
fn the_workflows_report_null_arguments_and_clear_their_outputs() {
    let installation = Installation::new();
    let client = installation.client;
    let url = UNREACHABLE_SERVER.as_ptr();
    let key = c"GSTAR-C-0001".as_ptr();
    let edition = c"plus".as_ptr();
    let null = ptr::null();

    // SAFETY (every call below): the client is live or null, each string is a valid literal or
    // null, and the output pointers are valid places for one pointer.
    let calls: Vec<(&str, Outcome)> = vec![
        (
            "`client` is null",
            outcome(|c, m| unsafe { licet_trial_start(ptr::null(), url, edition, c, m) }),
        ),
        (
            "`server_url` is null",
            outcome(|c, m| unsafe { licet_trial_start(client, null, edition, c, m) }),
        ),
        (
            "`edition` is null",
            outcome(|c, m| unsafe { licet_trial_start(client, url, null, c, m) }),
        ),
        (
            "`key` is null",
            outcome(|c, m| unsafe { licet_activate(client, url, null, edition, c, m) }),
        ),
        (
            "`server_url` is null",
            outcome(|c, m| unsafe { licet_validate(client, null, c, m) }),
        ),
        (
            "`client` is null",
            outcome(|c, m| unsafe { licet_return(ptr::null(), url, c, m) }),
        ),
        (
            "`certificate` is null",
            outcome(|c, m| unsafe { licet_license_install(client, null, c, m) }),
        ),
        (
            "`response` is null",
            outcome(|c, m| unsafe { licet_manual_activation_load(client, null, 0, c, m) }),
        ),
        (
            "`response` is null",
            outcome(|c, m| unsafe { licet_manual_return_load(client, null, 10, c, m) }),
        ),
        (
            "`until` is null",
            outcome(|c, m| unsafe { licet_borrow(client, url, key, edition, null, c, m) }),
        ),
        (
            "`server_url` is null",
            outcome(|c, m| unsafe { licet_borrow_return(client, null, c, m) }),
        ),
        (
            "`client` is null",
            outcome(|c, m| unsafe { licet_check(ptr::null(), c, m) }),
        ),
        (
            "`seat` is null",
            outcome(|c, m| unsafe { licet_seat_status(ptr::null(), c, m) }),
        ),
    ];
    for (expected, outcome) in &calls {
        assert_error(outcome, expected);
        assert_eq!(outcome.error.as_deref(), Some(*expected));
    }

    let seat = outcome(|c, m| {
        // SAFETY: as above.
        let seat = unsafe { licet_seat_checkout(client, url, null, edition, c, m) };
        assert!(seat.is_null());
        LICET_ERROR
    });
    assert_error(&seat, "`key` is null");

    // SAFETY: as above.
    let request = unsafe { licet_manual_activation_request(client, key, null) };
    assert!(request.is_null());
    assert_eq!(last_error().as_deref(), Some("`edition` is null"));
    // SAFETY: a null client is allowed.
    assert!(unsafe { licet_manual_return_request(ptr::null()) }.is_null());
    assert_eq!(last_error().as_deref(), Some("`client` is null"));
    // SAFETY: as above.
    assert_eq!(unsafe { licet_set_language(client, null) }, LICET_ERROR);
    assert_eq!(last_error().as_deref(), Some("`language` is null"));

    // Releasing a null seat does nothing, successfully.
    let released = outcome(|c, m| {
        // SAFETY: a null seat is allowed.
        unsafe { licet_seat_release(ptr::null_mut(), c, m) }
    });
    assert_eq!(
        released,
        Outcome {
            result: LICET_OK,
            code: None,
            message: None,
            error: None
        }
    );
}

#[test]
fn online_workflows_fail_on_a_bad_address_and_an_unreachable_server() {
    let installation = Installation::new();
    let client = installation.client;
    let key = c"GSTAR-C-0001".as_ptr();
    let edition = c"plus".as_ptr();

    // SAFETY (every call below): a live client, valid literals and valid output places.
    let https = outcome(|c, m| unsafe {
        licet_activate(
            client,
            c"ftp://licenses.example".as_ptr(),
            key,
            edition,
            c,
            m,
        )
    });
    assert_error(&https, "invalid server address `ftp://licenses.example`");
    // SAFETY: as above.
    let plain = outcome(|c, m| unsafe {
        licet_activate(
            client,
            c"http://192.0.2.1:8440".as_ptr(),
            key,
            edition,
            c,
            m,
        )
    });
    assert_error(&plain, "plain HTTP to `192.0.2.1` is refused");
    let garbage =
        outcome(|c, m| unsafe { licet_trial_start(client, c"licenses".as_ptr(), edition, c, m) });
    assert_error(&garbage, "invalid server address `licenses`");

    let url = UNREACHABLE_SERVER.as_ptr();
    let unreachable = "the license server cannot be reached";
    assert_error(
        &outcome(|c, m| unsafe { licet_trial_start(client, url, edition, c, m) }),
        unreachable,
    );
    assert_error(
        &outcome(|c, m| unsafe { licet_activate(client, url, key, edition, c, m) }),
        unreachable,
    );
    assert_error(
        &outcome(|c, m| unsafe {
            licet_borrow(client, url, key, edition, c"2030-01-01".as_ptr(), c, m)
        }),
        unreachable,
    );
    let seat = outcome(|c, m| {
        // SAFETY: as above.
        let seat = unsafe { licet_seat_checkout(client, url, key, edition, c, m) };
        assert!(seat.is_null());
        LICET_ERROR
    });
    assert_error(&seat, unreachable);

    // Nothing is installed: validation, return and borrow return have nothing to send.
    let nothing = "no license is installed on this machine";
    assert_error(
        &outcome(|c, m| unsafe { licet_validate(client, url, c, m) }),
        nothing,
    );
    assert_error(
        &outcome(|c, m| unsafe { licet_return(client, url, c, m) }),
        nothing,
    );
    assert_error(
        &outcome(|c, m| unsafe { licet_borrow_return(client, url, c, m) }),
        nothing,
    );

    // An edition the product does not have is refused before anything is sent.
    assert_error(
        &outcome(|c, m| unsafe { licet_activate(client, url, key, c"gold".as_ptr(), c, m) }),
        "the product has no edition `gold`",
    );
}

#[test]
fn a_borrow_needs_an_rfc3339_time_or_a_date() {
    let installation = Installation::new();
    let client = installation.client;
    for until in [c"next week", c"2030-13-01", c"2030-01-01 00:00", c""] {
        // SAFETY: a live client, valid literals and valid output places.
        let borrowed = outcome(|c, m| unsafe {
            licet_borrow(
                client,
                UNREACHABLE_SERVER.as_ptr(),
                c"GSTAR-N-0001".as_ptr(),
                c"plus".as_ptr(),
                until.as_ptr(),
                c,
                m,
            )
        });
        assert_error(&borrowed, "`until` is `");
        assert!(
            borrowed
                .error
                .as_deref()
                .unwrap_or_default()
                .contains("not an RFC 3339 time"),
            "{borrowed:?}"
        );
    }
}

#[test]
fn manual_activation_writes_a_request_and_rejects_a_garbage_response() {
    let installation = Installation::new();
    let client = installation.client;

    // SAFETY: a live client and valid literals.
    let request = take(unsafe {
        licet_manual_activation_request(client, c"GSTAR-C-0001".as_ptr(), c"plus".as_ptr())
    })
    .unwrap_or_else(|| panic!("{:?}", last_error()));
    assert!(request.starts_with("<?xml"), "{request}");
    assert!(request.contains("GSTAR-C-0001"), "{request}");
    assert_eq!(last_error(), None);

    // A garbage file, as a NUL-terminated string and as bytes with a length: a denial with the
    // exchange code, not a crash nor an installed license.
    let garbage = b"this is not a response file";
    let as_string = CString::new(&garbage[..]).unwrap();
    // SAFETY (both calls): a live client, a NUL-terminated string or `len` readable bytes, and
    // valid output places.
    let loads = [
        outcome(|c, m| unsafe {
            licet_manual_activation_load(client, as_string.as_ptr(), 0, c, m)
        }),
        outcome(|c, m| unsafe {
            licet_manual_activation_load(client, garbage.as_ptr().cast(), garbage.len(), c, m)
        }),
        outcome(|c, m| unsafe {
            licet_manual_return_load(client, garbage.as_ptr().cast(), garbage.len(), c, m)
        }),
    ];
    for loaded in &loads {
        assert_eq!(loaded.result, LICET_DENIED, "{loaded:?}");
        assert_eq!(
            loaded.code.as_deref(),
            Some("EXCHANGE_MALFORMED"),
            "{loaded:?}"
        );
        assert!(loaded.message.is_some(), "{loaded:?}");
        assert_eq!(loaded.error, None);
    }
    // SAFETY: a live client and valid output places.
    let checked = outcome(|c, m| unsafe { licet_check(client, c, m) });
    assert_eq!(checked.result, LICET_DENIED);
    assert_eq!(checked.code.as_deref(), Some("NOT_ACTIVATED"));

    // There is no license to return.
    // SAFETY: a live client.
    assert!(unsafe { licet_manual_return_request(client) }.is_null());
    assert_eq!(
        last_error().as_deref(),
        Some("no license is installed on this machine")
    );
}

#[test]
fn the_language_is_one_of_the_products() {
    let installation = Installation::new();
    let client = installation.client;
    // SAFETY: a live client and valid literals.
    assert_eq!(
        unsafe { licet_set_language(client, c"es".as_ptr()) },
        LICET_OK
    );
    assert_eq!(last_error(), None);
    // SAFETY: a live client.
    let info = take(unsafe { licet_license_info_json(client) }).unwrap();
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["language"], "es");

    // SAFETY: a live client and valid literals.
    assert_eq!(
        unsafe { licet_set_language(client, c"tlh".as_ptr()) },
        LICET_ERROR
    );
    assert_eq!(
        last_error().as_deref(),
        Some("the product has no language `tlh`")
    );
    // SAFETY: a live client and valid literals and output places.
    let installed = outcome(|c, m| unsafe {
        licet_license_install(client, c"-----BEGIN NONSENSE-----".as_ptr(), c, m)
    });
    assert_error(&installed, "certificate rejected: ");
}

#[test]
fn plain_http_off_loopback_is_refused_unless_the_client_allows_it() {
    let installation = Installation::new();
    let client = installation.client;
    // 0.0.0.0 is not loopback by address, yet a connection to it stays on this machine, where
    // port 1 has no listener: once allowed, the attempt fails at once.
    let url = c"http://0.0.0.0:1".as_ptr();
    let edition = c"plus".as_ptr();
    // SAFETY (every call below): a live client, valid literals and valid output places.
    let refused = outcome(|c, m| unsafe { licet_trial_start(client, url, edition, c, m) });
    assert_error(&refused, "plain HTTP to `0.0.0.0` is refused");

    // SAFETY: a live client used by no other call.
    assert_eq!(
        unsafe { licet_client_allow_plain_http(client, true) },
        LICET_OK
    );
    let tried = outcome(|c, m| unsafe { licet_trial_start(client, url, edition, c, m) });
    assert_error(&tried, "the license server cannot be reached");

    // SAFETY: as above.
    assert_eq!(
        unsafe { licet_client_allow_plain_http(client, false) },
        LICET_OK
    );
    let again = outcome(|c, m| unsafe { licet_trial_start(client, url, edition, c, m) });
    assert_error(&again, "plain HTTP to `0.0.0.0` is refused");

    // SAFETY: a null client is allowed.
    assert_eq!(
        unsafe { licet_client_allow_plain_http(ptr::null_mut(), true) },
        LICET_ERROR
    );
    assert_eq!(last_error().as_deref(), Some("`client` is null"));
}

#[test]
fn a_pinned_certificate_must_be_a_certificate_and_can_be_removed() {
    let installation = Installation::new();
    let client = installation.client;
    let garbage = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    // SAFETY (every call below): a live client used by no other call, and `len` readable bytes.
    let result =
        unsafe { licet_client_set_server_certificate(client, garbage.as_ptr(), garbage.len()) };
    assert_eq!(result, LICET_ERROR);
    let error = last_error().unwrap();
    assert!(error.starts_with("invalid pinned certificate"), "{error}");
    let result = unsafe { licet_client_set_server_certificate(client, ptr::null(), 3) };
    assert_eq!(result, LICET_ERROR);
    assert_eq!(last_error().as_deref(), Some("`certificate` is null"));
    // A certificate in DER or in PEM is pinned, and null with length 0 removes the pin again.
    let certificate = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .self_signed(&rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let der = certificate.der().to_vec();
    let pem = certificate.pem();
    for bytes in [der.as_slice(), pem.as_bytes()] {
        assert_eq!(
            unsafe { licet_client_set_server_certificate(client, bytes.as_ptr(), bytes.len()) },
            LICET_OK,
            "{:?}",
            last_error()
        );
    }
    assert_eq!(
        unsafe { licet_client_set_server_certificate(client, ptr::null(), 0) },
        LICET_OK
    );
    assert_eq!(
        unsafe { licet_client_set_server_certificate(ptr::null_mut(), der.as_ptr(), der.len()) },
        LICET_ERROR
    );
    assert_eq!(last_error().as_deref(), Some("`client` is null"));
}

/// The demo product's bundle with the fingerprint plugin and `transport-file` in the `files` role,
/// signed by `vendor`.
fn bundle_with_file_transport(
    dir: &std::path::Path,
    vendor: &ed25519_dalek::SigningKey,
) -> Vec<u8> {
    use licet_plugin_host::test_support::install_plugin;
    use licet_plugin_host::{Allow, World};
    let plugins = dir.join("plugins");
    let fingerprint = install_plugin(
        &plugins,
        "fingerprint",
        World::HardwareCheck,
        &[("components", "machine-id,mac,cpu,disk")],
        Allow::default(),
        vendor,
    )
    .unwrap();
    let files = install_plugin(
        &plugins,
        "transport-file",
        World::Transport,
        &[],
        Allow::default(),
        vendor,
    )
    .unwrap();
    let spec = licet_client::bundle::BundleSpec {
        policy: concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies/gstarcad.yaml").into(),
        servers: vec!["127.0.0.1:1".to_owned()],
        server_certificate: None,
        plugins: vec![
            (licet_engine::bundle::PluginRole::Fingerprint, fingerprint),
            (licet_engine::bundle::PluginRole::Files, files),
        ],
    };
    licet_client::bundle::build_bundle(&spec, vendor).unwrap()
}

#[test]
fn a_bundled_client_makes_and_reads_manual_files_through_the_bundles_file_transport() {
    let dir = tempfile::tempdir().unwrap();
    let vendor = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let bundle = bundle_with_file_transport(dir.path(), &vendor);
    let state = c_string(dir.path().join("state").to_str().unwrap());
    let vendor_key = vendor.verifying_key().to_bytes();
    // SAFETY: a NUL-terminated path, `bundle.len()` readable bytes and 32 key bytes.
    let client = unsafe {
        licet_client_open_bundle(
            state.as_ptr(),
            bundle.as_ptr(),
            bundle.len(),
            vendor_key.as_ptr(),
        )
    };
    assert!(!client.is_null(), "{:?}", last_error());

    // The request file is the plugin's armored file, not the exchange XML.
    // SAFETY: a live client and valid literals.
    let request = take(unsafe {
        licet_manual_activation_request(client, c"GSTAR-C-0001".as_ptr(), c"plus".as_ptr())
    })
    .unwrap_or_else(|| panic!("{:?}", last_error()));
    assert!(
        request.starts_with("-----BEGIN LICET REQUEST-----\n"),
        "{request}"
    );
    assert!(!request.contains("<?xml"), "{request}");

    // A file that is not the plugin's response file is a denial the plugin explains; one that
    // is, holding no exchange response, is refused by the exchange rules.
    let bare = b"<?xml version=\"1.0\"?><activation-response/>";
    let armored =
        b"-----BEGIN LICET RESPONSE-----\nbm90IGEgcmVzcG9uc2U=\n-----END LICET RESPONSE-----\n";
    // SAFETY (each call): a live client, `len` readable bytes and valid output places.
    let not_its_file = outcome(|c, m| unsafe {
        licet_manual_activation_load(client, bare.as_ptr().cast(), bare.len(), c, m)
    });
    assert_eq!(not_its_file.result, LICET_DENIED, "{not_its_file:?}");
    assert_eq!(
        not_its_file.code.as_deref(),
        Some("RESPONSE_FILE_INVALID"),
        "{not_its_file:?}"
    );
    assert!(not_its_file.message.is_some());
    let no_response = outcome(|c, m| unsafe {
        licet_manual_activation_load(client, armored.as_ptr().cast(), armored.len(), c, m)
    });
    assert_eq!(no_response.result, LICET_DENIED, "{no_response:?}");
    assert_eq!(
        no_response.code.as_deref(),
        Some("EXCHANGE_MALFORMED"),
        "{no_response:?}"
    );
    // Nothing was installed.
    // SAFETY: a live client and valid output places.
    let checked = outcome(|c, m| unsafe { licet_check(client, c, m) });
    assert_eq!(checked.code.as_deref(), Some("NOT_ACTIVATED"));
    // SAFETY: opened above and freed once.
    unsafe { licet_client_free(client) };
}
