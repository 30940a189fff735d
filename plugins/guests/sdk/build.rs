//! `no_std` code on `wasm32-wasip2` still calls `memcpy`, `memset`, `memcmp` and `memmove`, which
//! that target takes from its bundled C library. Linking it adds only those functions (the linker
//! drops everything unused), so the component imports nothing from WASI.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-lib=c");
    }
}
