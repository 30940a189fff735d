//! The compiled-module cache: a cold load writes an entry, a warm load uses it, and an entry that
//! does not verify, or belongs to other engine settings or another cache, is never used.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use licet_plugin_host::test_support::test_key;
use licet_plugin_host::{CacheStats, Limits, PluginError, PluginHost, Slot, World};

use crate::support::{plugin, urls};

const SALT: &[u8] = b"gstarcad-2026 product salt";

fn cached_host(cache: &Path, limits: Limits) -> PluginHost {
    PluginHost::builder(test_key().verifying_key())
        .limits(limits)
        .compiled_cache(cache)
        .build()
        .unwrap()
}

fn fingerprint_plugin(dir: &tempfile::TempDir) -> PathBuf {
    plugin(
        dir,
        "fingerprint",
        World::HardwareCheck,
        &[],
        Default::default(),
    )
}

/// Loads the fingerprint plugin in a new host on `cache`, checks that it works and returns the
/// host's cache counters, the entry's path and how long the load took.
fn load(cache: &Path, plugin_dir: &Path, limits: Limits) -> (CacheStats, PathBuf, Duration) {
    let host = cached_host(cache, limits);
    let started = Instant::now();
    let check = host.load_hardware_check(plugin_dir, "fingerprint").unwrap();
    let took = started.elapsed();
    let readings = [licet_plugin_host::Reading::new(
        "machine-id",
        "/etc/machine-id",
        "0123456789abcdef0123456789abcdef",
    )];
    assert_eq!(
        check.fingerprint(SALT, &readings).unwrap().components.len(),
        1
    );
    let entry = host.cache_entry(&check.manifest().wasm_sha256).unwrap();
    (host.cache_stats().unwrap(), entry, took)
}

fn stats(hits: u64, compiled: u64, rejected: u64, written: u64) -> CacheStats {
    CacheStats {
        hits,
        compiled,
        rejected,
        written,
        write_failures: 0,
    }
}

#[test]
fn a_cold_load_writes_the_entry_and_a_warm_load_uses_it() {
    let dir = tempfile::tempdir().unwrap();
    let plugin_dir = fingerprint_plugin(&dir);
    let cache = dir.path().join("cache");
    let (cold, entry, compiling) = load(&cache, &plugin_dir, Limits::default());
    assert_eq!(cold, stats(0, 1, 0, 1));
    assert!(entry.is_file(), "{}", entry.display());
    let (warm, same_entry, loading) = load(&cache, &plugin_dir, Limits::default());
    assert_eq!(warm, stats(1, 0, 0, 0));
    assert_eq!(same_entry, entry);
    // Loading a compiled component is far cheaper than compiling it.
    assert!(loading < compiling, "{loading:?} vs {compiling:?}");
    // No temporary file is left behind.
    let names: Vec<String> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn a_tampered_or_truncated_entry_is_ignored_and_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let plugin_dir = fingerprint_plugin(&dir);
    let cache = dir.path().join("cache");
    let (_, entry, _) = load(&cache, &plugin_dir, Limits::default());
    let original = std::fs::read(&entry).unwrap();

    let mut tampered = original.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x40;
    let truncated = original[..original.len() / 2].to_vec();
    for (what, damaged) in [
        ("tampered", tampered),
        ("truncated", truncated),
        ("empty", Vec::new()),
    ] {
        std::fs::write(&entry, &damaged).unwrap();
        let (damaged_load, _, _) = load(&cache, &plugin_dir, Limits::default());
        assert_eq!(damaged_load, stats(0, 1, 1, 1), "{what}");
        assert_eq!(
            std::fs::read(&entry).unwrap().len(),
            original.len(),
            "{what}"
        );
        let (replaced, _, _) = load(&cache, &plugin_dir, Limits::default());
        assert_eq!(replaced, stats(1, 0, 0, 0), "{what}");
    }
}

#[test]
fn an_entry_for_other_engine_settings_or_another_cache_is_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let plugin_dir = fingerprint_plugin(&dir);
    let cache = dir.path().join("cache");
    let (_, entry, _) = load(&cache, &plugin_dir, Limits::default());

    // Other engine settings look for another entry, and compile.
    let other = Limits {
        max_wasm_stack: 512 << 10,
        ..Limits::default()
    };
    let (other_load, other_entry, _) = load(&cache, &plugin_dir, other);
    assert_eq!(other_load, stats(0, 1, 0, 1));
    assert_ne!(other_entry, entry);
    // Given the default engine's entry under their own name, they refuse it.
    std::fs::copy(&entry, &other_entry).unwrap();
    let (refused, _, _) = load(&cache, &plugin_dir, other);
    assert_eq!(refused, stats(0, 1, 1, 1));
    let (reused, _, _) = load(&cache, &plugin_dir, other);
    assert_eq!(reused, stats(1, 0, 0, 0));

    // An entry of another cache directory (another key) is refused too.
    let elsewhere = dir.path().join("elsewhere");
    let (_, elsewhere_entry, _) = load(&elsewhere, &plugin_dir, Limits::default());
    assert_eq!(
        elsewhere_entry.file_name(),
        entry.file_name(),
        "the same component and engine"
    );
    std::fs::copy(&entry, &elsewhere_entry).unwrap();
    let (foreign, _, _) = load(&elsewhere, &plugin_dir, Limits::default());
    assert_eq!(foreign, stats(0, 1, 1, 1));
}

#[test]
fn a_cached_component_is_still_checked_for_its_imports() {
    let dir = tempfile::tempdir().unwrap();
    let plugin_dir = plugin(&dir, "hostile-wasi", World::Transport, &[], urls(&[]));
    let cache = dir.path().join("cache");
    for expected in [stats(0, 1, 0, 1), stats(1, 0, 0, 0)] {
        let host = cached_host(&cache, Limits::default());
        let error = host.load(&plugin_dir, Slot::TRANSPORT).unwrap_err();
        assert!(
            matches!(&error, PluginError::ForbiddenImport { import, .. } if import.starts_with("wasi:")),
            "{error}"
        );
        assert_eq!(host.cache_stats().unwrap(), expected);
    }
}

#[test]
fn a_host_without_a_cache_has_no_counters() {
    let host = PluginHost::new(test_key().verifying_key()).unwrap();
    assert_eq!(host.cache_stats(), None);
    assert_eq!(host.cache_entry(&"0".repeat(64)), None);
}
