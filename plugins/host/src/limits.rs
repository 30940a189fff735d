//! What one plugin call may consume: one [`Limits`] value, set by the host when it builds its
//! [`crate::PluginHost`], never by the plugin.

use std::time::Duration;

use crate::error::PluginError;

/// The default longest HID report a plugin may write (64 bytes plus the report ID).
pub const MAX_HID_REPORT: usize = 65;
/// The default longest a plugin may wait for one HID read, in milliseconds.
pub const MAX_HID_TIMEOUT_MS: u32 = 5_000;
/// The default most fingerprint components a plugin may return.
pub const MAX_COMPONENTS: usize = 64;

/// How often the host's deadline clock ticks. A call's wall-clock bound ([`Limits::call_time`])
/// is enforced to within one tick.
pub const DEADLINE_TICK: Duration = Duration::from_millis(10);

/// What each plugin call may consume. The host sets these when it is built
/// ([`crate::PluginHost::builder`]), never the plugin; every call of every plugin of that host
/// runs under them.
///
/// | field | default | exceeded |
/// | --- | --- | --- |
/// | `fuel` | 50 000 000 | [`PluginError::OutOfFuel`] |
/// | `call_time` | 12 s | [`PluginError::Timeout`] |
/// | `memory_bytes` | 16 MiB | [`PluginError::MemoryLimit`] |
/// | `table_elements` | 10 000 | the table does not grow (the plugin sees a failed `table.grow`) |
/// | `core_instances` | 4 | instantiation fails ([`PluginError::Trapped`]) |
/// | `tables` | 4 | instantiation fails ([`PluginError::Trapped`]) |
/// | `memories` | 1 | instantiation fails ([`PluginError::Trapped`]) |
/// | `max_wasm_stack` | 256 KiB | [`PluginError::StackOverflow`] |
/// | `max_guest_bytes` | 1 MiB | [`PluginError::PayloadTooLarge`] |
/// | `hid_report_bytes` | 65 | [`PluginError::PayloadTooLarge`] |
/// | `hid_read_timeout` | 5 s | the read is cut to it |
/// | `hid_wait` | 10 s | [`PluginError::HidTimeLimit`] |
/// | `hid_open_devices` | 4 | `open` returns an error to the plugin |
/// | `fingerprint_components` | 64 | [`PluginError::PayloadTooLarge`] |
/// | `concurrent_calls` | 16 | [`PluginError::Busy`] |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Fuel (roughly, WebAssembly instructions) per call.
    pub fuel: u64,
    /// Wall-clock time one call may take, from entering the plugin to its return, whatever it
    /// does: computing (fuel does not count the time a cheap instruction such as a bulk memory
    /// fill takes), or blocking in a host call such as a HID read. Enforced by an epoch deadline
    /// to within [`DEADLINE_TICK`]; host calls cut their own waits to the time left. At least
    /// [`DEADLINE_TICK`].
    pub call_time: Duration,
    /// Linear memory per call, in bytes (at least one 64 KiB page).
    pub memory_bytes: usize,
    /// Elements of each table per call.
    pub table_elements: usize,
    /// Core WebAssembly instances one call may create (a plugin component has a few). The pool
    /// of instance slots holds this many per [`Limits::concurrent_calls`]. At least 1.
    pub core_instances: u32,
    /// Tables one call may create; the pool holds this many per concurrent call. At least 1.
    pub tables: u32,
    /// Linear memories one call may create (a plugin component has one); the pool holds this
    /// many per concurrent call. At least 1.
    pub memories: u32,
    /// Native stack for WebAssembly frames, in bytes.
    pub max_wasm_stack: usize,
    /// Bytes a plugin may hand back to the host in one result, and the largest response file a
    /// transport is given to decode.
    pub max_guest_bytes: usize,
    /// The longest HID report a plugin may write, report ID included.
    pub hid_report_bytes: usize,
    /// The longest one HID read may wait; a plugin asking for more gets this.
    pub hid_read_timeout: Duration,
    /// Time one call may spend waiting in HID reads, in all.
    pub hid_wait: Duration,
    /// HID devices one call may hold open at once.
    pub hid_open_devices: usize,
    /// The most components a fingerprint may have.
    pub fingerprint_components: usize,
    /// Calls that may run at once across all plugins of one host, warm instances included;
    /// instance slots are pooled and reused, which keeps a fresh instance cheap (unless the host
    /// allocates them per call, [`crate::Instances::OnDemand`]). At least 1.
    pub concurrent_calls: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            fuel: 50_000_000,
            call_time: Duration::from_secs(12),
            memory_bytes: 16 << 20,
            table_elements: 10_000,
            core_instances: 4,
            tables: 4,
            memories: 1,
            max_wasm_stack: 256 << 10,
            max_guest_bytes: 1 << 20,
            hid_report_bytes: MAX_HID_REPORT,
            hid_read_timeout: Duration::from_millis(u64::from(MAX_HID_TIMEOUT_MS)),
            hid_wait: Duration::from_secs(10),
            hid_open_devices: 4,
            fingerprint_components: MAX_COMPONENTS,
            concurrent_calls: 16,
        }
    }
}

impl Limits {
    /// Checks that the limits make a usable host.
    pub fn check(&self) -> Result<(), PluginError> {
        let refuse =
            |field: &'static str, reason: &'static str| Err(PluginError::Limits { field, reason });
        if self.fuel == 0 {
            return refuse("fuel", "must be at least 1");
        }
        if self.call_time < DEADLINE_TICK {
            return refuse("call_time", "must be at least the deadline tick (10 ms)");
        }
        if self.memory_bytes < 1 << 16 {
            return refuse("memory_bytes", "must be at least one 64 KiB page");
        }
        if self.concurrent_calls == 0 {
            return refuse("concurrent_calls", "must be at least 1");
        }
        if self.core_instances == 0 {
            return refuse("core_instances", "must be at least 1");
        }
        if self.tables == 0 {
            return refuse("tables", "must be at least 1");
        }
        if self.memories == 0 {
            return refuse("memories", "must be at least 1");
        }
        Ok(())
    }

    /// The epoch ticks a call may run: its wall-clock time rounded up to whole ticks, plus one
    /// for the tick already under way when it starts.
    pub(crate) fn deadline_ticks(&self) -> u64 {
        let tick = DEADLINE_TICK.as_nanos();
        let ticks = self.call_time.as_nanos().div_ceil(tick);
        u64::try_from(ticks).unwrap_or(u64::MAX).saturating_add(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_usable_and_nonsense_is_refused() {
        assert!(Limits::default().check().is_ok());
        for (limits, field) in [
            (
                Limits {
                    fuel: 0,
                    ..Limits::default()
                },
                "fuel",
            ),
            (
                Limits {
                    call_time: Duration::from_millis(1),
                    ..Limits::default()
                },
                "call_time",
            ),
            (
                Limits {
                    memory_bytes: 4096,
                    ..Limits::default()
                },
                "memory_bytes",
            ),
            (
                Limits {
                    concurrent_calls: 0,
                    ..Limits::default()
                },
                "concurrent_calls",
            ),
            (
                Limits {
                    memories: 0,
                    ..Limits::default()
                },
                "memories",
            ),
        ] {
            assert!(
                matches!(limits.check(), Err(PluginError::Limits { field: found, .. }) if found == field),
                "{field}"
            );
        }
    }

    #[test]
    fn a_call_gets_its_time_in_whole_ticks_and_one_more() {
        let ticks = |millis| {
            Limits {
                call_time: Duration::from_millis(millis),
                ..Limits::default()
            }
            .deadline_ticks()
        };
        assert_eq!(ticks(10), 2);
        assert_eq!(ticks(15), 3);
        assert_eq!(ticks(300), 31);
        assert_eq!(Limits::default().deadline_ticks(), 1_201);
    }
}
