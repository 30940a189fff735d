//! Host bindings generated from `plugins/wit` (`licet:plugin@0.2.0`) and from
//! `plugins/wit-0.1.0` (`licet:plugin@0.1.0`, still loaded). The rest of the crate speaks the
//! 0.2.0 types; a 0.1.0 plugin's values are converted at the call (`transport.rs`,
//! `hardware.rs`).
#![allow(missing_docs, missing_debug_implementations)]

pub(crate) mod transport {
    wasmtime::component::bindgen!({
        world: "transport",
        path: "../wit",
        additional_derives: [PartialEq, Eq],
    });
}

pub(crate) mod hardware {
    wasmtime::component::bindgen!({
        world: "hardware-check",
        path: "../wit",
        imports: { default: trappable },
        additional_derives: [PartialEq, Eq],
        with: { "licet:plugin/hid.device": crate::call_state::HidHandle },
    });
}

/// `licet:plugin@0.1.0`.
pub(crate) mod v0_1 {
    pub(crate) mod transport {
        wasmtime::component::bindgen!({
            world: "transport",
            path: "../wit-0.1.0",
        });
    }

    pub(crate) mod hardware {
        wasmtime::component::bindgen!({
            world: "hardware-check",
            path: "../wit-0.1.0",
            imports: { default: trappable },
            with: { "licet:plugin/hid.device": crate::call_state::HidHandle },
        });
    }
}
