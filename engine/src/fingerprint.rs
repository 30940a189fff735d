//! Machine fingerprints and fuzzy (k of n) matching.
//!
//! A fingerprint is a set of named components (machine id, network adapters, CPU, disk serial),
//! each already hashed by the hardware check with a per-product salt. Two fingerprints match when
//! at least `match_at_least` of the policy's components are present in both and equal, so replacing
//! one part (a new Wi-Fi card, a docking station) does not break a license.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::policy::FingerprintPolicy;

/// A machine fingerprint: component name -> hashed value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fingerprint {
    /// Components by name.
    pub components: BTreeMap<String, String>,
}

impl Fingerprint {
    /// A fingerprint from `(name, value)` pairs.
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Fingerprint {
            components: pairs
                .into_iter()
                .map(|(name, value)| (name.into(), value.into()))
                .collect(),
        }
    }

    /// How many of the policy's components are present in both fingerprints and equal.
    pub fn matching_components(&self, other: &Fingerprint, policy: &FingerprintPolicy) -> usize {
        count_matching(&self.components, &other.components, policy)
    }

    /// Whether the two fingerprints identify the same machine under the policy.
    pub fn matches(&self, other: &Fingerprint, policy: &FingerprintPolicy) -> bool {
        components_match(&self.components, &other.components, policy)
    }
}

fn count_matching(
    mine: &BTreeMap<String, String>,
    theirs: &BTreeMap<String, String>,
    policy: &FingerprintPolicy,
) -> usize {
    policy
        .components
        .iter()
        .filter(|name| match (mine.get(*name), theirs.get(*name)) {
            (Some(mine), Some(theirs)) => mine == theirs,
            _ => false,
        })
        .count()
}

/// Whether two sets of fingerprint components identify the same machine under the policy.
pub fn components_match(
    mine: &BTreeMap<String, String>,
    theirs: &BTreeMap<String, String>,
    policy: &FingerprintPolicy,
) -> bool {
    count_matching(mine, theirs, policy) >= policy.match_at_least
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> FingerprintPolicy {
        FingerprintPolicy {
            components: ["machine-id", "mac", "cpu", "disk"]
                .map(String::from)
                .to_vec(),
            match_at_least: 3,
        }
    }

    #[test]
    fn one_changed_component_still_matches() {
        let office = Fingerprint::from_pairs([
            ("machine-id", "a"),
            ("mac", "b"),
            ("cpu", "c"),
            ("disk", "d"),
        ]);
        let new_nic = Fingerprint::from_pairs([
            ("machine-id", "a"),
            ("mac", "X"),
            ("cpu", "c"),
            ("disk", "d"),
        ]);
        assert!(office.matches(&new_nic, &policy()));
    }

    #[test]
    fn two_changed_components_do_not_match() {
        let office = Fingerprint::from_pairs([
            ("machine-id", "a"),
            ("mac", "b"),
            ("cpu", "c"),
            ("disk", "d"),
        ]);
        let other = Fingerprint::from_pairs([
            ("machine-id", "a"),
            ("mac", "X"),
            ("cpu", "Y"),
            ("disk", "d"),
        ]);
        assert!(!office.matches(&other, &policy()));
    }

    #[test]
    fn missing_components_and_unknown_names_do_not_count() {
        let office = Fingerprint::from_pairs([("machine-id", "a"), ("mac", "b"), ("cpu", "c")]);
        let sparse = Fingerprint::from_pairs([("machine-id", "a"), ("mac", "b"), ("gpu", "c")]);
        assert_eq!(office.matching_components(&sparse, &policy()), 2);
        assert!(!office.matches(&sparse, &policy()));
    }
}
