//! The policy file as written: serde structures that mirror the YAML one to one.
//!
//! Every struct denies unknown fields, so a misspelt key is an error with its position instead of a
//! setting that silently does nothing. Meaning is given to these structures in `resolve`.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

/// A mapping whose keys must be unique: YAML itself would let the last duplicate win silently.
#[derive(Debug)]
pub(crate) struct UniqueMap<V>(pub BTreeMap<String, V>);

impl<V> Default for UniqueMap<V> {
    fn default() -> Self {
        UniqueMap(BTreeMap::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for UniqueMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct UniqueVisitor<V>(PhantomData<V>);

        impl<'de, V: Deserialize<'de>> Visitor<'de> for UniqueVisitor<V> {
            type Value = UniqueMap<V>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping with unique keys")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = BTreeMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    if entries.contains_key(&key) {
                        return Err(de::Error::custom(format_args!("`{key}` is defined twice")));
                    }
                    let value = map.next_value()?;
                    entries.insert(key, value);
                }
                Ok(UniqueMap(entries))
            }
        }

        deserializer.deserialize_map(UniqueVisitor(PhantomData))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicy {
    pub licet: u32,
    pub id: String,
    #[serde(default)]
    pub description: Option<String>,
    pub product: RawProduct,
    pub model: RawModel,
    #[serde(default)]
    pub activations_per_serial: Option<i64>,
    #[serde(default)]
    pub trial: Option<RawTrial>,
    #[serde(default)]
    pub fingerprint: Option<RawFingerprint>,
    #[serde(default)]
    pub terms: Option<RawTerms>,
    pub license_types: UniqueMap<RawLicenseType>,
    #[serde(default)]
    pub removal: Option<RawRemoval>,
    #[serde(default)]
    pub transfer: Option<RawTransfer>,
    #[serde(default)]
    pub extension: Option<RawExtension>,
    #[serde(default)]
    pub limited: Option<RawLimited>,
    #[serde(default)]
    pub validation: Option<RawValidation>,
    #[serde(default)]
    pub clock: Option<RawClock>,
    #[serde(default)]
    pub rules: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProduct {
    pub id: String,
    pub name: String,
    pub version: String,
    pub editions: Vec<String>,
    #[serde(default)]
    pub languages: Vec<String>,
    #[serde(default)]
    pub features: UniqueMap<bool>,
    #[serde(default)]
    pub counters: UniqueMap<i64>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum RawModel {
    Standard,
    Web,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTrial {
    pub days: i64,
    #[serde(default = "default_true")]
    pub once_per_machine: bool,
    #[serde(default)]
    pub editions: Option<Vec<String>>,
    #[serde(default)]
    pub strong_components: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFingerprint {
    pub components: Vec<String>,
    pub match_at_least: i64,
    #[serde(default)]
    pub untrusted_environment: Option<RawUntrustedEnvironment>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum RawUntrustedEnvironment {
    Deny,
    NoTrial,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTerms {
    #[serde(default)]
    pub rental: Option<RawRentalTerms>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRentalTerms {
    #[serde(default = "default_true")]
    pub on_dongles: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum RawKind {
    Standalone,
    Network,
    StandaloneDongle,
    NetworkDongle,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum RawTermKind {
    Perpetual,
    Rental,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum RawMethod {
    Online,
    Manual,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLicenseType {
    pub kind: RawKind,
    pub terms: Vec<RawTermKind>,
    #[serde(default)]
    pub activation: Option<Vec<RawMethod>>,
    #[serde(default, rename = "return")]
    pub return_methods: Option<Vec<RawMethod>>,
    #[serde(default)]
    pub default_seats: Option<i64>,
    #[serde(default)]
    pub lease_seconds: Option<i64>,
    #[serde(default)]
    pub borrowing: Option<RawBorrowing>,
    #[serde(default)]
    pub offline_days: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBorrowing {
    pub max_days: i64,
    #[serde(default)]
    pub early_return: Option<RawEarlyReturn>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum RawEarlyReturn {
    HoldsSeat,
    FreesSeat,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRemoval {
    pub by_end_user: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTransfer {
    pub max: i64,
    pub period_days: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExtension {
    pub enabled: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimited {
    pub validity_days: i64,
    #[serde(default)]
    pub day_of_month: Option<i64>,
    #[serde(default = "default_true")]
    pub fixed_window: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawValidation {
    pub interval_hours: i64,
    pub offline_grace_days: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClock {
    pub rollback_tolerance_minutes: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    pub id: String,
    pub on: Vec<String>,
    #[serde(default)]
    pub deny_when: Option<String>,
    #[serde(default)]
    pub require: Option<String>,
    pub message: String,
}

fn default_true() -> bool {
    true
}
