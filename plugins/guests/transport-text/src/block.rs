//! The text block a person reads out, types or pastes: a header line naming the kind, lines of
//! Crockford base32 in groups of five with two check characters each, and a `SUM` line with a
//! check over the whole block.
//!
//! ```text
//! LICET ACTIVATION REQUEST
//! 0G8ZK 3M7QX ... (five groups of five)  CC
//! ...
//! SUM CCCC
//! ```
//!
//! A line's check covers its characters and its position, so a mistyped, missing or swapped
//! character, or a line out of place, is reported with the line it is on. Reading ignores case,
//! spaces, tabs and dashes, and reads `O` as `0` and `I`, `L` as `1`, as Crockford base32 does.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// The characters of a block: digits and letters without I, L, O and U.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Characters in a group.
pub const GROUP: usize = 5;
/// Groups on a line.
pub const GROUPS_PER_LINE: usize = 5;
/// Data characters on a full line.
pub const LINE_CHARS: usize = GROUP * GROUPS_PER_LINE;
/// A line's check, modulo this prime, in two characters.
const LINE_MODULUS: u32 = 1021;
/// Characters of the whole block's check (20 bits of its CRC-32).
const BLOCK_CHECK_CHARS: usize = 4;
/// The largest block read, in bytes: far more than any exchange file needs.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;

/// What a block carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An activation request file.
    ActivationRequest,
    /// A return request file.
    ReturnRequest,
    /// An activation response file.
    ActivationResponse,
    /// A return response file.
    ReturnResponse,
}

impl Kind {
    /// The header line.
    pub fn header(self) -> &'static str {
        match self {
            Kind::ActivationRequest => "LICET ACTIVATION REQUEST",
            Kind::ReturnRequest => "LICET RETURN REQUEST",
            Kind::ActivationResponse => "LICET ACTIVATION RESPONSE",
            Kind::ReturnResponse => "LICET RETURN RESPONSE",
        }
    }

    /// The title a host shows above the block.
    pub fn title(self) -> &'static str {
        match self {
            Kind::ActivationRequest => "activation request",
            Kind::ReturnRequest => "return request",
            Kind::ActivationResponse => "activation response",
            Kind::ReturnResponse => "return response",
        }
    }

    /// Whether the block goes from a machine to the server.
    pub fn is_request(self) -> bool {
        matches!(self, Kind::ActivationRequest | Kind::ReturnRequest)
    }

    /// The kind's number inside the packed bytes.
    pub fn tag(self) -> u8 {
        match self {
            Kind::ActivationRequest => 1,
            Kind::ReturnRequest => 2,
            Kind::ActivationResponse => 3,
            Kind::ReturnResponse => 4,
        }
    }

    const ALL: [Kind; 4] = [
        Kind::ActivationRequest,
        Kind::ReturnRequest,
        Kind::ActivationResponse,
        Kind::ReturnResponse,
    ];
}

/// Writes `bytes` as a block of `kind`.
pub fn write(kind: Kind, bytes: &[u8]) -> String {
    let symbols = to_base32(bytes);
    let mut text = String::with_capacity(symbols.len() * 6 / 5 + 64);
    text.push_str(kind.header());
    text.push('\n');
    for (index, line) in symbols.chunks(LINE_CHARS).enumerate() {
        for (position, group) in line.chunks(GROUP).enumerate() {
            if position > 0 {
                text.push(' ');
            }
            text.extend(
                group
                    .iter()
                    .map(|&value| char::from(ALPHABET[usize::from(value)])),
            );
        }
        let check = line_check(index + 1, line);
        text.push_str("  ");
        push_number(&mut text, check, 2);
        text.push('\n');
    }
    text.push_str("SUM ");
    push_number(&mut text, block_check(kind, bytes), BLOCK_CHECK_CHARS);
    text.push('\n');
    text
}

/// Reads a block: its kind and bytes, or a sentence saying what is wrong and where.
pub fn read(text: &[u8]) -> Result<(Kind, Vec<u8>), String> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(format!(
            "the text is {} bytes long; a block is never longer than {MAX_TEXT_BYTES}",
            text.len()
        ));
    }
    let text = core::str::from_utf8(text).map_err(|_| String::from("the text is not UTF-8"))?;
    let mut lines = text
        .split('\n')
        .enumerate()
        .map(|(index, line)| (index + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty());
    let (header_line, header) = lines
        .next()
        .ok_or_else(|| String::from("the text is empty"))?;
    let kind = read_header(header).ok_or_else(|| {
        format!(
            "line {header_line}: `{}` is not the first line of a licet block (such as `LICET \
             ACTIVATION REQUEST`)",
            clip(header)
        )
    })?;
    let mut symbols = Vec::new();
    let mut data_lines = 0usize;
    let mut short_line: Option<usize> = None;
    let mut end: Option<(usize, Vec<u8>)> = None;
    for (number, line) in lines {
        if let Some((end_line, _)) = end {
            return Err(format!(
                "line {number}: there is text after the SUM line (line {end_line})"
            ));
        }
        let compact = normalize(line);
        if let Some(rest) = compact.strip_prefix(b"SUM") {
            let check = values(number, 3, rest)?;
            end = Some((number, check));
            continue;
        }
        if let Some(previous) = short_line {
            return Err(format!(
                "line {previous}: the line has fewer than {LINE_CHARS} characters before its \
                 check, but only the last line before SUM may be short"
            ));
        }
        data_lines += 1;
        let line_values = values(number, 0, &compact)?;
        if line_values.len() < 3 || line_values.len() > LINE_CHARS + 2 {
            return Err(format!(
                "line {number}: {} characters, where a line has up to {LINE_CHARS} and 2 check \
                 characters",
                line_values.len()
            ));
        }
        let (data, check) = line_values.split_at(line_values.len() - 2);
        let found = u32::from(check[0]) * 32 + u32::from(check[1]);
        if found != line_check(data_lines, data) {
            return Err(format!(
                "line {number}: the check characters do not match: a character is mistyped, \
                 missing, added or swapped, or the lines are out of order"
            ));
        }
        if data.len() < LINE_CHARS {
            short_line = Some(number);
        }
        symbols.extend_from_slice(data);
    }
    let (end_line, check) = end
        .ok_or_else(|| String::from("the SUM line is missing: copy the block to its last line"))?;
    if data_lines == 0 {
        return Err(format!(
            "line {end_line}: the block has no lines before SUM"
        ));
    }
    let bytes = from_base32(&symbols).ok_or_else(|| {
        format!(
            "line {}: the last line has a wrong number of characters, or a line is missing",
            end_line - 1
        )
    })?;
    let found = check
        .iter()
        .fold(0u32, |sum, &value| sum * 32 + u32::from(value));
    if check.len() != BLOCK_CHECK_CHARS || found != block_check(kind, &bytes) {
        return Err(format!(
            "line {end_line}: the block's check does not match: a line is missing, added or \
             out of order, or the SUM line is mistyped"
        ));
    }
    Ok((kind, bytes))
}

fn read_header(line: &str) -> Option<Kind> {
    let words: Vec<&str> = line
        .split(|character: char| character.is_whitespace() || character == '-')
        .filter(|word| !word.is_empty())
        .collect();
    Kind::ALL.into_iter().find(|kind| {
        let expected: Vec<&str> = kind.header().split(' ').collect();
        words.len() == expected.len()
            && words
                .iter()
                .zip(&expected)
                .all(|(word, expected)| word.eq_ignore_ascii_case(expected))
    })
}

/// The line without separators, in upper case.
fn normalize(line: &str) -> Vec<u8> {
    line.bytes()
        .filter(|byte| !matches!(byte, b' ' | b'\t' | b'-' | b'\r'))
        .map(|byte| byte.to_ascii_uppercase())
        .collect()
}

/// The values of a line's characters; `skip` characters were taken off its front.
fn values(number: usize, skip: usize, compact: &[u8]) -> Result<Vec<u8>, String> {
    compact
        .iter()
        .enumerate()
        .map(|(index, &symbol)| {
            value_of(symbol).ok_or_else(|| {
                let shown = if symbol.is_ascii_graphic() {
                    format!("`{}`", char::from(symbol))
                } else {
                    String::from("a character")
                };
                format!(
                    "line {number}, character {}: {shown} is not one of the block's characters \
                     (digits and letters other than U)",
                    skip + index + 1
                )
            })
        })
        .collect()
}

fn value_of(symbol: u8) -> Option<u8> {
    let symbol = match symbol {
        b'O' => b'0',
        b'I' | b'L' => b'1',
        other => other,
    };
    ALPHABET
        .iter()
        .position(|&candidate| candidate == symbol)
        .and_then(|index| u8::try_from(index).ok())
}

fn clip(text: &str) -> &str {
    match text.char_indices().nth(40) {
        Some((index, _)) => &text[..index],
        None => text,
    }
}

/// A line's check: a weighted sum modulo a prime, so that any one changed character and any two
/// swapped characters change it; its line number takes part so that a moved line fails too.
fn line_check(line: usize, data: &[u8]) -> u32 {
    let modulus = u64::from(LINE_MODULUS);
    let mut sum = (line as u64) % modulus;
    for (index, &value) in data.iter().enumerate() {
        sum = (sum + (index as u64 + 2) * u64::from(value)) % modulus;
    }
    sum as u32
}

/// The whole block's check: 20 bits of the CRC-32 of its kind and bytes.
fn block_check(kind: Kind, bytes: &[u8]) -> u32 {
    let mut crc = crc32_update(0xffff_ffff, &[kind.tag()]);
    crc = crc32_update(crc, bytes);
    (!crc) & 0x000f_ffff
}

fn crc32_update(mut crc: u32, bytes: &[u8]) -> u32 {
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xedb8_8320 & mask);
        }
    }
    crc
}

fn push_number(text: &mut String, value: u32, digits: usize) {
    for position in (0..digits).rev() {
        let digit = (value >> (5 * position)) & 31;
        text.push(char::from(ALPHABET[digit as usize]));
    }
}

/// Base32 values (0..32) of `bytes`, the last one padded with zero bits.
fn to_base32(bytes: &[u8]) -> Vec<u8> {
    let mut symbols = Vec::with_capacity((bytes.len() * 8).div_ceil(5));
    let mut buffer = 0u32;
    let mut bits = 0u32;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            symbols.push(((buffer >> bits) & 31) as u8);
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        symbols.push(((buffer << (5 - bits)) & 31) as u8);
    }
    symbols
}

/// The bytes of base32 values; `None` when the count cannot come from whole bytes or the padding
/// bits are not zero.
fn from_base32(symbols: &[u8]) -> Option<Vec<u8>> {
    let mut bytes = Vec::with_capacity(symbols.len() * 5 / 8);
    let mut buffer = 0u32;
    let mut bits = 0u32;
    for &value in symbols {
        buffer = (buffer << 5) | u32::from(value);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            bytes.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    if bits >= 5 || buffer != 0 || to_base32(&bytes).len() != symbols.len() {
        return None;
    }
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn sample() -> Vec<u8> {
        (0u8..=200).map(|n| n.wrapping_mul(37)).collect()
    }

    #[test]
    fn blocks_round_trip_for_every_length() {
        for len in 0..80 {
            let bytes: Vec<u8> = sample().into_iter().take(len).collect();
            if bytes.is_empty() {
                continue;
            }
            let text = write(Kind::ReturnResponse, &bytes);
            assert_eq!(read(text.as_bytes()), Ok((Kind::ReturnResponse, bytes)));
        }
    }

    #[test]
    fn lowercase_spaces_dashes_and_aliases_are_read() {
        let bytes = sample();
        let text = write(Kind::ActivationRequest, &bytes);
        let relaxed: String = text
            .to_lowercase()
            .replace(' ', "-")
            .replace('0', "o")
            .replace('1', "l")
            .replace('\n', "\r\n\n");
        assert_eq!(
            read(relaxed.as_bytes()),
            Ok((Kind::ActivationRequest, bytes))
        );
    }

    #[test]
    fn every_changed_character_is_reported_on_its_line() {
        let text = write(Kind::ActivationResponse, &sample());
        let lines: Vec<&str> = text.lines().collect();
        for (line_index, line) in lines.iter().enumerate().skip(1) {
            for (position, symbol) in line.char_indices() {
                if symbol == ' ' || line.starts_with("SUM") && position < 3 {
                    continue;
                }
                for replacement in ALPHABET.iter().map(|&b| char::from(b)) {
                    if replacement == symbol {
                        continue;
                    }
                    let mut changed: Vec<String> = lines.iter().map(|l| String::from(*l)).collect();
                    changed[line_index]
                        .replace_range(position..position + 1, &format!("{replacement}"));
                    let error = read(changed.join("\n").as_bytes()).expect_err("accepted");
                    assert!(
                        error.starts_with(&format!("line {}", line_index + 1)),
                        "{error} for line {}",
                        line_index + 1
                    );
                }
            }
        }
    }

    #[test]
    fn swapped_characters_and_lines_are_reported() {
        let text = write(Kind::ActivationRequest, &sample());
        let lines: Vec<String> = text.lines().map(String::from).collect();
        for line_index in 1..lines.len() - 1 {
            let symbols: Vec<char> = lines[line_index].chars().collect();
            for position in 0..symbols.len() - 1 {
                let (a, b) = (symbols[position], symbols[position + 1]);
                if a == b || a == ' ' || b == ' ' {
                    continue;
                }
                let mut swapped = symbols.clone();
                swapped.swap(position, position + 1);
                let mut changed = lines.clone();
                changed[line_index] = swapped.into_iter().collect();
                let error = read(changed.join("\n").as_bytes()).expect_err("accepted");
                assert!(
                    error.starts_with(&format!("line {}", line_index + 1)),
                    "{error}"
                );
            }
        }
        let mut moved = lines.clone();
        moved.swap(1, 2);
        assert!(read(moved.join("\n").as_bytes())
            .unwrap_err()
            .starts_with("line 2"));
        let mut dropped = lines.clone();
        dropped.remove(lines.len() - 2);
        assert!(read(dropped.join("\n").as_bytes()).is_err());
        let mut without_end = lines.clone();
        without_end.pop();
        assert!(read(without_end.join("\n").as_bytes())
            .unwrap_err()
            .contains("SUM"));
    }

    #[test]
    fn garbage_and_huge_text_are_refused() {
        assert!(read(b"").is_err());
        assert!(read(b"hello\nworld").unwrap_err().starts_with("line 1"));
        assert!(read(b"LICET RETURN REQUEST\nUUUUU  00\nSUM 0000")
            .unwrap_err()
            .contains("`U`"));
        assert!(read(&vec![b'A'; MAX_TEXT_BYTES + 1]).is_err());
        assert!(read(&[0xff, 0xfe]).is_err());
    }
}
