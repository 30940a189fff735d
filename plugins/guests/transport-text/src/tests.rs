//! Round trips of real exchange files (the engine's snapshots, signed with its test key).

use alloc::string::String;
use alloc::vec::Vec;
use std::format;

use crate::block::{self, Kind};
use crate::pack;

fn snapshot(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../../engine/tests/snapshots/exchange_files__{name}_text_is_stable.snap",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"));
    let body: Vec<&str> = text.lines().skip(4).collect();
    let mut file = body.join("\n");
    file.push('\n');
    file.into_bytes()
}

#[test]
fn real_files_round_trip_byte_for_byte_and_packed() {
    for (name, kind) in [
        ("activation_request", Kind::ActivationRequest),
        ("return_request", Kind::ReturnRequest),
        ("activation_response", Kind::ActivationResponse),
        ("return_response", Kind::ReturnResponse),
    ] {
        let file = snapshot(name);
        assert_eq!(pack::kind_of(&file), Some(kind));
        let packed = pack::pack(kind, &file);
        assert_ne!(packed[1], 0, "{name} was not packed");
        let text = block::write(kind, &packed);
        std::println!(
            "{name}: {} bytes -> {} packed -> {} characters\n{text}",
            file.len(),
            packed.len(),
            text.len()
        );
        let (read_kind, bytes) = block::read(text.as_bytes()).unwrap();
        assert_eq!(read_kind, kind);
        assert_eq!(pack::unpack(kind, &bytes).unwrap(), file, "{name}");
    }
}

#[test]
fn files_in_another_layout_are_carried_whole() {
    let file = snapshot("activation_request");
    let text = String::from_utf8(file).unwrap().replace("\n", "\r\n");
    let packed = pack::pack(Kind::ActivationRequest, text.as_bytes());
    assert_eq!(packed[1], 0);
    assert_eq!(
        pack::unpack(Kind::ActivationRequest, &packed).unwrap(),
        text.as_bytes()
    );
}

#[test]
fn a_block_for_the_other_direction_is_refused() {
    let file = snapshot("activation_response");
    let (_, text) = crate::to_block(&file, false).unwrap();
    assert!(crate::from_block(text.as_bytes(), true)
        .unwrap_err()
        .contains("response"));
    assert!(crate::to_block(&file, true).is_err());
    assert_eq!(crate::from_block(text.as_bytes(), false).unwrap(), file);
}
