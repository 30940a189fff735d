//! The license server's files: `server-licenses/<KEY>.lic` (armored server licenses),
//! `server-licenses/<KEY>.withdrawn` (why a key stopped being served) and `exchange-state.json`
//! (request files written and not answered yet). Every write is atomic: a temporary file in the
//! same directory, synced, then renamed over the old one.

use licet_engine::report::Report as _;
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use licet_engine::exchange::ExchangeState;

use super::{LicenseServerError, Refusal};

/// The largest file read (server licenses are a few kilobytes).
const MAX_FILE: u64 = 256 * 1024;
const LICENSE_SUFFIX: &str = ".lic";
const WITHDRAWN_SUFFIX: &str = ".withdrawn";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LicenseServerError + '_ {
    move |source| LicenseServerError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The directory of the server licenses.
pub(super) fn licenses_dir(dir: &Path) -> PathBuf {
    dir.join("server-licenses")
}

/// A license key usable as a file name: letters, digits, `-`, `_`, `.`, not starting with `.`.
fn check_key(key: &str) -> Result<(), LicenseServerError> {
    let valid = !key.is_empty()
        && key.len() <= 128
        && !key.starts_with('.')
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(())
    } else {
        Err(LicenseServerError::Invalid(format!(
            "license key `{key}` cannot name a file (letters, digits, `-`, `_` and `.` only)"
        )))
    }
}

fn read_small(path: &Path) -> Result<String, LicenseServerError> {
    let size = fs::metadata(path).map_err(io(path))?.len();
    if size > MAX_FILE {
        return Err(LicenseServerError::Invalid(format!(
            "`{}` is larger than {MAX_FILE} bytes",
            path.display()
        )));
    }
    fs::read_to_string(path).map_err(io(path))
}

/// Files of the licenses directory ending with `suffix`, by key.
fn files_with(dir: &Path, suffix: &str) -> Result<BTreeMap<String, PathBuf>, LicenseServerError> {
    let dir = licenses_dir(dir);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(error) => return Err(io(&dir)(error)),
    };
    let mut found = BTreeMap::new();
    for entry in entries {
        let entry = entry.map_err(io(&dir))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if let Some(key) = name.strip_suffix(suffix) {
            if check_key(key).is_ok() {
                found.insert(key.to_owned(), entry.path());
            }
        }
    }
    Ok(found)
}

/// The stored server licenses' texts, by key.
pub(super) fn read_server_licenses(
    dir: &Path,
) -> Result<BTreeMap<String, String>, LicenseServerError> {
    files_with(dir, LICENSE_SUFFIX)?
        .into_iter()
        .map(|(key, path)| Ok((key, read_small(&path)?)))
        .collect()
}

/// Why withdrawn keys are not served, by key.
pub(super) fn read_withdrawn(dir: &Path) -> Result<BTreeMap<String, Refusal>, LicenseServerError> {
    let mut withdrawn = BTreeMap::new();
    for (key, path) in files_with(dir, WITHDRAWN_SUFFIX)? {
        let text = read_small(&path)?;
        let refusal: Refusal = serde_json::from_str(&text).map_err(|error| {
            LicenseServerError::Invalid(format!("`{}` is not valid: {error}", path.display()))
        })?;
        withdrawn.insert(key, refusal);
    }
    Ok(withdrawn)
}

/// Writes `bytes` to `path` atomically.
pub(super) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), LicenseServerError> {
    let parent = path.parent().unwrap_or_else(|| Path::new("."));
    fs::create_dir_all(parent).map_err(io(parent))?;
    let file_name = path
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or("file");
    let temporary = parent.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temporary, path)?;
        #[cfg(unix)]
        fs::File::open(parent)?.sync_all()?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result.map_err(io(path))
}

fn remove_if_present(path: &Path) -> Result<(), LicenseServerError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(io(path)(error)),
    }
}

fn key_path(dir: &Path, key: &str, suffix: &str) -> Result<PathBuf, LicenseServerError> {
    check_key(key)?;
    Ok(licenses_dir(dir).join(format!("{key}{suffix}")))
}

/// Stores the server license of `key`.
pub(super) fn write_server_license(
    dir: &Path,
    key: &str,
    text: &str,
) -> Result<(), LicenseServerError> {
    write_atomic(&key_path(dir, key, LICENSE_SUFFIX)?, text.as_bytes())
}

/// Deletes the server license of `key`, if stored.
pub(super) fn remove_server_license(dir: &Path, key: &str) -> Result<(), LicenseServerError> {
    remove_if_present(&key_path(dir, key, LICENSE_SUFFIX)?)
}

/// Remembers why `key` is no longer served.
pub(super) fn write_withdrawn(
    dir: &Path,
    key: &str,
    refusal: &Refusal,
) -> Result<(), LicenseServerError> {
    let text = serde_json::to_string_pretty(refusal)
        .map_err(|error| LicenseServerError::Invalid(error.report()))?;
    write_atomic(&key_path(dir, key, WITHDRAWN_SUFFIX)?, text.as_bytes())
}

/// Forgets why `key` was withdrawn.
pub(super) fn remove_withdrawn(dir: &Path, key: &str) -> Result<(), LicenseServerError> {
    remove_if_present(&key_path(dir, key, WITHDRAWN_SUFFIX)?)
}

fn exchange_state_path(dir: &Path) -> PathBuf {
    dir.join("exchange-state.json")
}

/// The request files written and not answered yet (empty when none was ever written).
pub(super) fn read_exchange_state(dir: &Path) -> Result<ExchangeState, LicenseServerError> {
    let path = exchange_state_path(dir);
    if !path.exists() {
        return Ok(ExchangeState::new());
    }
    let text = read_small(&path)?;
    serde_json::from_str(&text).map_err(|error| {
        LicenseServerError::Invalid(format!("`{}` is not valid: {error}", path.display()))
    })
}

/// Stores the exchange state.
pub(super) fn write_exchange_state(
    dir: &Path,
    state: &ExchangeState,
) -> Result<(), LicenseServerError> {
    let text = serde_json::to_string_pretty(state)
        .map_err(|error| LicenseServerError::Invalid(error.report()))?;
    write_atomic(&exchange_state_path(dir), text.as_bytes())
}
