//! A strict reader for exchange files and the helpers that write them.
//!
//! The reader builds a small element tree with quick-xml and refuses, before any field is looked
//! at, everything an exchange file never contains: more than [`MAX_FILE_BYTES`], other encodings
//! than UTF-8, a DOCTYPE (and so any entity declaration), entity references other than the five
//! predefined ones, processing instructions, nesting deeper than [`MAX_DEPTH`] and more than
//! [`MAX_ELEMENTS`] elements. The typed accessors then reject missing, repeated and unknown
//! elements and attributes.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use quick_xml::escape::{escape, unescape, EscapeError};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::{ExchangeError, MAX_COMPONENTS, MAX_DEPTH, MAX_ELEMENTS, MAX_FILE_BYTES};
use crate::fingerprint::Fingerprint;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";
const TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";
/// The latest time an exchange file can carry: 9999-12-31T23:59:59Z.
const LAST_TIMESTAMP: i64 = 253_402_300_799;

/// One element: its name, attributes in file order, child elements and text.
#[derive(Debug)]
pub(crate) struct Element {
    pub name: String,
    pub attributes: Vec<(String, String)>,
    pub children: Vec<Element>,
    pub text: String,
}

/// Parses a whole file into its root element.
pub(crate) fn parse_document(file: &[u8]) -> Result<Element, ExchangeError> {
    if file.len() > MAX_FILE_BYTES {
        return Err(ExchangeError::TooLarge);
    }
    let file = file.strip_prefix(UTF8_BOM).unwrap_or(file);
    let text = std::str::from_utf8(file).map_err(|_| ExchangeError::NotUtf8)?;
    let mut reader = Reader::from_str(text);
    reader.config_mut().check_comments = true;
    let mut open: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut elements = 0usize;
    let mut first_event = true;
    loop {
        let event = reader
            .read_event()
            .map_err(|error| ExchangeError::Xml(error.to_string()))?;
        let at_start = std::mem::replace(&mut first_event, false);
        match event {
            Event::Decl(declaration) => {
                if !at_start {
                    return Err(xml("the xml declaration must open the file"));
                }
                let version = declaration
                    .version()
                    .map_err(|error| ExchangeError::Xml(error.to_string()))?;
                if version != "1.0" {
                    return Err(ExchangeError::Xml(format!(
                        "unsupported xml version `{version}`"
                    )));
                }
                match declaration.encoding() {
                    None => {}
                    Some(Ok(encoding)) if encoding.eq_ignore_ascii_case("utf-8") => {}
                    Some(Ok(encoding)) => {
                        return Err(ExchangeError::UnsupportedEncoding(encoding.into_owned()))
                    }
                    Some(Err(error)) => return Err(ExchangeError::Xml(error.to_string())),
                }
            }
            Event::PI(instruction) => {
                return Err(ExchangeError::ProcessingInstruction(
                    instruction.target().to_owned(),
                ))
            }
            Event::DocType(_) => return Err(ExchangeError::DocType),
            Event::Start(start) => {
                elements += 1;
                if open.len() >= MAX_DEPTH {
                    return Err(ExchangeError::TooDeep);
                }
                if elements > MAX_ELEMENTS {
                    return Err(ExchangeError::TooManyElements);
                }
                open.push(element(&start)?);
            }
            Event::Empty(start) => {
                elements += 1;
                if open.len() >= MAX_DEPTH {
                    return Err(ExchangeError::TooDeep);
                }
                if elements > MAX_ELEMENTS {
                    return Err(ExchangeError::TooManyElements);
                }
                close(element(&start)?, &mut open, &mut root)?;
            }
            Event::End(_) => {
                let element = open.pop().ok_or_else(|| xml("unexpected end tag"))?;
                close(element, &mut open, &mut root)?;
            }
            Event::Text(text) => append_text(&mut open, &text.into_inner())?,
            Event::CData(data) => append_text(&mut open, &data.into_inner())?,
            Event::GeneralRef(reference) => {
                let resolved = match reference
                    .resolve_char_ref()
                    .map_err(|error| ExchangeError::Xml(error.to_string()))?
                {
                    Some(character) => character.to_string(),
                    None => predefined_entity(&reference)
                        .ok_or_else(|| ExchangeError::EntityReference(reference.to_string()))?
                        .to_owned(),
                };
                if open.is_empty() {
                    return Err(xml("a reference outside the root element"));
                }
                append_text(&mut open, &resolved)?;
            }
            Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(element) = open.last() {
        return Err(ExchangeError::Xml(format!(
            "element `{}` is not closed",
            element.name
        )));
    }
    root.ok_or_else(|| xml("no root element"))
}

fn xml(message: &str) -> ExchangeError {
    ExchangeError::Xml(message.to_owned())
}

fn predefined_entity(name: &str) -> Option<&'static str> {
    match name {
        "lt" => Some("<"),
        "gt" => Some(">"),
        "amp" => Some("&"),
        "apos" => Some("'"),
        "quot" => Some("\""),
        _ => None,
    }
}

fn element(start: &BytesStart<'_>) -> Result<Element, ExchangeError> {
    let name = start.name().as_ref().to_owned();
    let mut attributes: Vec<(String, String)> = Vec::new();
    let mut iterator = start.attributes();
    iterator.with_checks(false);
    for attribute in iterator {
        let attribute = attribute.map_err(|error| ExchangeError::Xml(error.to_string()))?;
        let key = attribute.key.as_ref().to_owned();
        if attributes.iter().any(|(existing, _)| *existing == key) {
            return Err(ExchangeError::DuplicateAttribute {
                element: name,
                attribute: key,
            });
        }
        if attribute.value.contains('<') {
            return Err(ExchangeError::Xml(format!(
                "`<` in the value of attribute `{key}`"
            )));
        }
        let value = unescape(&attribute.value).map_err(|error| match error {
            EscapeError::UnrecognizedEntity(_, entity) => ExchangeError::EntityReference(entity),
            other => ExchangeError::Xml(other.to_string()),
        })?;
        attributes.push((key, value.into_owned()));
    }
    Ok(Element {
        name,
        attributes,
        children: Vec::new(),
        text: String::new(),
    })
}

fn close(
    element: Element,
    open: &mut [Element],
    root: &mut Option<Element>,
) -> Result<(), ExchangeError> {
    match open.last_mut() {
        Some(parent) => parent.children.push(element),
        None if root.is_none() => *root = Some(element),
        None => return Err(xml("more than one root element")),
    }
    Ok(())
}

fn append_text(open: &mut [Element], text: &str) -> Result<(), ExchangeError> {
    match open.last_mut() {
        Some(element) => element.text.push_str(text),
        None if text.chars().all(|c| matches!(c, ' ' | '\t' | '\r' | '\n')) => {}
        None => return Err(xml("text outside the root element")),
    }
    Ok(())
}

// ---- typed access ---------------------------------------------------------------------------

impl Element {
    /// Checks the attributes against `allowed` and returns them by name.
    pub fn attributes(
        &self,
        allowed: &[&'static str],
    ) -> Result<BTreeMap<&'static str, &str>, ExchangeError> {
        let mut found = BTreeMap::new();
        for (name, value) in &self.attributes {
            let Some(known) = allowed.iter().find(|known| **known == name) else {
                return Err(ExchangeError::UnknownAttribute {
                    element: self.name.clone(),
                    attribute: name.clone(),
                });
            };
            found.insert(*known, value.as_str());
        }
        Ok(found)
    }

    /// The value of a required attribute.
    pub fn required<'a>(
        &self,
        attributes: &BTreeMap<&'static str, &'a str>,
        name: &'static str,
    ) -> Result<&'a str, ExchangeError> {
        attributes
            .get(name)
            .copied()
            .ok_or_else(|| ExchangeError::MissingAttribute {
                element: self.name.clone(),
                attribute: name,
            })
    }

    /// The children of an element that holds only elements, each named in `allowed` and at most
    /// once; text other than whitespace is refused.
    pub fn single_children(
        &self,
        allowed: &[&'static str],
    ) -> Result<BTreeMap<&'static str, &Element>, ExchangeError> {
        self.only_elements()?;
        let mut found = BTreeMap::new();
        for child in &self.children {
            let Some(known) = allowed.iter().find(|known| **known == child.name) else {
                return Err(ExchangeError::UnknownElement(format!(
                    "{}/{}",
                    self.name, child.name
                )));
            };
            if found.insert(*known, child).is_some() {
                return Err(ExchangeError::DuplicateElement(format!(
                    "{}/{}",
                    self.name, child.name
                )));
            }
        }
        Ok(found)
    }

    fn only_elements(&self) -> Result<(), ExchangeError> {
        if self
            .text
            .chars()
            .all(|c| matches!(c, ' ' | '\t' | '\r' | '\n'))
        {
            Ok(())
        } else {
            Err(ExchangeError::UnexpectedText(self.name.clone()))
        }
    }

    /// The text of a leaf element: no attributes, no children.
    pub fn leaf_text(&self) -> Result<&str, ExchangeError> {
        self.attributes(&[])?;
        if let Some(child) = self.children.first() {
            return Err(ExchangeError::UnknownElement(format!(
                "{}/{}",
                self.name, child.name
            )));
        }
        Ok(&self.text)
    }
}

/// The child called `name`, which must be there.
pub(crate) fn child<'a>(
    children: &BTreeMap<&'static str, &'a Element>,
    parent: &str,
    name: &'static str,
) -> Result<&'a Element, ExchangeError> {
    children
        .get(name)
        .copied()
        .ok_or_else(|| ExchangeError::MissingElement(format!("{parent}/{name}")))
}

/// The text of the leaf child called `name`, checked as a value.
pub(crate) fn value(
    children: &BTreeMap<&'static str, &Element>,
    parent: &str,
    name: &'static str,
) -> Result<String, ExchangeError> {
    let text = child(children, parent, name)?.leaf_text()?;
    check_value(name, text)?;
    Ok(text.to_owned())
}

/// The raw text of the leaf child called `name`.
pub(crate) fn raw<'a>(
    children: &BTreeMap<&'static str, &'a Element>,
    parent: &str,
    name: &'static str,
) -> Result<&'a str, ExchangeError> {
    child(children, parent, name)?.leaf_text()
}

/// A value is not empty, has no control characters and no surrounding whitespace.
pub(crate) fn check_value(field: &str, text: &str) -> Result<(), ExchangeError> {
    let invalid = |reason| ExchangeError::InvalidValue {
        field: field.to_owned(),
        reason,
    };
    if text.is_empty() {
        return Err(invalid("must not be empty"));
    }
    if text.chars().any(char::is_control) {
        return Err(invalid("must not contain control characters"));
    }
    if text.trim() != text {
        return Err(invalid("must not start or end with whitespace"));
    }
    Ok(())
}

/// A `<fingerprint>` element: one `<component name="...">value</component>` per component.
pub(crate) fn fingerprint(element: &Element) -> Result<Fingerprint, ExchangeError> {
    element.attributes(&[])?;
    element.only_elements()?;
    let mut components = BTreeMap::new();
    for component in &element.children {
        if component.name != "component" {
            return Err(ExchangeError::UnknownElement(format!(
                "fingerprint/{}",
                component.name
            )));
        }
        let attributes = component.attributes(&["name"])?;
        let name = component.required(&attributes, "name")?;
        check_value("fingerprint/component/@name", name)?;
        if !component.children.is_empty() {
            return Err(ExchangeError::UnknownElement(
                "fingerprint/component/*".to_owned(),
            ));
        }
        check_value("fingerprint/component", &component.text)?;
        if components
            .insert(name.to_owned(), component.text.clone())
            .is_some()
        {
            return Err(ExchangeError::DuplicateElement(format!(
                "fingerprint/component name=`{name}`"
            )));
        }
    }
    check_fingerprint(&components)?;
    Ok(Fingerprint { components })
}

pub(crate) fn check_fingerprint(
    components: &BTreeMap<String, String>,
) -> Result<(), ExchangeError> {
    let invalid = |reason| ExchangeError::InvalidValue {
        field: "fingerprint".to_owned(),
        reason,
    };
    if components.is_empty() {
        return Err(invalid("must have at least one component"));
    }
    if components.len() > MAX_COMPONENTS {
        return Err(invalid("has too many components"));
    }
    for (name, value) in components {
        check_value("fingerprint/component/@name", name)?;
        check_value("fingerprint/component", value)?;
    }
    Ok(())
}

/// A `YYYY-MM-DDTHH:MM:SSZ` time.
pub(crate) fn parse_time(field: &'static str, text: &str) -> Result<DateTime<Utc>, ExchangeError> {
    let invalid = || ExchangeError::InvalidTimestamp {
        field,
        value: text.to_owned(),
    };
    let time = NaiveDateTime::parse_from_str(text, TIME_FORMAT)
        .map_err(|_| invalid())?
        .and_utc();
    // A leap second (`:60`) would not survive being written back in whole seconds.
    if !(0..=LAST_TIMESTAMP).contains(&time.timestamp())
        || time.timestamp_subsec_nanos() != 0
        || format_time(time) != text
    {
        return Err(invalid());
    }
    Ok(time)
}

/// Checks that a time can be written, and drops its fraction of a second.
pub(crate) fn whole_seconds(
    field: &'static str,
    time: DateTime<Utc>,
) -> Result<DateTime<Utc>, ExchangeError> {
    let seconds = time.timestamp();
    if !(0..=LAST_TIMESTAMP).contains(&seconds) {
        return Err(ExchangeError::InvalidTimestamp {
            field,
            value: time.to_rfc3339(),
        });
    }
    DateTime::from_timestamp(seconds, 0).ok_or_else(|| ExchangeError::InvalidTimestamp {
        field,
        value: time.to_rfc3339(),
    })
}

pub(crate) fn format_time(time: DateTime<Utc>) -> String {
    time.format(TIME_FORMAT).to_string()
}

/// 32 bytes as 64 lowercase hexadecimal digits.
pub(crate) fn parse_hex32(field: &'static str, text: &str) -> Result<[u8; 32], ExchangeError> {
    let invalid = || ExchangeError::InvalidValue {
        field: field.to_owned(),
        reason: "must be 64 lowercase hexadecimal digits",
    };
    let digits = text.as_bytes();
    if digits.len() != 64 {
        return Err(invalid());
    }
    let mut bytes = [0u8; 32];
    for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
        let high = hex_digit(pair[0]).ok_or_else(invalid)?;
        let low = hex_digit(pair[1]).ok_or_else(invalid)?;
        *byte = (high << 4) | low;
    }
    Ok(bytes)
}

fn hex_digit(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

// ---- writing --------------------------------------------------------------------------------

/// Builds the text of an exchange file in the one layout the reader's canonical check expects.
pub(crate) struct XmlWriter(String);

impl XmlWriter {
    pub fn new(root: &str, role: &str) -> Self {
        let mut text = String::with_capacity(1024);
        text.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        text.push_str(&format!(
            "<{root} format=\"{}\" role=\"{role}\">\n",
            super::FORMAT_VERSION
        ));
        XmlWriter(text)
    }

    pub fn leaf(&mut self, name: &str, value: &str) {
        self.0
            .push_str(&format!("  <{name}>{}</{name}>\n", escape(value)));
    }

    pub fn fingerprint(&mut self, fingerprint: &Fingerprint) {
        self.0.push_str("  <fingerprint>\n");
        for (name, value) in &fingerprint.components {
            self.0.push_str(&format!(
                "    <component name=\"{}\">{}</component>\n",
                escape(name.as_str()),
                escape(value.as_str())
            ));
        }
        self.0.push_str("  </fingerprint>\n");
    }

    /// The text, or [`ExchangeError::TooLarge`] when no reader would accept it.
    pub fn finish(self, root: &str) -> Result<String, ExchangeError> {
        let text = self.finish_unchecked(root);
        if text.len() > MAX_FILE_BYTES {
            return Err(ExchangeError::TooLarge);
        }
        Ok(text)
    }

    /// The text, whatever its size.
    pub fn finish_unchecked(mut self, root: &str) -> String {
        self.0.push_str(&format!("</{root}>\n"));
        self.0
    }
}
