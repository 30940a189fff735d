//! Plugin calls beside the native code doing the same, in the same run: a trivial export (the
//! HTTP transport decoding an empty answer), the fingerprint plugin's real work, and loading a
//! plugin with and without the compiled-module cache.
//!
//! Each call is measured on a warm instance (the call alone) and in a fresh instance (what every
//! call of `TransportPlugin::decode` or `HardwareCheckPlugin::fingerprint` costs: a new store,
//! instantiation from the cached `InstancePre`, the call). "Refused" calls the fingerprint plugin
//! with the same readings and a salt it refuses at once: the cost of passing the arguments in
//! and an answer out, without the plugin's own work.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};
use licet_engine::Fingerprint;
use licet_plugin_host::test_support::{guests_target_dir, install_plugin, test_key};
use licet_plugin_host::{Allow, PluginHost, Reading, Slot, WireReply, World, FINGERPRINT_PLUGIN};
use sha2::{Digest, Sha256};

const SALT: &[u8] = b"gstarcad-2026 product salt";

fn readings() -> Vec<Reading> {
    vec![
        Reading::new(
            "machine-id",
            "/etc/machine-id",
            "0123456789abcdef0123456789abcdef\n",
        ),
        Reading::new(
            "mac",
            "/sys/class/net/docker0/address",
            "02:42:ac:11:00:01\n",
        ),
        Reading::new("mac", "/sys/class/net/eth0/address", "00:1b:21:0a:0b:0c\n"),
        Reading::new("mac", "/sys/class/net/wlan0/address", "f0:de:f1:00:00:02\n"),
        Reading::new(
            "cpu",
            "/proc/cpuinfo",
            "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 142\n\
             model name\t: Intel(R) Core(TM) i7-8650U CPU @ 1.90GHz\nstepping\t: 10\n",
        ),
        Reading::new(
            "disk",
            "/sys/block/nvme0n1/device/serial",
            "  S3EWNX0K123456  \n",
        ),
    ]
}

/// The plugin's logic, natively: the same normalization rules and the same hash (`sha2`, which
/// uses the CPU's SHA-256 instructions where it has them).
mod native {
    use super::*;

    fn machine_id(value: &str) -> Option<String> {
        let id = value.trim().to_ascii_lowercase();
        (id.len() == 32
            && id.bytes().all(|byte| byte.is_ascii_hexdigit())
            && id.bytes().any(|byte| byte != b'0'))
        .then_some(id)
    }

    fn mac(value: &str) -> Option<String> {
        let digits: String = value
            .trim()
            .chars()
            .filter(|c| !matches!(c, ':' | '-' | '.'))
            .map(|c| c.to_ascii_lowercase())
            .collect();
        if digits.len() != 12 || !digits.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return None;
        }
        let first = u8::from_str_radix(&digits[..2], 16).ok()?;
        (first & 0x03 == 0 && digits != "000000000000").then_some(digits)
    }

    fn cpu(value: &str) -> Option<String> {
        let field = |name: &str| {
            value.lines().find_map(|line| {
                let (key, rest) = line.split_once(':')?;
                (key.trim() == name).then(|| rest.split_whitespace().collect::<Vec<_>>().join(" "))
            })
        };
        let identity = [
            field("vendor_id").unwrap_or_default(),
            field("model name").unwrap_or_default(),
        ]
        .into_iter()
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
        (!identity.is_empty()).then_some(identity)
    }

    fn disk(value: &str) -> Option<String> {
        let serial = value.trim().to_ascii_uppercase();
        (!serial.is_empty() && serial.bytes().any(|byte| byte != b'0')).then_some(serial)
    }

    fn hex(bytes: &[u8]) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut text = String::with_capacity(bytes.len() * 2);
        for byte in bytes {
            text.push(char::from(DIGITS[usize::from(byte >> 4)]));
            text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
        }
        text
    }

    type Normalize = fn(&str) -> Option<String>;

    pub fn fingerprint(salt: &[u8], readings: &[Reading]) -> Fingerprint {
        let rules: [(&str, Normalize); 4] = [
            ("machine-id", machine_id),
            ("mac", mac),
            ("cpu", cpu),
            ("disk", disk),
        ];
        Fingerprint::from_pairs(rules.iter().filter_map(|(name, normalize)| {
            let value = readings
                .iter()
                .filter(|reading| reading.kind == *name)
                .filter_map(|reading| normalize(&reading.value))
                .min()?;
            let digest = Sha256::new()
                .chain_update(salt)
                .chain_update([0])
                .chain_update(name.as_bytes())
                .chain_update([0])
                .chain_update(value.as_bytes())
                .finalize();
            Some((name.to_string(), hex(&digest)))
        }))
    }
}

fn fail(message: String) -> ! {
    eprintln!("{message}");
    std::process::exit(1)
}

fn or_fail<T, E: std::fmt::Display>(result: Result<T, E>) -> T {
    result.unwrap_or_else(|error| fail(error.to_string()))
}

/// What `transport-http` does with an answer, natively.
fn native_decode(reply: &WireReply) -> Result<Vec<u8>, String> {
    match reply.status {
        200 => Ok(reply.body.clone()),
        status => Err(format!("the server answered {status}")),
    }
}

fn benches(c: &mut Criterion) {
    let plugins: PathBuf = guests_target_dir().join("bench-plugins");
    let fingerprint_dir = or_fail(install_plugin(
        &plugins,
        "fingerprint",
        World::HardwareCheck,
        &[],
        Allow::default(),
        &test_key(),
    ));
    let url = "http://127.0.0.1:8440/v1/activate";
    let http_dir = or_fail(install_plugin(
        &plugins,
        "transport-http",
        World::Transport,
        &[("server-url", url)],
        Allow {
            urls: vec![url.to_string()],
            hid: Vec::new(),
        },
        &test_key(),
    ));
    let host = or_fail(PluginHost::new(test_key().verifying_key()));

    // A trivial export: decoding an empty 200 answer.
    let http = or_fail(host.load_transport(&http_dir));
    let reply = WireReply {
        status: 200,
        body: Vec::new(),
    };
    if or_fail(http.decode(&reply)) != or_fail(native_decode(&reply)) {
        fail("the transport plugin and the native code disagree".to_string());
    }
    let mut warm_http = or_fail(http.warm_instance());
    let mut group = c.benchmark_group("trivial-export");
    group.bench_function("native", |b| b.iter(|| native_decode(black_box(&reply))));
    group.bench_function("plugin-warm", |b| {
        b.iter(|| warm_http.decode(black_box(&reply)))
    });
    group.bench_function("plugin-fresh", |b| {
        b.iter(|| http.decode(black_box(&reply)))
    });
    group.finish();
    drop(warm_http);

    // The fingerprint's real work.
    let check = or_fail(host.load_hardware_check(&fingerprint_dir, FINGERPRINT_PLUGIN));
    let readings = readings();
    let from_plugin = or_fail(check.fingerprint(SALT, &readings));
    if from_plugin != native::fingerprint(SALT, &readings) || from_plugin.components.len() != 4 {
        fail("the fingerprint plugin and the native code disagree".to_string());
    }
    let mut warm = or_fail(check.warm_instance());
    if warm.fingerprint(b"short", &readings).is_ok() {
        fail("the fingerprint plugin takes a short salt".to_string());
    }
    let mut group = c.benchmark_group("fingerprint");
    group.bench_function("native", |b| {
        b.iter(|| native::fingerprint(black_box(SALT), black_box(&readings)))
    });
    group.bench_function("plugin-warm", |b| {
        b.iter(|| warm.fingerprint(black_box(SALT), black_box(&readings)))
    });
    group.bench_function("plugin-warm-refused", |b| {
        b.iter(|| warm.fingerprint(black_box(b"short"), black_box(&readings)))
    });
    group.bench_function("plugin-fresh", |b| {
        b.iter(|| check.fingerprint(black_box(SALT), black_box(&readings)))
    });
    group.finish();
    drop(warm);

    // Loading the fingerprint plugin: compiling it, or from the compiled-module cache.
    let cache = guests_target_dir().join("bench-cache");
    let cached = or_fail(
        PluginHost::builder(test_key().verifying_key())
            .compiled_cache(&cache)
            .build(),
    );
    or_fail(cached.load(&fingerprint_dir, Slot::FINGERPRINT));
    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    group.bench_function("compile", |b| {
        b.iter(|| or_fail(host.load(&fingerprint_dir, Slot::FINGERPRINT)))
    });
    group.bench_function("from-cache", |b| {
        b.iter(|| or_fail(cached.load(&fingerprint_dir, Slot::FINGERPRINT)))
    });
    group.finish();
    let stats = cached.cache_stats().unwrap_or_default();
    if stats.compiled > 1 || stats.rejected > 0 {
        fail(format!("the cache was not used: {stats:?}"));
    }
}

criterion_group!(plugin_benches, benches);
criterion_main!(plugin_benches);
