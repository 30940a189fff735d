//! The USB HID dongle check built against `licet:plugin@0.1.0`: the tests load it to show that
//! hosts still take 0.1.0 hardware checks (the `hid` import and the `check` export of that
//! version).
#![no_std]

extern crate alloc;

wit_bindgen::generate!({ world: "hardware-check", path: "../../wit-0.1.0" });

include!("../../dongle-hid/src/check.rs");

export!(DongleHid);
