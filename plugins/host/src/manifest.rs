//! Plugin manifests: what a plugin is and what it may use.
//!
//! A plugin directory holds `plugin.json` (the manifest), `plugin.sig` (the vendor's Ed25519
//! signature over the manifest's exact bytes, base64) and the component the manifest names. The
//! manifest carries the component's SHA-256, so the signature covers the code too.

use licet_engine::report::Report as _;
use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::PluginError;

/// The manifest's file name in a plugin directory.
pub const MANIFEST_FILE: &str = "plugin.json";
/// The signature's file name in a plugin directory.
pub const SIGNATURE_FILE: &str = "plugin.sig";

/// The world a plugin targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum World {
    /// `licet:plugin/transport`: encode requests, decode replies.
    Transport,
    /// `licet:plugin/hardware-check`: fingerprints and dongles.
    HardwareCheck,
}

impl World {
    /// The world's WIT name.
    pub fn name(self) -> &'static str {
        match self {
            World::Transport => "transport",
            World::HardwareCheck => "hardware-check",
        }
    }

    /// The only imports a component of this world, built against `version`, may have.
    pub fn allowed_imports(self, version: WitVersion) -> &'static [&'static str] {
        match (self, version) {
            (World::Transport, WitVersion::V0_1) => &["licet:plugin/types@0.1.0"],
            (World::Transport, WitVersion::V0_2) => &["licet:plugin/types@0.2.0"],
            (World::HardwareCheck, WitVersion::V0_1) => {
                &["licet:plugin/types@0.1.0", "licet:plugin/hid@0.1.0"]
            }
            (World::HardwareCheck, WitVersion::V0_2) => {
                &["licet:plugin/types@0.2.0", "licet:plugin/hid@0.2.0"]
            }
        }
    }
}

/// The version of the `licet:plugin` interface a component was built against. The host loads
/// both; 0.1.0 has no server side of transports (`accept`) and no `text` destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum WitVersion {
    /// `licet:plugin@0.1.0`.
    V0_1,
    /// `licet:plugin@0.2.0`, the current version (`plugins/wit`).
    V0_2,
}

impl WitVersion {
    /// The version as WIT writes it, such as `0.2.0`.
    pub fn as_str(self) -> &'static str {
        match self {
            WitVersion::V0_1 => "0.1.0",
            WitVersion::V0_2 => "0.2.0",
        }
    }

    /// The version of a component that imports and exports these interface names: 0.1.0 if any
    /// `licet:plugin` interface is of version 0.1.0, else the current version (whose imports
    /// and exports are then checked against it).
    pub fn of_interfaces<'a>(names: impl IntoIterator<Item = &'a str>) -> WitVersion {
        let old = names
            .into_iter()
            .any(|name| name.starts_with("licet:plugin/") && name.ends_with("@0.1.0"));
        if old {
            WitVersion::V0_1
        } else {
            WitVersion::V0_2
        }
    }
}

impl std::fmt::Display for WitVersion {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A USB HID device a plugin may open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HidId {
    /// USB vendor ID.
    pub vendor_id: u16,
    /// USB product ID.
    pub product_id: u16,
}

/// What the host lets a plugin use.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allow {
    /// URLs a transport may send to (exact match).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    /// HID devices a hardware check may open.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hid: Vec<HidId>,
}

/// A plugin manifest (`plugin.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The plugin's name: lowercase letters, digits and `-`.
    pub name: String,
    /// The plugin's version.
    pub version: String,
    /// The world the component targets.
    pub world: World,
    /// The component's file name, next to the manifest.
    pub wasm: String,
    /// Lowercase hex SHA-256 of the component; `licet-plugin sign` fills it in.
    #[serde(default)]
    pub wasm_sha256: String,
    /// Settings passed to every call.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// What the plugin may use.
    #[serde(default)]
    pub allow: Allow,
}

impl Manifest {
    /// Parses and checks a manifest. `path` is for messages.
    pub fn from_json(bytes: &[u8], path: &Path) -> Result<Manifest, PluginError> {
        let manifest: Manifest =
            serde_json::from_slice(bytes).map_err(|error| PluginError::Manifest {
                path: path.to_path_buf(),
                reason: error.report(),
            })?;
        manifest.check(path)?;
        Ok(manifest)
    }

    fn check(&self, path: &Path) -> Result<(), PluginError> {
        let problem = |reason: String| PluginError::Manifest {
            path: path.to_path_buf(),
            reason,
        };
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-');
        if !name_ok {
            return Err(problem(format!(
                "name `{}` must be 1 to 64 lowercase letters, digits or `-`",
                self.name
            )));
        }
        let file_ok = self.wasm.ends_with(".wasm")
            && !self.wasm.starts_with('.')
            && !self.wasm.contains(['/', '\\', ':']);
        if !file_ok {
            return Err(problem(format!(
                "wasm `{}` must be a plain `.wasm` file name in the plugin directory",
                self.wasm
            )));
        }
        if let Some(url) = self
            .allow
            .urls
            .iter()
            .find(|url| !(url.starts_with("http://") || url.starts_with("https://")))
        {
            return Err(problem(format!(
                "allowed URL `{url}` is not an http:// or https:// URL"
            )));
        }
        match self.world {
            World::Transport if !self.allow.hid.is_empty() => Err(problem(
                "a transport plugin may not open HID devices".to_string(),
            )),
            World::HardwareCheck if !self.allow.urls.is_empty() => Err(problem(
                "a hardware-check plugin may not name URLs".to_string(),
            )),
            _ => Ok(()),
        }
    }

    /// The config as the plugin receives it: `(name, value)` pairs in name order.
    pub fn config_pairs(&self) -> Vec<(String, String)> {
        self.config
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect()
    }

    /// Whether the manifest allows opening this HID device.
    pub fn allows_hid(&self, vendor_id: u16, product_id: u16) -> bool {
        self.allow
            .hid
            .iter()
            .any(|id| id.vendor_id == vendor_id && id.product_id == product_id)
    }

    /// Whether the manifest allows sending to this URL.
    pub fn allows_url(&self, url: &str) -> bool {
        self.allow.urls.iter().any(|allowed| allowed == url)
    }
}

/// The name of the shipped dongle check, the only plugin the dongle slot takes
/// ([`crate::DongleReader`]).
pub const DONGLE_PLUGIN: &str = "dongle-hid";
/// The name of the shipped fingerprint check.
pub const FINGERPRINT_PLUGIN: &str = "fingerprint";

/// What a host's slot takes: plugins of one world and, where the slot expects one particular
/// plugin, of one name. The world and the name are read from the signed manifest, so a validly
/// signed plugin put in another slot than its own is refused before it is compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot<'a> {
    world: World,
    name: Option<&'a str>,
}

impl<'a> Slot<'a> {
    /// A transport slot: any `transport` plugin.
    pub const TRANSPORT: Slot<'static> = Slot::of_world(World::Transport);
    /// The dongle slot: only the `hardware-check` plugin `dongle-hid`.
    pub const DONGLE: Slot<'static> = Slot::named(World::HardwareCheck, DONGLE_PLUGIN);
    /// The fingerprint slot: only the `hardware-check` plugin `fingerprint`.
    pub const FINGERPRINT: Slot<'static> = Slot::named(World::HardwareCheck, FINGERPRINT_PLUGIN);

    /// A slot that takes any plugin of `world`.
    pub const fn of_world(world: World) -> Slot<'static> {
        Slot { world, name: None }
    }

    /// A slot that takes only the plugin `name` of `world`.
    pub const fn named(world: World, name: &'a str) -> Slot<'a> {
        Slot {
            world,
            name: Some(name),
        }
    }

    /// The world the slot takes.
    pub fn world(&self) -> World {
        self.world
    }

    /// The plugin the slot takes, if it takes one only.
    pub fn name(&self) -> Option<&'a str> {
        self.name
    }

    /// Checks the verified manifest of the plugin in `dir` against the slot: the world first,
    /// then the name.
    pub fn admit(&self, dir: &Path, manifest: &Manifest) -> Result<(), PluginError> {
        if manifest.world != self.world {
            return Err(PluginError::WrongWorld {
                plugin: manifest.name.clone(),
                expected: self.world.name(),
                found: manifest.world.name(),
            });
        }
        match self.name {
            Some(expected) if manifest.name != expected => Err(PluginError::WrongPlugin {
                path: dir.to_path_buf(),
                world: self.world.name(),
                expected: expected.to_string(),
                found: manifest.name.clone(),
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(text: &str) -> Result<Manifest, PluginError> {
        Manifest::from_json(text.as_bytes(), Path::new("plugin.json"))
    }

    #[test]
    fn a_transport_manifest_parses() {
        let manifest = parse(
            r#"{"name":"transport-http","version":"0.1.0","world":"transport",
                "wasm":"transport_http.wasm","config":{"server-url":"http://127.0.0.1/a"},
                "allow":{"urls":["http://127.0.0.1/a"]}}"#,
        )
        .unwrap();
        assert_eq!(manifest.world, World::Transport);
        assert!(manifest.allows_url("http://127.0.0.1/a"));
        assert!(!manifest.allows_url("http://127.0.0.1/a/"));
        assert_eq!(
            manifest.config_pairs(),
            vec![("server-url".to_string(), "http://127.0.0.1/a".to_string())]
        );
    }

    #[test]
    fn the_name_and_the_world_are_required() {
        for (text, needle) in [
            (
                r#"{"version":"1","world":"transport","wasm":"x.wasm"}"#,
                "missing field `name`",
            ),
            (
                r#"{"name":"x","version":"1","wasm":"x.wasm"}"#,
                "missing field `world`",
            ),
            (
                r#"{"name":"x","version":"1","world":"fingerprint","wasm":"x.wasm"}"#,
                "unknown variant `fingerprint`",
            ),
        ] {
            let error = parse(text).unwrap_err().to_string();
            assert!(error.contains(needle), "{error}");
        }
    }

    #[test]
    fn a_slot_takes_only_its_world_and_name() {
        let dir = Path::new("plugins/p");
        let dongle = parse(
            r#"{"name":"dongle-hid","version":"1","world":"hardware-check","wasm":"d.wasm"}"#,
        )
        .unwrap();
        let fingerprint = parse(
            r#"{"name":"fingerprint","version":"1","world":"hardware-check","wasm":"f.wasm"}"#,
        )
        .unwrap();
        let transport =
            parse(r#"{"name":"dongle-hid","version":"1","world":"transport","wasm":"t.wasm"}"#)
                .unwrap();
        assert!(Slot::DONGLE.admit(dir, &dongle).is_ok());
        assert!(Slot::FINGERPRINT.admit(dir, &fingerprint).is_ok());
        assert!(Slot::TRANSPORT.admit(dir, &transport).is_ok());
        assert!(Slot::of_world(World::HardwareCheck)
            .admit(dir, &fingerprint)
            .is_ok());
        assert!(matches!(
            Slot::DONGLE.admit(dir, &fingerprint),
            Err(PluginError::WrongPlugin { expected, found, .. })
                if expected == "dongle-hid" && found == "fingerprint"
        ));
        assert!(matches!(
            Slot::FINGERPRINT.admit(dir, &dongle),
            Err(PluginError::WrongPlugin { .. })
        ));
        // The name alone does not fill a slot of another world.
        assert!(matches!(
            Slot::DONGLE.admit(dir, &transport),
            Err(PluginError::WrongWorld {
                expected: "hardware-check",
                found: "transport",
                ..
            })
        ));
        assert!(matches!(
            Slot::TRANSPORT.admit(dir, &dongle),
            Err(PluginError::WrongWorld { .. })
        ));
    }

    #[test]
    fn unknown_fields_paths_and_misplaced_grants_are_refused() {
        for (text, needle) in [
            (
                r#"{"name":"x","version":"1","world":"transport","wasm":"x.wasm","fuel":1}"#,
                "unknown field `fuel`",
            ),
            (
                r#"{"name":"x","version":"1","world":"transport","wasm":"../x.wasm"}"#,
                "plain `.wasm` file name",
            ),
            (
                r#"{"name":"X","version":"1","world":"transport","wasm":"x.wasm"}"#,
                "lowercase",
            ),
            (
                r#"{"name":"x","version":"1","world":"transport","wasm":"x.wasm",
                    "allow":{"hid":[{"vendor_id":1,"product_id":2}]}}"#,
                "may not open HID devices",
            ),
            (
                r#"{"name":"x","version":"1","world":"hardware-check","wasm":"x.wasm",
                    "allow":{"urls":["http://a/"]}}"#,
                "may not name URLs",
            ),
            (
                r#"{"name":"x","version":"1","world":"transport","wasm":"x.wasm",
                    "allow":{"urls":["file:///etc/passwd"]}}"#,
                "not an http:// or https:// URL",
            ),
        ] {
            let error = parse(text).unwrap_err().to_string();
            assert!(error.contains(needle), "{error}");
        }
    }
}
