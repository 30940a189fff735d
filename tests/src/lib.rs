//! Shared helpers for Licet's cross-crate tests: where the repository's policies and test corpora are.

#![deny(missing_docs)]

use std::path::{Path, PathBuf};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// The example policies shipped with Licet.
pub fn policies_dir() -> PathBuf {
    repo_root().join("policies")
}

/// Scenario files that are meant to fail, proving the scenario runner catches wrong expectations.
pub fn failing_corpus_dir() -> PathBuf {
    repo_root().join("tests").join("corpus")
}

/// Every `*.scenario.yaml` file directly under `dir`, sorted.
pub fn scenario_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.to_string_lossy().ends_with(".scenario.yaml"))
        .collect();
    files.sort();
    Ok(files)
}
