//! The server's dongle check: a network dongle license serves seats only while its dongle is
//! present on the license server.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Finds the USB dongle plugged into the server, if any.
pub trait DongleCheck: Send + Sync + std::fmt::Debug {
    /// The serial of the dongle present now, or `None`.
    fn present(&self) -> Option<String>;
}

/// A server without a dongle.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoDongle;

impl DongleCheck for NoDongle {
    fn present(&self) -> Option<String> {
        None
    }
}

/// A dongle that can be plugged in and pulled out: the configured dongle of a server whose
/// hardware check is done outside the process, and the stand-in used by tests.
#[derive(Debug)]
pub struct SwitchableDongle {
    serial: Mutex<String>,
    plugged: AtomicBool,
}

impl SwitchableDongle {
    /// A plugged-in dongle with `serial`.
    pub fn plugged(serial: impl Into<String>) -> Self {
        SwitchableDongle {
            serial: Mutex::new(serial.into()),
            plugged: AtomicBool::new(true),
        }
    }

    /// Pulls the dongle out.
    pub fn unplug(&self) {
        self.plugged.store(false, Ordering::SeqCst);
    }

    /// Plugs the dongle back in.
    pub fn plug(&self) {
        self.plugged.store(true, Ordering::SeqCst);
    }

    /// Replaces the dongle with another one.
    pub fn replace(&self, serial: impl Into<String>) {
        let mut current = self
            .serial
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *current = serial.into();
    }
}

impl DongleCheck for SwitchableDongle {
    fn present(&self) -> Option<String> {
        if !self.plugged.load(Ordering::SeqCst) {
            return None;
        }
        let serial = self
            .serial
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Some(serial.clone())
    }
}
