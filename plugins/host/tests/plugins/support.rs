//! Shared set-up: a host trusting the test key and signed plugin directories.

use std::path::PathBuf;

use licet_plugin_host::test_support::{install_plugin, test_key};
use licet_plugin_host::{Allow, HidId, PluginHost, World};

pub fn host() -> PluginHost {
    PluginHost::new(test_key().verifying_key()).unwrap()
}

pub fn plugin(
    into: &tempfile::TempDir,
    guest: &str,
    world: World,
    config: &[(&str, &str)],
    allow: Allow,
) -> PathBuf {
    install_plugin(into.path(), guest, world, config, allow, &test_key())
        .unwrap_or_else(|error| panic!("cannot install `{guest}`: {error}"))
}

pub fn urls(urls: &[&str]) -> Allow {
    Allow {
        urls: urls.iter().map(|url| url.to_string()).collect(),
        hid: Vec::new(),
    }
}

pub fn hid(ids: &[(u16, u16)]) -> Allow {
    Allow {
        urls: Vec::new(),
        hid: ids
            .iter()
            .map(|&(vendor_id, product_id)| HidId {
                vendor_id,
                product_id,
            })
            .collect(),
    }
}
