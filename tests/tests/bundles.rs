//! Signed product bundles against a real `licet-server`: the vendor builds one file with the
//! policy, the plugins and the server address; the product opens it with the vendor's public key
//! alone, identifies the machine through the bundle's fingerprint plugin and activates online.
//! A bundle of another vendor, changed by one byte, naming a plugin it does not carry, or
//! carrying a plugin of another vendor, is refused before anything runs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use common::DemoServer;
use ed25519_dalek::SigningKey;
use licet_client::bundle::{build_bundle, BundleBuildError, BundleOpenError, BundleSpec};
use licet_client::{Client, ClientError};
use licet_engine::bundle::{BundleError, PluginRole, ProductBundle};
use licet_engine::Code;
use licet_plugin_host::test_support::install_plugin;
use licet_plugin_host::{read_machine, Allow, PluginHost, World, FINGERPRINT_PLUGIN};

fn vendor_secret(server: &DemoServer) -> SigningKey {
    server.vendor_secret()
}

fn fingerprint_plugin(into: &Path, key: &SigningKey) -> PathBuf {
    DemoServer::fingerprint_plugin(into, key)
}

fn transport_plugin(into: &Path, key: &SigningKey, url: &str) -> PathBuf {
    install_plugin(
        into,
        "transport-http",
        World::Transport,
        &[("server-url", url)],
        Allow {
            urls: vec![url.to_owned()],
            hid: Vec::new(),
        },
        key,
    )
    .unwrap()
}

fn bundle(server: &DemoServer) -> Vec<u8> {
    server.bundle()
}

fn vendor_public(server: &DemoServer) -> [u8; 32] {
    vendor_secret(server).verifying_key().to_bytes()
}

#[test]
fn a_bundled_product_activates_with_the_plugin_fingerprint_and_passes_its_start_up_check() {
    let server = DemoServer::start();
    let bytes = bundle(&server);
    let state = server.dir.path().join("bundled");
    let client = Client::open_bundle(&state, &bytes, &vendor_public(&server)).unwrap();
    let opened = client.bundle().unwrap();
    assert_eq!(opened.servers, vec![server.url.clone()]);

    // The fingerprint is the plugin's, over the readings the host took.
    let host = PluginHost::new(vendor_secret(&server).verifying_key()).unwrap();
    let plugin = host
        .load_hardware_check(
            &server.dir.path().join("plugins/fingerprint"),
            FINGERPRINT_PLUGIN,
        )
        .unwrap();
    let salt = licet_engine::fingerprint::product_salt("gstarcad");
    assert_eq!(
        client.fingerprint().unwrap(),
        plugin.fingerprint(&salt, &read_machine()).unwrap()
    );

    let mut transport = opened.http_transport("gstarcad").unwrap();
    let decision = client
        .activate(
            &mut transport,
            server.standalone_key(),
            "professional",
            chrono::Utc::now(),
        )
        .unwrap();
    assert_eq!(decision.code, Code::Activated, "{decision:?}");
    assert_eq!(client.check().unwrap().decision.code, Code::Valid);
    // The compiled plugin was kept: the next start loads it instead of compiling it.
    assert!(state.join("plugin-cache").is_dir());
    drop(client);
    let again = Client::open_bundle(&state, &bytes, &vendor_public(&server)).unwrap();
    assert_eq!(again.check().unwrap().decision.code, Code::Valid);
}

fn open_error(state: &Path, bytes: &[u8], key: &[u8; 32]) -> ClientError {
    match Client::open_bundle(state, bytes, key) {
        Ok(_) => panic!("the bundle was accepted"),
        Err(error) => error,
    }
}

#[test]
fn a_tampered_or_foreign_bundle_is_refused_before_anything_runs() {
    let server = DemoServer::start();
    let bytes = bundle(&server);
    let state = server.dir.path().join("bundled");
    let key = vendor_public(&server);

    // One byte changed: in the policy, in the plugin's component, in the signature.
    let policy_at = bytes
        .windows(7)
        .position(|window| window == b"product")
        .unwrap();
    for index in [policy_at, bytes.len() / 2, bytes.len() - 1] {
        let mut changed = bytes.clone();
        changed[index] ^= 0x20;
        let error = open_error(&state, &changed, &key);
        assert!(
            matches!(
                error,
                ClientError::Bundle(BundleOpenError::Bundle(BundleError::BadSignature))
            ),
            "{error}"
        );
    }
    // Another vendor's key.
    let other = SigningKey::from_bytes(&[0x51; 32])
        .verifying_key()
        .to_bytes();
    let error = open_error(&state, &bytes, &other);
    assert!(
        licet_engine::report::chain(&error)
            .to_string()
            .contains("not signed by this vendor"),
        "{error}"
    );
    // Nothing was written.
    assert!(!state.exists());
}

#[test]
fn a_bundle_naming_a_plugin_it_does_not_carry_or_carrying_a_foreign_plugin_is_refused() {
    let server = DemoServer::start();
    let key = vendor_secret(&server);
    let bytes = bundle(&server);
    let mut contents = ProductBundle::verify(&bytes, &key.verifying_key()).unwrap();
    let state = server.dir.path().join("bundled");

    // Signed by the vendor, but the online role names a plugin that is not in it.
    let mut missing = contents.clone();
    missing
        .roles
        .insert(PluginRole::Online, "transport-http".to_owned());
    let file = licet_engine::bundle::seal(
        &missing.content_bytes(),
        &licet_engine::signature::SignedKind::ProductBundle.sign(&missing.content_bytes(), &key),
    );
    let error = open_error(&state, &file, &key.verifying_key().to_bytes());
    assert!(
        matches!(
            error,
            ClientError::Bundle(BundleOpenError::Bundle(BundleError::MissingPlugin { .. }))
        ),
        "{error}"
    );

    // The bundle is the vendor's, the fingerprint plugin in it is another vendor's.
    let stranger = SigningKey::from_bytes(&[0x52; 32]);
    let foreign_dir = fingerprint_plugin(&server.dir.path().join("foreign"), &stranger);
    let foreign = BundleSpec {
        policy: server.policy.clone(),
        servers: vec![server.url.clone()],
        server_certificate: None,
        plugins: vec![(PluginRole::Fingerprint, foreign_dir.clone())],
    };
    assert!(matches!(
        build_bundle(&foreign, &key),
        Err(BundleBuildError::Plugin { .. })
    ));
    let stranger_plugin = {
        let manifest = std::fs::read(foreign_dir.join("plugin.json")).unwrap();
        let signature = base64_signature(&foreign_dir);
        let wasm = std::fs::read(foreign_dir.join("fingerprint.wasm")).unwrap();
        licet_engine::bundle::BundledPlugin {
            manifest,
            manifest_signature: signature,
            wasm,
        }
    };
    contents
        .plugins
        .insert("fingerprint".to_owned(), stranger_plugin);
    let file = contents.sign(&key).unwrap();
    let error = open_error(&state, &file, &key.verifying_key().to_bytes());
    assert!(
        matches!(
            error,
            ClientError::Bundle(BundleOpenError::Plugin {
                role: PluginRole::Fingerprint,
                ..
            })
        ),
        "{error}"
    );
}

#[test]
fn a_plugin_is_refused_in_a_role_it_does_not_fit() {
    let server = DemoServer::start();
    let key = vendor_secret(&server);
    let plugins = server.dir.path().join("plugins");
    let transport = transport_plugin(&plugins, &key, &format!("{}/v1/activate", server.url));
    let spec = BundleSpec {
        policy: server.policy.clone(),
        servers: vec![server.url.clone()],
        server_certificate: None,
        plugins: vec![(PluginRole::Fingerprint, transport)],
    };
    let error = build_bundle(&spec, &key).unwrap_err();
    assert!(
        matches!(
            error,
            BundleBuildError::Plugin {
                role: PluginRole::Fingerprint,
                ..
            }
        ),
        "{error}"
    );
}

fn base64_signature(dir: &Path) -> Vec<u8> {
    use base64::Engine as _;
    let text = std::fs::read_to_string(dir.join("plugin.sig")).unwrap();
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .unwrap()
}

/// Runs the real `licet` binary with `args` in the server's directory.
fn licet(server: &DemoServer, args: &[&str]) -> common::Outcome {
    let output = std::process::Command::new(common::binaries().join("licet"))
        .args(args)
        .current_dir(server.dir.path())
        .output()
        .unwrap();
    common::Outcome::from(output)
}

#[test]
fn the_command_line_builds_a_bundle_and_a_product_runs_from_it() {
    let server = DemoServer::start();
    let dir = server.dir.path();
    let secret = dir.join("server/vendor.secret");
    let public = server.vendor_key();
    let plugin = fingerprint_plugin(&dir.join("plugins"), &vendor_secret(&server));
    let (secret, public) = (secret.to_str().unwrap(), public.to_str().unwrap());
    let policy = server.policy.to_str().unwrap();
    let plugin_arg = format!("fingerprint={}", plugin.display());

    // A role the bundle does not know, or a bundle beside a policy, is refused by the parser.
    let unknown = licet(
        &server,
        &[
            "bundle",
            "build",
            "--policy",
            policy,
            "--vendor-secret",
            secret,
            "--plugin",
            "firmware=plugins/fingerprint",
            "--out",
            "x.bundle",
        ],
    );
    assert_eq!(unknown.code, 2, "{unknown:#?}");
    assert!(!dir.join("x.bundle").exists());

    licet(
        &server,
        &[
            "bundle",
            "build",
            "--policy",
            policy,
            "--vendor-secret",
            secret,
            "--plugin",
            &plugin_arg,
            "--server-address",
            &server.url,
            "--out",
            "gstarcad.licet-bundle",
        ],
    )
    .expect(0, "bundle written to gstarcad.licet-bundle");
    let verified = licet(
        &server,
        &[
            "bundle",
            "verify",
            "gstarcad.licet-bundle",
            "--vendor-key",
            public,
        ],
    );
    verified.expect(0, "ok: a signed product bundle of `gstarcad`");
    assert!(
        verified.stdout.contains("plugin fingerprint: fingerprint"),
        "{verified:#?}"
    );
    assert!(verified.stdout.contains(&server.url), "{verified:#?}");

    let bundled = [
        "--bundle",
        "gstarcad.licet-bundle",
        "--vendor-key",
        public,
        "--state-dir",
        "bundled",
    ];
    let with = |args: &[&str]| -> Vec<String> {
        args.iter()
            .chain(bundled.iter())
            .map(|arg| (*arg).to_owned())
            .collect()
    };
    let run = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        licet(&server, &args)
    };
    // Both a bundle and a policy: usage error before anything runs.
    let both = run(with(&["check", "--policy", policy]));
    assert_eq!(both.code, 2, "{both:#?}");
    // --online needs a bundle.
    let online_without = licet(
        &server,
        &[
            "activate",
            "--online",
            "--key",
            server.standalone_key(),
            "--edition",
            "professional",
            "--policy",
            policy,
            "--vendor-key",
            public,
        ],
    );
    assert_eq!(online_without.code, 2, "{online_without:#?}");
    assert!(!dir.join("bundled").exists());

    run(with(&["check"])).expect(1, "NOT_ACTIVATED: ");
    run(with(&[
        "activate",
        "--online",
        "--key",
        server.standalone_key(),
        "--edition",
        "professional",
    ]))
    .expect(0, "ACTIVATED: ");
    run(with(&["check"])).expect(0, "VALID: ");
    run(with(&["validate"])).expect(0, "VALID: ");

    // The same bundle changed by one byte: refused, exit 3, and the license stays intact.
    let mut bytes = std::fs::read(dir.join("gstarcad.licet-bundle")).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(dir.join("tampered.licet-bundle"), &bytes).unwrap();
    let tampered = licet(
        &server,
        &[
            "check",
            "--bundle",
            "tampered.licet-bundle",
            "--vendor-key",
            public,
            "--state-dir",
            "bundled",
        ],
    );
    assert_eq!(tampered.code, 3, "{tampered:#?}");
    assert!(
        tampered.stderr.contains("product bundle refused"),
        "{tampered:#?}"
    );
    run(with(&["check"])).expect(0, "VALID: ");

    run(with(&["return", "--online"])).expect(0, "RETURNED: ");
    run(with(&["check"])).expect(1, "NOT_ACTIVATED: ");
}

#[test]
fn a_bundled_transport_is_loaded_when_first_used_and_one_of_another_vendor_is_refused_then() {
    let server = DemoServer::start();
    let key = vendor_secret(&server);
    let plugins = server.dir.path().join("plugins");
    let url = format!("{}/v1/activate", server.url);
    let spec = BundleSpec {
        policy: server.policy.clone(),
        servers: vec![server.url.clone()],
        server_certificate: None,
        plugins: vec![
            (PluginRole::Fingerprint, fingerprint_plugin(&plugins, &key)),
            (PluginRole::Online, transport_plugin(&plugins, &key, &url)),
        ],
    };
    let bytes = build_bundle(&spec, &key).unwrap();
    let state = server.dir.path().join("bundled");
    let client = Client::open_bundle(&state, &bytes, &vendor_public(&server)).unwrap();
    client.check().unwrap();
    let opened = client.bundle().unwrap();
    let loaded = |opened: &licet_client::bundle::OpenedBundle| {
        let stats = opened.host.cache_stats().unwrap();
        stats.hits + stats.compiled
    };
    // Opening and the start-up check load the fingerprint plugin alone.
    assert_eq!(loaded(opened), 1);
    assert!(opened.has(PluginRole::Online));
    let online = opened.online().unwrap().unwrap();
    assert_eq!(online.manifest().name, "transport-http");
    assert_eq!(loaded(opened), 2);
    // Loaded once: asking again gives the same plugin.
    assert!(std::sync::Arc::ptr_eq(
        &online,
        &opened.online().unwrap().unwrap()
    ));
    assert_eq!(loaded(opened), 2);

    // Signed by the vendor, but its online plugin is another vendor's: the product opens and
    // checks, and the first online request is refused before anything is sent.
    let stranger = SigningKey::from_bytes(&[0x53; 32]);
    let foreign_dir = transport_plugin(&server.dir.path().join("foreign"), &stranger, &url);
    let mut contents = ProductBundle::verify(&bytes, &key.verifying_key()).unwrap();
    contents.plugins.insert(
        "transport-http".to_owned(),
        licet_engine::bundle::BundledPlugin {
            manifest: std::fs::read(foreign_dir.join("plugin.json")).unwrap(),
            manifest_signature: base64_signature(&foreign_dir),
            wasm: std::fs::read(foreign_dir.join("transport_http.wasm")).unwrap(),
        },
    );
    let file = contents.sign(&key).unwrap();
    let state = server.dir.path().join("foreign-online");
    let client = Client::open_bundle(&state, &file, &vendor_public(&server)).unwrap();
    client.check().unwrap();
    let opened = client.bundle().unwrap();
    let error = opened.online().unwrap_err();
    assert!(
        matches!(
            error,
            BundleOpenError::Plugin {
                role: PluginRole::Online,
                ..
            }
        ),
        "{error}"
    );
    let refused = opened
        .transport("gstarcad", Default::default())
        .err()
        .expect("a foreign online plugin was used");
    assert!(
        matches!(refused, licet_client::TransportError::Plugin(_)),
        "{refused}"
    );
    assert!(refused.to_string().contains("online plugin"), "{refused}");
}
