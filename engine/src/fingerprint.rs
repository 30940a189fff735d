//! Machine fingerprints and fuzzy (k of n) matching.
//!
//! A fingerprint is a set of named components (machine id, network adapters, CPU, disk serial),
//! each already hashed by the hardware check with a per-product salt. Two fingerprints match when
//! at least `match_at_least` of the policy's components are present in both and equal, so replacing
//! one part (a new Wi-Fi card, a docking station) does not break a license.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::policy::FingerprintPolicy;

/// The salt a product's fingerprint component values are hashed with by the native machine probe:
/// SHA-256 of `licet-fingerprint-salt-v1\0` and the product id.
pub fn product_salt(product: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"licet-fingerprint-salt-v1\0");
    hasher.update(product.as_bytes());
    hasher.finalize().into()
}

/// The public id of a salt, signed into certificates with their binding rule so a client can tell
/// which salt the bound values were hashed with: 16 hex digits of SHA-256 of
/// `licet-salt-id\0` and the salt. The salt itself is not revealed.
pub fn salt_id(salt: &[u8; 32]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"licet-salt-id\0");
    hasher.update(salt);
    let digest = hasher.finalize();
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = String::with_capacity(16);
    for byte in digest.iter().take(8) {
        id.push(char::from(HEX[usize::from(byte >> 4)]));
        id.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    id
}

/// Whether the two component sets share any of `names` with the same value.
pub fn shares_any(
    mine: &BTreeMap<String, String>,
    theirs: &BTreeMap<String, String>,
    names: &[String],
) -> bool {
    names
        .iter()
        .any(|name| match (mine.get(name), theirs.get(name)) {
            (Some(mine), Some(theirs)) => !mine.is_empty() && mine == theirs,
            _ => false,
        })
}

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
    fn salt_ids_are_per_product_and_reveal_no_salt() {
        let gstar = product_salt("gstarcad");
        assert_ne!(gstar, product_salt("gstarbim"));
        let id = salt_id(&gstar);
        assert_eq!(id.len(), 16);
        assert_eq!(id, salt_id(&product_salt("gstarcad")));
        assert_ne!(id, salt_id(&product_salt("gstarbim")));
    }

    #[test]
    fn one_shared_strong_component_is_enough() {
        let first = BTreeMap::from([("machine-id".to_owned(), "a".to_owned())]);
        let second = BTreeMap::from([
            ("machine-id".to_owned(), "a".to_owned()),
            ("disk".to_owned(), "x".to_owned()),
        ]);
        let strong = ["machine-id".to_owned(), "disk".to_owned()];
        assert!(shares_any(&first, &second, &strong));
        assert!(!shares_any(&first, &second, &strong[1..]));
    }

    #[test]
    fn missing_components_and_unknown_names_do_not_count() {
        let office = Fingerprint::from_pairs([("machine-id", "a"), ("mac", "b"), ("cpu", "c")]);
        let sparse = Fingerprint::from_pairs([("machine-id", "a"), ("mac", "b"), ("gpu", "c")]);
        assert_eq!(office.matching_components(&sparse, &policy()), 2);
        assert!(!office.matches(&sparse, &policy()));
    }
}
