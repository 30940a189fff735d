//! Exchange files packed into as few bytes as their content allows, and rebuilt byte for byte.
//!
//! ```text
//! kind:u8 (1..4, as block::Kind)  form:u8 (0 the file's bytes follow, 1 machine, 2 license-server)
//! request:  key product edition version:value  fingerprint  nonce:[32]  created-at:varint
//!           then certificate-serial:value (return) or server-key:[32] (license server)
//! response: signed:compressed  signature:[64]  serial:varint (offset + 1 of the serial's
//!           length-prefixed string in the signed bytes, or 0 then serial:value)
//! ```
//!
//! A value is a varint `length << 1 | hex` and then the bytes, or for `hex` (an even number of
//! lowercase hexadecimal digits) the bytes they spell. A fingerprint is a varint count of
//! components, each a name (a byte: 1 `cpu`, 2 `disk`, 3 `mac`, 4 `machine-id`, or 0 then a value)
//! and a value. A response's readable fields are left out: they say what its signed bytes say
//! (the reader refuses the file otherwise), so they are rebuilt from those bytes. The signed bytes
//! are compressed by [`compress`]: literal runs, copies of earlier output, and length-prefixed
//! hexadecimal strings as the bytes they spell.
//!
//! Packing checks that unpacking gives the exact bytes back; a file it cannot rebuild exactly is
//! carried whole (form 0), so nothing is ever changed on the way.

use alloc::string::String;
use alloc::vec::Vec;

use licet_plugin_sdk::{base64_decode, base64_encode, hex};

use crate::block::Kind;
use crate::xml::{self, File, Item};

const RAW: u8 = 0;
const MACHINE: u8 = 1;
const LICENSE_SERVER: u8 = 2;
const NAMES: [&str; 4] = ["cpu", "disk", "mac", "machine-id"];
const REQUEST_ITEMS: [&str; 7] = [
    "key",
    "product",
    "edition",
    "version",
    "fingerprint",
    "nonce",
    "created-at",
];
const RESPONSE_ITEMS: [&str; 9] = [
    "key",
    "fingerprint",
    "request-digest",
    "nonce",
    "update-counter",
    "issued-at",
    "certificate-serial",
    "signed",
    "signature",
];
/// The largest file unpacked, as an exchange file may be.
const MAX_FILE_BYTES: usize = 64 * 1024;
const EXCHANGE_MAGIC: &[u8] = b"LICET-EXCHANGE";

/// The kind of an exchange file, from its root element.
pub fn kind_of(file: &[u8]) -> Option<Kind> {
    let head = file.get(..file.len().min(200))?;
    let head = core::str::from_utf8(head).ok().or_else(|| {
        // Cut inside a character: read what is whole.
        core::str::from_utf8(&head[..head.len().saturating_sub(3)]).ok()
    })?;
    [
        ("<licet-activation-request ", Kind::ActivationRequest),
        ("<licet-return-request ", Kind::ReturnRequest),
        ("<licet-activation-response ", Kind::ActivationResponse),
        ("<licet-return-response ", Kind::ReturnResponse),
    ]
    .into_iter()
    .find(|(root, _)| head.contains(root))
    .map(|(_, kind)| kind)
}

/// Packs an exchange file of `kind`.
pub fn pack(kind: Kind, file: &[u8]) -> Vec<u8> {
    let packed = xml::parse(file).and_then(|parsed| {
        if kind.is_request() {
            pack_request(kind, &parsed)
        } else {
            pack_response(&parsed)
        }
    });
    let mut out = Vec::with_capacity(file.len() / 2);
    out.push(kind.tag());
    if let Some(packed) = packed {
        out.extend_from_slice(&packed);
        if unpack(kind, &out).as_deref() == Ok(file) {
            return out;
        }
        out.truncate(1);
    }
    out.push(RAW);
    out.extend_from_slice(file);
    out
}

/// Rebuilds the exchange file `bytes` packs; the kind must be `kind`.
pub fn unpack(kind: Kind, bytes: &[u8]) -> Result<Vec<u8>, &'static str> {
    let mut input = Reader(bytes);
    if input.u8()? != kind.tag() {
        return Err("the block's header names another kind than its content");
    }
    let form = input.u8()?;
    if form == RAW {
        let file = input.0.to_vec();
        if file.len() > MAX_FILE_BYTES {
            return Err("the file is too large");
        }
        return Ok(file);
    }
    let role = match form {
        MACHINE => "machine",
        LICENSE_SERVER => "license-server",
        _ => return Err("unknown form"),
    };
    let file = if kind.is_request() {
        unpack_request(kind, role, &mut input)?
    } else {
        unpack_response(kind, role, &mut input)?
    };
    if !input.0.is_empty() {
        return Err("trailing bytes");
    }
    Ok(xml::render(&file))
}

fn role_form(role: &str) -> Option<u8> {
    match role {
        "machine" => Some(MACHINE),
        "license-server" => Some(LICENSE_SERVER),
        _ => None,
    }
}

fn pack_request(kind: Kind, file: &File) -> Option<Vec<u8>> {
    let form = role_form(&file.role)?;
    let mut expected: Vec<&str> = REQUEST_ITEMS.to_vec();
    match (kind, form) {
        (Kind::ReturnRequest, _) => expected.push("certificate-serial"),
        (_, LICENSE_SERVER) => expected.push("server-key"),
        _ => {}
    }
    if file.names() != expected {
        return None;
    }
    let mut out = alloc::vec![form];
    for item in &file.items {
        match item {
            Item::Fingerprint(components) => put_fingerprint(&mut out, components),
            Item::Leaf(name, value) => match name.as_str() {
                "nonce" => out.extend_from_slice(&hex_bytes(value, 32)?),
                "created-at" => put_varint(&mut out, parse_time(value)?),
                "server-key" => {
                    let key = base64_decode(value).filter(|key| key.len() == 32)?;
                    out.extend_from_slice(&key);
                }
                _ => put_value(&mut out, value),
            },
        }
    }
    Some(out)
}

fn unpack_request(kind: Kind, role: &str, input: &mut Reader<'_>) -> Result<File, &'static str> {
    let mut names: Vec<&str> = REQUEST_ITEMS.to_vec();
    match (kind, role) {
        (Kind::ReturnRequest, _) => names.push("certificate-serial"),
        (_, "license-server") => names.push("server-key"),
        _ => {}
    }
    let mut items = Vec::with_capacity(names.len());
    for name in names {
        let item = match name {
            "fingerprint" => Item::Fingerprint(input.fingerprint()?),
            "nonce" => leaf(name, hex(input.take(32)?)),
            "created-at" => leaf(name, format_time(input.varint()?)?),
            "server-key" => leaf(name, base64_encode(input.take(32)?)),
            _ => leaf(name, input.value()?),
        };
        items.push(item);
    }
    let root = match kind {
        Kind::ReturnRequest => "licet-return-request",
        _ => "licet-activation-request",
    };
    Ok(File {
        root: String::from(root),
        role: String::from(role),
        items,
    })
}

fn leaf(name: &str, value: String) -> Item {
    Item::Leaf(String::from(name), value)
}

fn pack_response(file: &File) -> Option<Vec<u8>> {
    let form = role_form(&file.role)?;
    if file.names() != RESPONSE_ITEMS {
        return None;
    }
    let signed = base64_decode(file.leaf("signed")?)?;
    let signature = base64_decode(file.leaf("signature")?).filter(|sig| sig.len() == 64)?;
    let serial = file.leaf("certificate-serial")?;
    let mut out = alloc::vec![form];
    let compressed = compress(&signed);
    put_varint(&mut out, compressed.len() as u64);
    out.extend_from_slice(&compressed);
    out.extend_from_slice(&signature);
    match find_string(&signed, serial) {
        Some(offset) => put_varint(&mut out, offset as u64 + 1),
        None => {
            put_varint(&mut out, 0);
            put_value(&mut out, serial);
        }
    }
    Some(out)
}

fn unpack_response(kind: Kind, role: &str, input: &mut Reader<'_>) -> Result<File, &'static str> {
    let length = usize::try_from(input.varint()?).map_err(|_| "truncated")?;
    let signed = decompress(input.take(length)?)?;
    let signature = input.take(64)?;
    let serial = match input.varint()? {
        0 => input.value()?,
        offset => {
            let offset = usize::try_from(offset - 1).map_err(|_| "bad serial offset")?;
            let mut at = Reader(signed.get(offset..).ok_or("bad serial offset")?);
            let length = at.u32()? as usize;
            String::from(core::str::from_utf8(at.take(length)?).map_err(|_| "not UTF-8")?)
        }
    };
    // The readable fields, from the signed bytes (docs/exchange-files.md, "Signed content").
    let mut content = Reader(&signed);
    if content.take(EXCHANGE_MAGIC.len())? != EXCHANGE_MAGIC || content.u8()? != 1 {
        return Err("the signed content is not a licet exchange response");
    }
    content.take(2)?; // kind and role: the reader checks them against the file
    let key = content.string()?;
    let count = content.u32()?;
    if count > 64 {
        return Err("too many fingerprint components");
    }
    let mut components = Vec::new();
    for _ in 0..count {
        components.push((content.string()?, content.string()?));
    }
    let digest = hex(content.take(32)?);
    let nonce = hex(content.take(32)?);
    let counter = u64::from_be_bytes(content.array()?);
    let issued_at = i64::from_be_bytes(content.array()?);
    let issued_at = u64::try_from(issued_at).map_err(|_| "issue time out of range")?;
    let root = match kind {
        Kind::ReturnResponse => "licet-return-response",
        _ => "licet-activation-response",
    };
    Ok(File {
        root: String::from(root),
        role: String::from(role),
        items: alloc::vec![
            leaf("key", key),
            Item::Fingerprint(components),
            leaf("request-digest", digest),
            leaf("nonce", nonce),
            leaf("update-counter", decimal(counter)),
            leaf("issued-at", format_time(issued_at)?),
            leaf("certificate-serial", serial),
            leaf("signed", base64_encode(&signed)),
            leaf("signature", base64_encode(signature)),
        ],
    })
}

/// Where `text` sits in `bytes` as a string (a big-endian u32 length, then the bytes).
fn find_string(bytes: &[u8], text: &str) -> Option<usize> {
    let length = u32::try_from(text.len()).ok()?.to_be_bytes();
    let needle: Vec<u8> = [&length[..], text.as_bytes()].concat();
    bytes
        .windows(needle.len())
        .position(|window| window == needle.as_slice())
}

// ---- values ---------------------------------------------------------------------------------

fn is_hex(text: &str) -> bool {
    !text.is_empty()
        && text.len().is_multiple_of(2)
        && text
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
}

fn hex_bytes(text: &str, length: usize) -> Option<Vec<u8>> {
    if text.len() != length * 2 || !is_hex(text) {
        return None;
    }
    Some(unhex(text.as_bytes()))
}

fn unhex(text: &[u8]) -> Vec<u8> {
    let digit = |byte: u8| match byte {
        b'0'..=b'9' => byte - b'0',
        _ => byte - b'a' + 10,
    };
    text.chunks(2)
        .map(|pair| (digit(pair[0]) << 4) | digit(pair[1]))
        .collect()
}

fn put_value(out: &mut Vec<u8>, text: &str) {
    if is_hex(text) {
        put_varint(out, ((text.len() as u64 / 2) << 1) | 1);
        out.extend_from_slice(&unhex(text.as_bytes()));
    } else {
        put_varint(out, (text.len() as u64) << 1);
        out.extend_from_slice(text.as_bytes());
    }
}

fn put_fingerprint(out: &mut Vec<u8>, components: &[(String, String)]) {
    put_varint(out, components.len() as u64);
    for (name, value) in components {
        match NAMES.iter().position(|known| known == name) {
            Some(index) => out.push(index as u8 + 1),
            None => {
                out.push(0);
                put_value(out, name);
            }
        }
        put_value(out, value);
    }
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn decimal(mut value: u64) -> String {
    let mut digits = Vec::new();
    loop {
        digits.push(b'0' + (value % 10) as u8);
        value /= 10;
        if value == 0 {
            break;
        }
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> Result<&'a [u8], &'static str> {
        let (head, tail) = self.0.split_at_checked(count).ok_or("truncated")?;
        self.0 = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], &'static str> {
        self.take(N)?.try_into().map_err(|_| "truncated")
    }

    fn u8(&mut self) -> Result<u8, &'static str> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, &'static str> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn varint(&mut self) -> Result<u64, &'static str> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("a number is too long")
    }

    fn string(&mut self) -> Result<String, &'static str> {
        let length = self.u32()? as usize;
        let bytes = self.take(length)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| "not UTF-8")
    }

    fn value(&mut self) -> Result<String, &'static str> {
        let header = self.varint()?;
        let length = usize::try_from(header >> 1).map_err(|_| "truncated")?;
        let bytes = self.take(length)?;
        if header & 1 == 1 {
            Ok(hex(bytes))
        } else {
            String::from_utf8(bytes.to_vec()).map_err(|_| "not UTF-8")
        }
    }

    fn fingerprint(&mut self) -> Result<Vec<(String, String)>, &'static str> {
        let count = self.varint()?;
        if count > 64 {
            return Err("too many fingerprint components");
        }
        let mut components = Vec::new();
        for _ in 0..count {
            let name = match self.u8()? {
                0 => self.value()?,
                code => String::from(*NAMES.get(usize::from(code) - 1).ok_or("unknown name")?),
            };
            components.push((name, self.value()?));
        }
        Ok(components)
    }
}

// ---- times ----------------------------------------------------------------------------------

/// Unix seconds of `YYYY-MM-DDTHH:MM:SSZ`, years 1970 to 9999.
fn parse_time(text: &str) -> Option<u64> {
    let bytes = text.as_bytes();
    if bytes.len() != 20 || bytes[19] != b'Z' || bytes[10] != b'T' {
        return None;
    }
    let number = |range: core::ops::Range<usize>| -> Option<u64> {
        let digits = bytes.get(range)?;
        digits.iter().try_fold(0u64, |sum, &digit| {
            digit
                .is_ascii_digit()
                .then(|| sum * 10 + u64::from(digit - b'0'))
        })
    };
    let separators = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if separators.iter().any(|&(at, byte)| bytes[at] != byte) {
        return None;
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if year < 1970 || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

fn format_time(seconds: u64) -> Result<String, &'static str> {
    let (year, month, day) = civil_from_days(seconds / 86_400);
    if year > 9999 {
        return Err("time out of range");
    }
    let rest = seconds % 86_400;
    let mut text = String::with_capacity(20);
    for (value, width, after) in [
        (year, 4, "-"),
        (month, 2, "-"),
        (day, 2, "T"),
        (rest / 3600, 2, ":"),
        (rest / 60 % 60, 2, ":"),
        (rest % 60, 2, "Z"),
    ] {
        let digits = decimal(value);
        for _ in digits.len()..width {
            text.push('0');
        }
        text.push_str(&digits);
        text.push_str(after);
    }
    Ok(text)
}

/// Days since 1970-01-01 of a date from 1970 on (the proleptic Gregorian calendar counted in
/// 400-year eras of 146 097 days, each year starting on March 1).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year / 400;
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date `days` after 1970-01-01: the inverse of [`days_from_civil`].
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let days = days + 719_468;
    let era = days / 146_097;
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

// ---- compression ----------------------------------------------------------------------------

const END: u8 = 0;
const LITERAL: u8 = 1;
const COPY: u8 = 2;
const HEX: u8 = 3;
const MIN_COPY: usize = 5;
const BUCKETS: usize = 1 << 12;
const CANDIDATES: usize = 32;

/// Compresses length-prefixed canonical bytes: copies of earlier output (the fingerprint and the
/// key come twice in an activation response), lowercase hexadecimal strings (fingerprint values,
/// serials) as the bytes they spell, the rest as literal runs.
pub fn compress(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut heads: Vec<Vec<u32>> = alloc::vec![Vec::new(); BUCKETS];
    let mut literal_start = 0usize;
    let mut position = 0usize;
    let mut indexed = 0usize;
    let bucket = |at: usize| -> Option<usize> {
        let triple = bytes.get(at..at + 3)?;
        let hash = (u32::from(triple[0]) << 16 | u32::from(triple[1]) << 8 | u32::from(triple[2]))
            .wrapping_mul(2_654_435_761);
        Some((hash >> 20) as usize % BUCKETS)
    };
    while position < bytes.len() {
        while indexed < position {
            if let Some(index) = bucket(indexed) {
                heads[index].push(indexed as u32);
            }
            indexed += 1;
        }
        let (copy_from, copy_length) = bucket(position)
            .map(|index| longest_match(bytes, position, &heads[index]))
            .unwrap_or((0, 0));
        let hex_length = hex_string_at(bytes, position);
        let token_end = if hex_length > 0 && copy_length < 4 + hex_length {
            Some((HEX, position + 4 + hex_length))
        } else if copy_length >= MIN_COPY {
            Some((COPY, position + copy_length))
        } else {
            None
        };
        let Some((token, end)) = token_end else {
            position += 1;
            continue;
        };
        flush_literal(&mut out, &bytes[literal_start..position]);
        if token == HEX {
            out.push(HEX);
            put_varint(&mut out, hex_length as u64 / 2);
            out.extend_from_slice(&unhex(&bytes[position + 4..end]));
        } else {
            out.push(COPY);
            put_varint(&mut out, (position - copy_from) as u64);
            put_varint(&mut out, copy_length as u64);
        }
        position = end;
        literal_start = end;
    }
    flush_literal(&mut out, &bytes[literal_start..]);
    out.push(END);
    out
}

fn flush_literal(out: &mut Vec<u8>, literal: &[u8]) {
    if !literal.is_empty() {
        out.push(LITERAL);
        put_varint(out, literal.len() as u64);
        out.extend_from_slice(literal);
    }
}

fn longest_match(bytes: &[u8], position: usize, candidates: &[u32]) -> (usize, usize) {
    let mut best = (0, 0);
    for &start in candidates.iter().rev().take(CANDIDATES) {
        let start = start as usize;
        let length = bytes[start..]
            .iter()
            .zip(&bytes[position..])
            .take_while(|(a, b)| a == b)
            .count();
        if length > best.1 {
            best = (start, length);
        }
    }
    best
}

/// The length of the lowercase hexadecimal string that starts at `position` with its big-endian
/// u32 length (at least 8 digits, an even count), or 0.
fn hex_string_at(bytes: &[u8], position: usize) -> usize {
    let Some(prefix) = bytes.get(position..position + 4) else {
        return 0;
    };
    let length = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
    if length < 8 || !length.is_multiple_of(2) || length > 4096 {
        return 0;
    }
    match bytes.get(position + 4..position + 4 + length) {
        Some(digits)
            if digits
                .iter()
                .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f')) =>
        {
            length
        }
        _ => 0,
    }
}

/// The inverse of [`compress`]; refuses output beyond an exchange file's size.
pub fn decompress(mut input: &[u8]) -> Result<Vec<u8>, &'static str> {
    let mut out: Vec<u8> = Vec::new();
    loop {
        let mut reader = Reader(input);
        let token = reader.u8()?;
        match token {
            END => {
                if !reader.0.is_empty() {
                    return Err("trailing bytes");
                }
                return Ok(out);
            }
            LITERAL => {
                let length = usize::try_from(reader.varint()?).map_err(|_| "truncated")?;
                out.extend_from_slice(reader.take(length)?);
            }
            COPY => {
                let distance = usize::try_from(reader.varint()?).map_err(|_| "bad copy")?;
                let length = usize::try_from(reader.varint()?).map_err(|_| "bad copy")?;
                if distance == 0 || distance > out.len() || length > MAX_FILE_BYTES {
                    return Err("bad copy");
                }
                let start = out.len() - distance;
                for index in 0..length {
                    out.push(out[start + index]);
                    if out.len() > MAX_FILE_BYTES {
                        return Err("the content is too large");
                    }
                }
            }
            HEX => {
                let length = usize::try_from(reader.varint()?).map_err(|_| "truncated")?;
                let digits = hex(reader.take(length)?);
                let prefix = u32::try_from(digits.len()).map_err(|_| "too large")?;
                out.extend_from_slice(&prefix.to_be_bytes());
                out.extend_from_slice(digits.as_bytes());
            }
            _ => return Err("unknown token"),
        }
        if out.len() > MAX_FILE_BYTES {
            return Err("the content is too large");
        }
        input = reader.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip() {
        for seconds in [0u64, 86_399, 951_782_400, 1_798_794_000, 253_402_300_799] {
            let text = format_time(seconds).unwrap();
            assert_eq!(parse_time(&text), Some(seconds), "{text}");
        }
        assert_eq!(format_time(1_798_794_000).unwrap(), "2027-01-01T09:00:00Z");
        assert_eq!(
            parse_time("2027-02-29T00:00:00Z")
                .map(|s| format_time(s).unwrap())
                .as_deref(),
            Some("2027-03-01T00:00:00Z")
        );
        assert_eq!(parse_time("2027-01-01 09:00:00Z"), None);
    }

    #[test]
    fn compression_round_trips() {
        let mut bytes = b"LICET-EXCHANGE\x01\x01\x01".to_vec();
        for value in [
            "0123456789abcdef0123456789abcdef",
            "GCAD-PRO-0001",
            "0123456789abcdef0123456789abcdef",
        ] {
            bytes.extend_from_slice(&(value.len() as u32).to_be_bytes());
            bytes.extend_from_slice(value.as_bytes());
        }
        bytes.extend_from_slice(&[7; 40]);
        let compressed = compress(&bytes);
        assert!(
            compressed.len() < bytes.len() - 20,
            "{} of {}",
            compressed.len(),
            bytes.len()
        );
        assert_eq!(decompress(&compressed).unwrap(), bytes);
        for cut in 0..compressed.len() {
            assert!(decompress(&compressed[..cut]).is_err());
        }
    }
}
