//! What every Licet plugin needs.
//!
//! Plugins are `#![no_std]` so that the component imports nothing but its world: Rust's `std` on
//! `wasm32-wasip2` would import WASI interfaces (environment, exit, stderr, ...), and the host
//! refuses any import outside the plugin's world. This crate supplies the global allocator and the
//! panic handler such a component needs, plus a few helpers and, with the feature `dongle`, the USB
//! dongle protocol (module `dongle`). Link it with `use licet_plugin_sdk as _;`
//! or use its helpers.
#![no_std]

extern crate alloc;

use alloc::string::String;

#[cfg(feature = "dongle")]
pub mod dongle;

#[cfg(target_arch = "wasm32")]
mod arena;

#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: arena::CallArena = arena::CallArena::new();

/// The canonical ABI's allocator export. On `wasm32-wasip2` wit-bindgen leaves it to the C
/// library, which a `no_std` plugin does not use, so it is defined here over the global allocator:
/// memory the host allocates for arguments is then owned and freed by Rust's allocator.
///
/// # Safety
///
/// Called only by the component's canonical ABI glue with a pointer it got from this function.
#[cfg(target_arch = "wasm32")]
#[no_mangle]
pub unsafe extern "C" fn cabi_realloc(
    old_ptr: *mut u8,
    old_len: usize,
    align: usize,
    new_len: usize,
) -> *mut u8 {
    use alloc::alloc::{alloc, realloc, Layout};
    if new_len == 0 {
        return align as *mut u8;
    }
    let ptr = match (old_len, Layout::from_size_align(new_len, align)) {
        (_, Err(_)) => core::ptr::null_mut(),
        // SAFETY: `layout` has a non-zero size.
        (0, Ok(layout)) => unsafe { alloc(layout) },
        (old_len, Ok(_)) => match Layout::from_size_align(old_len, align) {
            // SAFETY: `old_ptr` was allocated by this allocator with `old_layout`.
            Ok(old_layout) => unsafe { realloc(old_ptr, old_layout, new_len) },
            Err(_) => core::ptr::null_mut(),
        },
    };
    if ptr.is_null() {
        core::arch::wasm32::unreachable();
    }
    ptr
}

/// A panic in a plugin traps; the host reports the trap and keeps serving.
#[cfg(target_arch = "wasm32")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}

/// Lowercase hexadecimal of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    // Filled in place: no capacity check or character encoding per digit.
    let mut text = alloc::vec![0u8; bytes.len() * 2];
    for (pair, byte) in text.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0x0f)];
    }
    String::from_utf8(text).unwrap_or_default()
}

/// The value of `name` in a plugin's config, if set.
pub fn config_value<'a>(config: &'a [(String, String)], name: &str) -> Option<&'a str> {
    config
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 (with padding) of `bytes`.
pub fn base64_encode(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b0 = chunk[0];
        let b1 = chunk.get(1).copied().unwrap_or(0);
        let b2 = chunk.get(2).copied().unwrap_or(0);
        let indices = [
            b0 >> 2,
            ((b0 & 0x03) << 4) | (b1 >> 4),
            ((b1 & 0x0f) << 2) | (b2 >> 6),
            b2 & 0x3f,
        ];
        for (position, index) in indices.iter().enumerate() {
            if position <= chunk.len() {
                text.push(char::from(BASE64[usize::from(*index)]));
            } else {
                text.push('=');
            }
        }
    }
    text
}

/// Decodes standard base64, ignoring ASCII whitespace. `None` if the text is not base64.
pub fn base64_decode(text: &str) -> Option<alloc::vec::Vec<u8>> {
    let symbols: alloc::vec::Vec<u8> = text
        .bytes()
        .filter(|byte| !byte.is_ascii_whitespace())
        .collect();
    if !symbols.len().is_multiple_of(4) {
        return None;
    }
    let mut bytes = alloc::vec::Vec::with_capacity(symbols.len() / 4 * 3);
    let last_quad = symbols.len() / 4;
    for (quad_index, quad) in symbols.chunks(4).enumerate() {
        let padding = quad
            .iter()
            .rev()
            .take_while(|symbol| **symbol == b'=')
            .count();
        if padding > 2 || (padding > 0 && quad_index + 1 != last_quad) {
            return None;
        }
        let mut value: u32 = 0;
        for symbol in &quad[..4 - padding] {
            let digit = BASE64.iter().position(|candidate| candidate == symbol)?;
            value = (value << 6) | u32::try_from(digit).ok()?;
        }
        value <<= 6 * u32::try_from(padding).ok()?;
        let triple = [(value >> 16) as u8, (value >> 8) as u8, value as u8];
        bytes.extend_from_slice(&triple[..3 - padding]);
    }
    Some(bytes)
}
