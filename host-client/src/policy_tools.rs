//! `licet policy check` and `licet policy test`: validating policies and running their scenarios.
//!
//! Policy files are `*.yaml` (or `*.yml`); scenario files end in `.scenario.yaml` and name their
//! policy relative to themselves. Testing a directory checks every policy in it and runs every
//! scenario, recursively.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use licet_engine::policy::{Policy, PolicyError};
use licet_engine::scenario::{self, ScenarioError, ScenarioReport};

/// Why a policy or scenario could not be checked or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ToolError {
    /// A file or directory could not be read.
    #[error("`{path}`")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A policy was rejected.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// A scenario is malformed.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// A scenario's policy was rejected.
    #[error("scenario `{scenario}` uses a policy that was rejected:\n{error}")]
    ScenarioPolicy {
        /// The scenario file.
        scenario: PathBuf,
        /// The policy's problems.
        error: PolicyError,
    },
    /// The path holds no policy or scenario.
    #[error("`{0}` holds no policy or scenario files")]
    NothingToTest(PathBuf),
}

fn read(path: &Path) -> Result<String, ToolError> {
    fs::read_to_string(path).map_err(|source| ToolError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Loads and checks one policy file.
pub fn check_policy(path: &Path) -> Result<Policy, ToolError> {
    let source = read(path)?;
    Ok(Policy::from_yaml(&path.display().to_string(), &source)?)
}

/// Whether a file is a scenario file.
pub fn is_scenario(path: &Path) -> bool {
    path.file_name()
        .and_then(|name| name.to_str())
        .is_some_and(|name| name.ends_with(".scenario.yaml") || name.ends_with(".scenario.yml"))
}

fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|ext| ext.to_str()),
        Some("yaml" | "yml")
    )
}

/// The outcome of checking one policy.
#[derive(Debug)]
pub struct PolicyOutcome {
    /// The file.
    pub path: PathBuf,
    /// The policy, or why it was rejected.
    pub result: Result<Policy, ToolError>,
}

/// The outcome of running one scenario.
#[derive(Debug)]
pub struct ScenarioOutcome {
    /// The file.
    pub path: PathBuf,
    /// What the scenario says it shows.
    pub description: Option<String>,
    /// The report, or why the scenario could not run.
    pub result: Result<ScenarioReport, ToolError>,
}

/// Everything `licet policy test` found and ran.
#[derive(Debug, Default)]
pub struct TestRun {
    /// Checked policies.
    pub policies: Vec<PolicyOutcome>,
    /// Scenario runs.
    pub scenarios: Vec<ScenarioOutcome>,
}

impl TestRun {
    /// Passed and failed counts: a policy passes when it loads, a scenario when every step passes.
    pub fn counts(&self) -> (usize, usize) {
        let policies_ok = self.policies.iter().filter(|p| p.result.is_ok()).count();
        let scenarios_ok = self
            .scenarios
            .iter()
            .filter(|s| s.result.as_ref().is_ok_and(ScenarioReport::passed))
            .count();
        let passed = policies_ok + scenarios_ok;
        (passed, self.policies.len() + self.scenarios.len() - passed)
    }

    /// Whether everything passed.
    pub fn passed(&self) -> bool {
        self.counts().1 == 0
    }
}

fn collect(path: &Path, files: &mut Vec<PathBuf>) -> Result<(), ToolError> {
    let io = |source| ToolError::Io {
        path: path.to_path_buf(),
        source,
    };
    if path.is_file() {
        files.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = fs::read_dir(path)
        .map_err(io)?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()
        .map_err(io)?;
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            collect(&entry, files)?;
        } else if is_yaml(&entry) {
            files.push(entry);
        }
    }
    Ok(())
}

/// Checks every policy and runs every scenario under `path` (a file or a directory).
pub fn test_path(path: &Path) -> Result<TestRun, ToolError> {
    let mut files = Vec::new();
    collect(path, &mut files)?;
    if files.is_empty() {
        return Err(ToolError::NothingToTest(path.to_path_buf()));
    }
    let mut run = TestRun::default();
    let mut loaded: BTreeMap<PathBuf, Result<Policy, PolicyError>> = BTreeMap::new();
    for file in files.iter().filter(|file| !is_scenario(file)) {
        let result = check_policy(file);
        if let Ok(canonical) = file.canonicalize() {
            if let Err(ToolError::Policy(error)) = &result {
                loaded.insert(canonical.clone(), Err(error.clone()));
            }
        }
        run.policies.push(PolicyOutcome {
            path: file.clone(),
            result,
        });
    }
    for file in files.iter().filter(|file| is_scenario(file)) {
        let (description, result) = run_scenario(file, &mut loaded);
        run.scenarios.push(ScenarioOutcome {
            path: file.clone(),
            description,
            result,
        });
    }
    Ok(run)
}

fn run_scenario(
    file: &Path,
    loaded: &mut BTreeMap<PathBuf, Result<Policy, PolicyError>>,
) -> (Option<String>, Result<ScenarioReport, ToolError>) {
    let parsed =
        read(file).and_then(|source| Ok(scenario::parse(&file.display().to_string(), &source)?));
    let scenario = match parsed {
        Ok(scenario) => scenario,
        Err(error) => return (None, Err(error)),
    };
    let description = scenario.description.clone();
    let policy_path = file
        .parent()
        .unwrap_or(Path::new("."))
        .join(&scenario.policy);
    let key = policy_path
        .canonicalize()
        .unwrap_or_else(|_| policy_path.clone());
    if !loaded.contains_key(&key) {
        let result = match check_policy(&policy_path) {
            Ok(policy) => Ok(policy),
            Err(ToolError::Policy(error)) => Err(error),
            Err(other) => return (description, Err(other)),
        };
        loaded.insert(key.clone(), result);
    }
    let result = match loaded.get(&key) {
        Some(Ok(policy)) => scenario::run(policy, &scenario).map_err(ToolError::from),
        Some(Err(error)) => Err(ToolError::ScenarioPolicy {
            scenario: file.to_path_buf(),
            error: error.clone(),
        }),
        None => Err(ToolError::NothingToTest(policy_path)),
    };
    (description, result)
}
