//! Host bindings generated from `plugins/wit`.
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
        with: { "licet:plugin/hid.device": crate::runtime::HidHandle },
    });
}
