//! The exchange files' layout, exactly as licet writes them (`docs/exchange-files.md`): an XML
//! declaration, the root element with `format="1"` and `role`, one element per line indented by
//! two spaces, fingerprint components indented by four. Reading accepts only that layout; anything
//! else is carried unchanged.

use alloc::string::String;
use alloc::vec::Vec;

const DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";

/// One element under the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// `<name>value</name>`, the value unescaped.
    Leaf(String, String),
    /// `<fingerprint>` with its components, names and values unescaped.
    Fingerprint(Vec<(String, String)>),
}

/// A file: root element name, role and elements in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub root: String,
    pub role: String,
    pub items: Vec<Item>,
}

impl File {
    /// The value of leaf `name`.
    pub fn leaf(&self, name: &str) -> Option<&str> {
        self.items.iter().find_map(|item| match item {
            Item::Leaf(leaf, value) if leaf == name => Some(value.as_str()),
            _ => None,
        })
    }

    /// The element names in order.
    pub fn names(&self) -> Vec<&str> {
        self.items
            .iter()
            .map(|item| match item {
                Item::Leaf(name, _) => name.as_str(),
                Item::Fingerprint(_) => "fingerprint",
            })
            .collect()
    }
}

/// Reads a file written in licet's layout; `None` for anything else.
pub fn parse(bytes: &[u8]) -> Option<File> {
    let text = core::str::from_utf8(bytes).ok()?;
    let body = text.strip_suffix('\n')?;
    let mut lines = body.split('\n');
    if lines.next()? != DECLARATION {
        return None;
    }
    let open = lines.next()?;
    let rest = open.strip_prefix('<')?.strip_suffix("\">")?;
    let (root, rest) = rest.split_once(" format=\"1\" role=\"")?;
    if !is_name(root) || !is_name(rest) {
        return None;
    }
    let close = [String::from("</"), String::from(root), String::from(">")].concat();
    let mut items = Vec::new();
    let mut components: Option<Vec<(String, String)>> = None;
    let mut closed = false;
    for line in lines {
        if closed {
            return None;
        }
        if let Some(list) = components.as_mut() {
            if line == "  </fingerprint>" {
                items.push(Item::Fingerprint(components.take()?));
                continue;
            }
            let inner = line
                .strip_prefix("    <component name=\"")?
                .strip_suffix("</component>")?;
            let (name, value) = inner.split_once("\">")?;
            list.push((unescape(name)?, unescape(value)?));
            continue;
        }
        if line == close {
            closed = true;
        } else if line == "  <fingerprint>" {
            components = Some(Vec::new());
        } else {
            let inner = line.strip_prefix("  <")?;
            let (name, rest) = inner.split_once('>')?;
            if !is_name(name) {
                return None;
            }
            let value = rest
                .strip_suffix('>')?
                .strip_suffix(name)?
                .strip_suffix("</")?;
            items.push(Item::Leaf(String::from(name), unescape(value)?));
        }
    }
    if !closed || components.is_some() {
        return None;
    }
    Some(File {
        root: String::from(root),
        role: String::from(rest),
        items,
    })
}

/// Writes a file in licet's layout.
pub fn render(file: &File) -> Vec<u8> {
    let mut text = String::with_capacity(1024);
    text.push_str(DECLARATION);
    text.push('\n');
    for part in [
        "<",
        &file.root,
        " format=\"1\" role=\"",
        &file.role,
        "\">\n",
    ] {
        text.push_str(part);
    }
    for item in &file.items {
        match item {
            Item::Leaf(name, value) => {
                for part in ["  <", name, ">"] {
                    text.push_str(part);
                }
                escape_into(&mut text, value);
                for part in ["</", name, ">\n"] {
                    text.push_str(part);
                }
            }
            Item::Fingerprint(components) => {
                text.push_str("  <fingerprint>\n");
                for (name, value) in components {
                    text.push_str("    <component name=\"");
                    escape_into(&mut text, name);
                    text.push_str("\">");
                    escape_into(&mut text, value);
                    text.push_str("</component>\n");
                }
                text.push_str("  </fingerprint>\n");
            }
        }
    }
    for part in ["</", &file.root, ">\n"] {
        text.push_str(part);
    }
    text.into_bytes()
}

fn is_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
}

/// The five entities licet writes; any other `&` or markup makes the file unreadable here.
fn unescape(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(index) = rest.find(['&', '<', '>', '"', '\'']) {
        out.push_str(&rest[..index]);
        let tail = &rest[index..];
        let (character, length) = [
            ("&amp;", '&'),
            ("&lt;", '<'),
            ("&gt;", '>'),
            ("&quot;", '"'),
            ("&apos;", '\''),
        ]
        .iter()
        .find(|(entity, _)| tail.starts_with(entity))
        .map(|(entity, character)| (*character, entity.len()))?;
        out.push(character);
        rest = &tail[length..];
    }
    out.push_str(rest);
    Some(out)
}

fn escape_into(out: &mut String, text: &str) {
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            other => out.push(other),
        }
    }
}
