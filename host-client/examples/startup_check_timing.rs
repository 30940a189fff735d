//! Times the start-up check as a product sees it: a fresh `licet check` process per run, against
//! an installed activation of this machine, next to `licet --version` (the cost of starting the
//! process at all). Also times the check inside one process, with and without the state write.
//! Runs are bounded in count and time.
//!
//! ```sh
//! cargo build --release -p licet-client --bin licet
//! cargo run --release -p licet-client --example startup_check_timing -- target/release/licet 300
//! ```
//!
//! The bundled run builds the guest plugins once (the `test-support` feature of the plugin host).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration as Elapsed, Instant};

use chrono::{Duration, Utc};
use ed25519_dalek::SigningKey;
use licet_client::bundle::{build_bundle, BundleSpec};
use licet_client::keys::public_key_text;
use licet_client::{Client, MachineProbe, NativeProbe};
use licet_engine::bundle::PluginRole;
use licet_engine::certificate;
use licet_engine::policy::Method;
use licet_engine::state::{License, LicenseStatus, Term};
use licet_engine::{decide, Action, Actor, Policy, ProductRef, Request, State};
use licet_plugin_host::test_support::install_plugin;
use licet_plugin_host::{Allow, World};

/// At most this many runs, and at most this long in all.
const MAX_RUNS: usize = 2_000;
const MAX_TIME: Elapsed = Elapsed::from_secs(60);

fn main() {
    let mut args = std::env::args().skip(1);
    let licet = args
        .next()
        .expect("usage: startup_check_timing LICET_BINARY [RUNS]");
    let runs: usize = args
        .next()
        .map_or(200, |runs| runs.parse().expect("RUNS is a number"))
        .min(MAX_RUNS);
    let dir = tempfile::tempdir().unwrap();
    let (policy_path, key_path) = install(dir.path());
    let state_dir = dir.path().join("state");

    // The cost of starting any process of this binary, for comparison.
    let mut baseline = Vec::with_capacity(runs);
    let started = Instant::now();
    for _ in 0..runs {
        if started.elapsed() > MAX_TIME {
            break;
        }
        let begin = Instant::now();
        let status = Command::new(&licet)
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .unwrap();
        baseline.push(begin.elapsed());
        assert!(status.success());
    }
    report("fresh `licet --version` process (baseline)", &mut baseline);

    let check = || {
        Command::new(&licet)
            .arg("check")
            .arg("--state-dir")
            .arg(&state_dir)
            .arg("--policy")
            .arg(&policy_path)
            .arg("--vendor-key")
            .arg(&key_path)
            .stdout(Stdio::null())
            .status()
            .unwrap()
    };

    // Each run finds `last_seen` ten minutes old, so it also writes the state before exiting.
    let state_file = state_dir.join("gstarcad.state");
    let stale = fs::read(&state_file).unwrap();
    let mut writing = Vec::with_capacity(runs);
    let started = Instant::now();
    for _ in 0..runs {
        if started.elapsed() > MAX_TIME {
            break;
        }
        fs::write(&state_file, &stale).unwrap();
        let begin = Instant::now();
        let status = check();
        writing.push(begin.elapsed());
        assert!(status.success(), "licet check denied");
    }
    report(
        "fresh `licet check` process, writing the state",
        &mut writing,
    );

    let mut process = Vec::with_capacity(runs);
    let started = Instant::now();
    for _ in 0..runs {
        if started.elapsed() > MAX_TIME {
            break;
        }
        let begin = Instant::now();
        let status = Command::new(&licet)
            .arg("check")
            .arg("--state-dir")
            .arg(&state_dir)
            .arg("--policy")
            .arg(&policy_path)
            .arg("--vendor-key")
            .arg(&key_path)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        process.push(begin.elapsed());
        assert!(status.success(), "licet check denied");
    }
    report("fresh `licet check` process", &mut process);

    // The same check from a product bundle: the policy and the fingerprint plugin come from the
    // one signed file, the plugin compiled once and then loaded from the state's cache.
    let baseline_p50 = median(&mut baseline);
    let bundled_runs = |name: &str, transports: bool, what: &str| {
        let bundled_state = dir.path().join(name);
        let bundle = install_bundle(
            dir.path(),
            &policy_path,
            &bundled_state,
            &format!("{name}.licet-bundle"),
            transports,
        );
        let bundled_check = || {
            Command::new(&licet)
                .arg("check")
                .arg("--state-dir")
                .arg(&bundled_state)
                .arg("--bundle")
                .arg(&bundle)
                .arg("--vendor-key")
                .arg(&key_path)
                .stdout(Stdio::null())
                .status()
                .unwrap()
        };
        assert!(bundled_check().success(), "licet check --bundle denied");
        let mut bundled = Vec::with_capacity(runs);
        let started = Instant::now();
        for _ in 0..runs {
            if started.elapsed() > MAX_TIME {
                break;
            }
            let begin = Instant::now();
            let status = bundled_check();
            bundled.push(begin.elapsed());
            assert!(status.success(), "licet check --bundle denied");
        }
        report(what, &mut bundled);
        println!(
            "{name} check / --version at the median: {:.2}x",
            median(&mut bundled).as_secs_f64() / baseline_p50.as_secs_f64()
        );
        (bundled_state, bundle)
    };
    let (bundled_state, bundle) = bundled_runs(
        "bundled",
        false,
        "fresh `licet check --bundle` process (fingerprint plugin)",
    );
    // A product's whole bundle: the fingerprint plugin and the transports of online requests and
    // of request files, which the start-up check does not load.
    bundled_runs(
        "full",
        true,
        "fresh `licet check --bundle` process (fingerprint, online and files plugins)",
    );

    // The in-process runs move the clock hours ahead: their machine ledger stays in the
    // temporary directory, so later runs of this example on the machine are not refused as a
    // clock set back.
    let in_process_machine = dir.path().join("machine");
    fs::create_dir_all(&in_process_machine).unwrap();
    let mut open_and_check = Vec::with_capacity(runs);
    let now = Utc::now();
    for _ in 0..runs {
        let begin = Instant::now();
        let client = Client::open(&state_dir, &policy_path, &key_path)
            .unwrap()
            .with_machine_dir(Some(&in_process_machine));
        assert!(client.check_at(now).unwrap().decision.is_allowed());
        open_and_check.push(begin.elapsed());
    }
    report(
        "in process: open (policy, key) + check",
        &mut open_and_check,
    );

    // The bundled open in process: the bundle's signature, the policy, a plugin host with its
    // engine and the fingerprint plugin from the compiled cache, then the check.
    let bundle_bytes = fs::read(&bundle).unwrap();
    let vendor_key = vendor().verifying_key().to_bytes();
    let mut bundled_open = Vec::with_capacity(runs);
    for _ in 0..runs {
        let begin = Instant::now();
        let client = Client::open_bundle(&bundled_state, &bundle_bytes, &vendor_key)
            .unwrap()
            .with_machine_dir(Some(&in_process_machine));
        assert!(client.check_at(now).unwrap().decision.is_allowed());
        bundled_open.push(begin.elapsed());
    }
    report(
        "in process: open the bundle (fingerprint plugin) + check",
        &mut bundled_open,
    );

    let client = Client::open(&state_dir, &policy_path, &key_path)
        .unwrap()
        .with_machine_dir(Some(&in_process_machine));
    let mut check_only = Vec::with_capacity(runs);
    for _ in 0..runs {
        let begin = Instant::now();
        assert!(client.check_at(now).unwrap().decision.is_allowed());
        check_only.push(begin.elapsed());
    }
    report("in process: check, state unchanged", &mut check_only);

    let mut decided = Vec::with_capacity(runs);
    let mut written = Vec::with_capacity(runs);
    for run in 0..runs {
        // Two minutes later each time, so every check moves `last_seen` and writes the state.
        let later = now + Duration::minutes(2 * (run as i64 + 1));
        let begin = Instant::now();
        assert!(client.check_at(later).unwrap().decision.is_allowed());
        decided.push(begin.elapsed());
        client.flush().unwrap();
        written.push(begin.elapsed());
    }
    report(
        "in process: check moving last_seen, until decided",
        &mut decided,
    );
    report(
        "in process: check moving last_seen, until written (fsync)",
        &mut written,
    );
}

fn report(what: &str, samples: &mut [Elapsed]) {
    samples.sort();
    let count = samples.len();
    let mean = samples.iter().sum::<Elapsed>() / u32::try_from(count).unwrap();
    let at = |fraction: f64| samples[((count as f64 * fraction) as usize).min(count - 1)];
    println!(
        "{what}: n={count} mean={:.2} ms p50={:.2} ms p95={:.2} ms max={:.2} ms",
        ms(mean),
        ms(at(0.5)),
        ms(at(0.95)),
        ms(samples[count - 1])
    );
}

fn median(samples: &mut [Elapsed]) -> Elapsed {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(elapsed: Elapsed) -> f64 {
    elapsed.as_secs_f64() * 1e3
}

/// Writes the GstarCAD policy and a vendor key, and installs an activation of this machine.
fn install(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let source = fs::read_to_string(root.join("policies/gstarcad.yaml")).unwrap();
    let machine = NativeProbe::for_product("gstarcad").fingerprint().unwrap();
    let present = ["machine-id", "mac", "cpu", "disk"]
        .iter()
        .filter(|name| machine.components.contains_key(**name))
        .count();
    let source = source.replace(
        "match_at_least: 3",
        &format!("match_at_least: {}", present.clamp(1, 3)),
    );
    let policy_path = dir.join("gstarcad.yaml");
    fs::write(&policy_path, &source).unwrap();
    let policy = Policy::from_yaml("gstarcad.yaml", &source).unwrap();
    let vendor = vendor();
    let key_path = dir.join("vendor.pub");
    fs::write(&key_path, public_key_text(&vendor.verifying_key())).unwrap();
    let now = Utc::now();
    let armored = certify(&policy, machine, now);
    let client = Client::open(&dir.join("state"), &policy_path, &key_path).unwrap();
    // Installed ten minutes ago: the next check moves `last_seen` and writes the state.
    client
        .install_certificate(&armored, now - Duration::minutes(10))
        .unwrap();
    (policy_path, key_path)
}

/// The vendor key of the timing runs.
fn vendor() -> SigningKey {
    SigningKey::from_bytes(&[5; 32])
}

/// A vendor-signed activation certificate of `machine` under `policy`.
fn certify(
    policy: &Policy,
    machine: licet_engine::Fingerprint,
    now: chrono::DateTime<Utc>,
) -> String {
    let license = License {
        key: "GSTAR-TIMING".into(),
        product: "gstarcad".into(),
        license_type: "standalone-key".into(),
        edition: "professional".into(),
        version: "2027".into(),
        term: Term::Perpetual,
        seats: None,
        features: Default::default(),
        counters: Default::default(),
        status: LicenseStatus::Enabled,
        dongle: None,
        client: None,
        limited: None,
    };
    let request = Request {
        actor: Actor::EndUser,
        action: Action::Activate {
            key: license.key.clone(),
            target: ProductRef {
                product: "gstarcad".into(),
                edition: "professional".into(),
                version: "2027".into(),
            },
            machine,
            method: Method::Online,
        },
    };
    let state = State {
        license: Some(license),
        ..State::default()
    };
    let claims = decide(policy, &state, &request, now)
        .certificate()
        .expect("activation allowed")
        .clone();
    certificate::issue(claims, &vendor()).to_armored()
}

/// Builds the product bundle of `policy_path` with the fingerprint plugin (built and signed with
/// the timing vendor key) and installs an activation of this machine, as the plugin sees it, in
/// `state_dir`. Returns the bundle file.
fn install_bundle(
    dir: &Path,
    policy_path: &Path,
    state_dir: &Path,
    name: &str,
    transports: bool,
) -> std::path::PathBuf {
    let plugin = install_plugin(
        dir,
        "fingerprint",
        World::HardwareCheck,
        &[("components", "machine-id,mac,cpu,disk")],
        Allow::default(),
        &vendor(),
    )
    .unwrap();
    let mut plugins = vec![(PluginRole::Fingerprint, plugin)];
    if transports {
        let url = "http://127.0.0.1:9";
        let allow = Allow {
            urls: vec![url.to_owned()],
            hid: Vec::new(),
        };
        let online = install_plugin(
            dir,
            "transport-http",
            World::Transport,
            &[("server-url", url)],
            allow,
            &vendor(),
        )
        .unwrap();
        let files = install_plugin(
            dir,
            "transport-file",
            World::Transport,
            &[],
            Allow::default(),
            &vendor(),
        )
        .unwrap();
        plugins.push((PluginRole::Online, online));
        plugins.push((PluginRole::Files, files));
    }
    let spec = BundleSpec {
        policy: policy_path.to_path_buf(),
        servers: vec!["127.0.0.1:9".to_owned()],
        server_certificate: None,
        plugins,
    };
    let bytes = build_bundle(&spec, &vendor()).unwrap();
    let bundle_path = dir.join(name);
    fs::write(&bundle_path, &bytes).unwrap();
    let client =
        Client::open_bundle(state_dir, &bytes, &vendor().verifying_key().to_bytes()).unwrap();
    let source = fs::read_to_string(policy_path).unwrap();
    let policy = Policy::from_yaml("gstarcad.yaml", &source).unwrap();
    let armored = certify(&policy, client.fingerprint().unwrap(), Utc::now());
    client.install_certificate(&armored, Utc::now()).unwrap();
    bundle_path
}
