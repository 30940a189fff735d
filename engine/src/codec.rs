//! The canonical binary encoding shared by signed documents, and their armored text form.
//!
//! Strings are a big-endian `u32` length and UTF-8; integers and times (Unix seconds) big-endian
//! `i64`; booleans and option flags one byte, 0 or 1; maps a `u32` count then entries in strictly
//! ascending key order. Readers reject anything else.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, Utc};

use crate::certificate::{Binding, BindingRule, CertificateError, TermKind, MAX_MAP_ENTRIES};

const ARMOR_WIDTH: usize = 64;

pub(crate) struct Writer(pub(crate) Vec<u8>);

impl Writer {
    pub(crate) fn bytes(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    pub(crate) fn u8(&mut self, value: u8) {
        self.0.push(value);
    }

    pub(crate) fn len(&mut self, len: usize) {
        // Lengths beyond u32 cannot occur within the size limit; saturate rather than wrap.
        self.bytes(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    }

    pub(crate) fn string(&mut self, text: &str) {
        self.len(text.len());
        self.bytes(text.as_bytes());
    }

    pub(crate) fn i64(&mut self, value: i64) {
        self.bytes(&value.to_be_bytes());
    }

    pub(crate) fn binding(&mut self, binding: &Binding) {
        match binding {
            Binding::Fingerprint(components) => {
                self.u8(1);
                self.len(components.len());
                for (name, value) in components {
                    self.string(name);
                    self.string(value);
                }
            }
            Binding::Dongle(serial) => {
                self.u8(2);
                self.string(serial);
            }
        }
    }

    /// A binding's rule: absent (0), or 1 then the components (a `u32` count and strictly
    /// ascending strings), `match_at_least` as `i64` and the salt id.
    pub(crate) fn binding_rule(&mut self, rule: Option<&BindingRule>) {
        let Some(rule) = rule else {
            self.u8(0);
            return;
        };
        self.u8(1);
        self.len(rule.components.len());
        for component in &rule.components {
            self.string(component);
        }
        self.i64(i64::from(rule.match_at_least));
        self.string(&rule.salt_id);
    }

    pub(crate) fn optional_time(&mut self, time: Option<DateTime<Utc>>) {
        match time {
            Some(time) => {
                self.u8(1);
                self.i64(time.timestamp());
            }
            None => self.u8(0),
        }
    }
}

pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn take(&mut self, count: usize) -> Result<&'a [u8], CertificateError> {
        let (head, tail) = self
            .0
            .split_at_checked(count)
            .ok_or(CertificateError::Truncated)?;
        self.0 = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], CertificateError> {
        self.take(N)?
            .try_into()
            .map_err(|_| CertificateError::Truncated)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, CertificateError> {
        Ok(u8::from_be_bytes(self.array()?))
    }

    pub(crate) fn len(&mut self) -> Result<usize, CertificateError> {
        let len = u32::from_be_bytes(self.array()?);
        let len = usize::try_from(len).map_err(|_| CertificateError::Truncated)?;
        // A length can never exceed what is left: reject before anything is allocated.
        if len > self.0.len() {
            return Err(CertificateError::Truncated);
        }
        Ok(len)
    }

    pub(crate) fn i64(&mut self) -> Result<i64, CertificateError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    pub(crate) fn bool(&mut self, field: &'static str) -> Result<bool, CertificateError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            tag => Err(CertificateError::InvalidTag { field, tag }),
        }
    }

    pub(crate) fn string(&mut self, field: &'static str) -> Result<String, CertificateError> {
        let len = self.len()?;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| CertificateError::InvalidUtf8 { field })
    }

    pub(crate) fn map<V>(
        &mut self,
        field: &'static str,
        mut value: impl FnMut(&mut Self) -> Result<V, CertificateError>,
    ) -> Result<BTreeMap<String, V>, CertificateError> {
        let count = u32::from_be_bytes(self.array()?);
        if usize::try_from(count).map_or(true, |count| count > MAX_MAP_ENTRIES) {
            return Err(CertificateError::NonCanonicalMap { field });
        }
        let mut entries = BTreeMap::new();
        for _ in 0..count {
            let key = self.string(field)?;
            // Keys must be strictly ascending, so each must sort after the largest so far.
            if entries
                .last_key_value()
                .is_some_and(|(last, _): (&String, _)| *last >= key)
            {
                return Err(CertificateError::NonCanonicalMap { field });
            }
            let entry = value(self)?;
            entries.insert(key, entry);
        }
        Ok(entries)
    }

    pub(crate) fn binding(&mut self) -> Result<Binding, CertificateError> {
        match self.u8()? {
            1 => Ok(Binding::Fingerprint(
                self.map("binding", |input| input.string("binding"))?,
            )),
            2 => Ok(Binding::Dongle(self.string("binding")?)),
            tag => Err(CertificateError::InvalidTag {
                field: "binding",
                tag,
            }),
        }
    }

    /// The rule of `binding`: present for (and only for) a fingerprint binding, naming its
    /// components once each in ascending order and asking for 1 to all of them.
    pub(crate) fn binding_rule(
        &mut self,
        binding: &Binding,
    ) -> Result<Option<BindingRule>, CertificateError> {
        const FIELD: &str = "binding_rule";
        let invalid = || CertificateError::InvalidValue { field: FIELD };
        let present = match self.u8()? {
            0 => false,
            1 => true,
            tag => return Err(CertificateError::InvalidTag { field: FIELD, tag }),
        };
        if present != matches!(binding, Binding::Fingerprint(_)) {
            return Err(invalid());
        }
        if !present {
            return Ok(None);
        }
        let count = u32::from_be_bytes(self.array()?);
        if usize::try_from(count).map_or(true, |count| count > MAX_MAP_ENTRIES) {
            return Err(CertificateError::NonCanonicalMap { field: FIELD });
        }
        let mut components: Vec<String> = Vec::new();
        for _ in 0..count {
            let component = self.string(FIELD)?;
            if components.last().is_some_and(|last| *last >= component) {
                return Err(CertificateError::NonCanonicalMap { field: FIELD });
            }
            components.push(component);
        }
        let match_at_least = self.i64()?;
        if match_at_least < 1 || match_at_least > i64::from(count) {
            return Err(invalid());
        }
        let salt_id = self.string(FIELD)?;
        Ok(Some(BindingRule {
            components,
            match_at_least: u32::try_from(match_at_least).map_err(|_| invalid())?,
            salt_id,
        }))
    }

    pub(crate) fn term(&mut self) -> Result<TermKind, CertificateError> {
        match self.u8()? {
            1 => Ok(TermKind::Perpetual),
            2 => Ok(TermKind::Rental),
            3 => Ok(TermKind::Trial),
            tag => Err(CertificateError::InvalidTag { field: "term", tag }),
        }
    }

    pub(crate) fn time(&mut self, field: &'static str) -> Result<DateTime<Utc>, CertificateError> {
        DateTime::from_timestamp(self.i64()?, 0)
            .ok_or(CertificateError::TimestampOutOfRange { field })
    }

    pub(crate) fn optional_time(
        &mut self,
        field: &'static str,
    ) -> Result<Option<DateTime<Utc>>, CertificateError> {
        match self.u8()? {
            0 => Ok(None),
            1 => self.time(field).map(Some),
            tag => Err(CertificateError::InvalidTag { field, tag }),
        }
    }
}

/// The armored text form of `bytes`: base64 wrapped at 64 columns between `begin` and `end` lines.
pub(crate) fn armor(bytes: &[u8], begin: &str, end: &str) -> String {
    let encoded = STANDARD.encode(bytes);
    let mut text = String::with_capacity(encoded.len() + encoded.len() / ARMOR_WIDTH + 80);
    text.push_str(begin);
    text.push('\n');
    let mut rest = encoded.as_str();
    while !rest.is_empty() {
        let (line, tail) = rest.split_at(rest.len().min(ARMOR_WIDTH));
        text.push_str(line);
        text.push('\n');
        rest = tail;
    }
    text.push_str(end);
    text.push('\n');
    text
}

/// The bytes of armored text written by [`armor`]; whitespace around it and `\r\n` line endings
/// are accepted, any other change to the layout is not.
pub(crate) fn unarmor(text: &str, begin: &str, end: &str) -> Result<Vec<u8>, CertificateError> {
    let encoded = armored_body(text.trim(), begin, end)?;
    STANDARD
        .decode(encoded.as_bytes())
        .map_err(|_| CertificateError::Armor("invalid base64"))
}

/// The base64 between the BEGIN and END lines of trimmed armored text, checking the line layout.
fn armored_body(text: &str, begin: &str, end: &str) -> Result<String, CertificateError> {
    let mut lines = text
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line));
    if lines.next() != Some(begin) {
        return Err(CertificateError::Armor("missing BEGIN line"));
    }
    if lines.next_back() != Some(end) {
        return Err(CertificateError::Armor("missing END line"));
    }
    let mut encoded = String::with_capacity(text.len());
    let mut lines = lines.peekable();
    while let Some(line) = lines.next() {
        let width_ok = if lines.peek().is_some() {
            line.len() == ARMOR_WIDTH
        } else {
            (1..=ARMOR_WIDTH).contains(&line.len())
        };
        if !width_ok {
            return Err(CertificateError::Armor(
                "base64 is not wrapped at 64 columns",
            ));
        }
        encoded.push_str(line);
    }
    if encoded.is_empty() {
        return Err(CertificateError::Armor(
            "no certificate between BEGIN and END",
        ));
    }
    Ok(encoded)
}
