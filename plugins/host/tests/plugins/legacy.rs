//! Plugins built against `licet:plugin@0.1.0` (`plugins/wit-0.1.0`) still load and run: a
//! transport on the client side (the server side needs 0.2.0), a hardware check with its HID
//! import.

use std::sync::Arc;

use licet_plugin_host::test_support::{install_plugin, test_key};
use licet_plugin_host::{
    Allow, HidId, HttpsClient, PluginError, Reading, SoftwareDongle, WitVersion, World,
    DEFAULT_DONGLE_PRODUCT_ID, DEFAULT_DONGLE_VENDOR_ID, DONGLE_PLUGIN,
};

use crate::support::{host, plugin, urls};
use crate::transport::serve_once;

#[test]
fn a_0_1_0_transport_posts_and_decodes_on_the_client_side() {
    let dir = tempfile::tempdir().unwrap();
    let (url, server) = serve_once("200 OK", b"answer to ");
    let plugin_dir = plugin(
        &dir,
        "legacy-transport",
        World::Transport,
        &[("server-url", url.as_str())],
        urls(&[url.as_str()]),
    );
    let transport = host().load_transport(&plugin_dir).unwrap();
    assert_eq!(transport.wit_version(), WitVersion::V0_1);
    let answer = transport
        .exchange_http(&HttpsClient::default(), br#"{"key":"K-1"}"#)
        .unwrap();
    let received = server.join().unwrap();
    assert_eq!(received.request_line, "POST /api/activate HTTP/1.1");
    assert_eq!(received.body, br#"{"key":"K-1"}"#);
    assert_eq!(answer, br#"answer to {"key":"K-1"}"#);
    // The plugin's own errors come through the conversion with their codes.
    let error = transport
        .decode(&licet_plugin_host::WireReply {
            status: 0,
            body: Vec::new(),
        })
        .unwrap_err();
    assert!(
        matches!(&error, PluginError::Plugin { code, .. } if code == "bad-reply"),
        "{error}"
    );
}

#[test]
fn a_0_1_0_transport_has_no_server_side() {
    let dir = tempfile::tempdir().unwrap();
    let plugin_dir = plugin(&dir, "legacy-transport", World::Transport, &[], urls(&[]));
    let transport = host().load_transport(&plugin_dir).unwrap();
    let refused = |error: PluginError| {
        assert!(
            matches!(&error, PluginError::NoServerSide { plugin, version }
                if plugin == "legacy-transport" && *version == "0.1.0"),
            "{error}"
        );
        assert!(error.to_string().contains("0.2.0"), "{error}");
    };
    refused(transport.server_side().unwrap_err());
    refused(
        transport
            .decode_request("application/json", b"{}")
            .unwrap_err(),
    );
    refused(transport.encode_answer(b"{}").unwrap_err());
}

#[test]
fn a_0_1_0_hardware_check_proves_a_dongle_through_its_hid_import() {
    let dir = tempfile::tempdir().unwrap();
    let vendor = format!("{DEFAULT_DONGLE_VENDOR_ID:#06x}");
    let product = format!("{DEFAULT_DONGLE_PRODUCT_ID:#06x}");
    let plugin_dir = install_plugin(
        dir.path(),
        "legacy-dongle-hid",
        World::HardwareCheck,
        &[("vendor-id", &vendor), ("product-id", &product)],
        Allow {
            urls: Vec::new(),
            hid: vec![HidId {
                vendor_id: DEFAULT_DONGLE_VENDOR_ID,
                product_id: DEFAULT_DONGLE_PRODUCT_ID,
            }],
        },
        &test_key(),
    )
    .unwrap();
    let check = host()
        .load_hardware_check(&plugin_dir, "legacy-dongle-hid")
        .unwrap();
    assert_eq!(check.wit_version(), WitVersion::V0_1);
    let dongle =
        SoftwareDongle::generate(DEFAULT_DONGLE_VENDOR_ID, DEFAULT_DONGLE_PRODUCT_ID).unwrap();
    let verified = check
        .dongle_check(Arc::new(dongle.clone()), &[0x42; 32])
        .unwrap();
    assert_eq!(verified.serial, dongle.serial());
    assert_eq!(verified.proof.verify(&[0x42; 32]).unwrap(), dongle.serial());
    // The dongle slot still takes only the plugin named `dongle-hid`.
    assert!(host()
        .load_hardware_check(&plugin_dir, DONGLE_PLUGIN)
        .is_err());
    // Its fingerprint call crosses the 0.1.0 conversion and returns the plugin's own error.
    let error = check
        .fingerprint(
            b"salt",
            &[Reading::new("machine-id", "/etc/machine-id", "x")],
        )
        .unwrap_err();
    assert!(
        matches!(&error, PluginError::Plugin { code, .. } if code == "unsupported"),
        "{error}"
    );
}
