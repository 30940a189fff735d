//! Finds the line and column of a node in a YAML document, for error messages.
//!
//! The YAML deserializer knows the position of every node but exposes it only on errors. The
//! locator walks the document with a deserializer that follows a path of keys and indices and
//! deliberately fails on the node at the end of the path: the error then carries that node's
//! position. This runs only when a policy is rejected, never on the happy path.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// One step of a path into a YAML document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSegment {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

impl fmt::Display for PathSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathSegment::Key(key) => f.write_str(key),
            PathSegment::Index(index) => write!(f, "[{index}]"),
        }
    }
}

/// A path from the document root to one node, for example `license_types.network-key.borrowing`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodePath(pub Vec<PathSegment>);

impl NodePath {
    /// The root of the document.
    pub fn root() -> Self {
        NodePath(Vec::new())
    }

    /// This path extended by a mapping key.
    pub fn key(&self, key: &str) -> Self {
        let mut segments = self.0.clone();
        segments.push(PathSegment::Key(key.to_owned()));
        NodePath(segments)
    }

    /// This path extended by a sequence index.
    pub fn index(&self, index: usize) -> Self {
        let mut segments = self.0.clone();
        segments.push(PathSegment::Index(index));
        NodePath(segments)
    }
}

impl fmt::Display for NodePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for segment in &self.0 {
            match segment {
                PathSegment::Key(_) if !first => write!(f, ".{segment}")?,
                _ => write!(f, "{segment}")?,
            }
            first = false;
        }
        Ok(())
    }
}

/// A one-based line and column in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// One-based line.
    pub line: usize,
    /// One-based column.
    pub column: usize,
}

const FOUND: &str = "licet-locator-found";

/// The position of the node at `path`, or of its nearest existing ancestor.
pub fn locate(source: &str, path: &NodePath) -> Position {
    // Try the full path first, then shorter prefixes, so a missing key points at its parent.
    for len in (0..=path.0.len()).rev() {
        let prefix = path.0.get(..len).unwrap_or_default();
        if let Some(position) = locate_exact(source, prefix) {
            return position;
        }
    }
    Position { line: 1, column: 1 }
}

fn locate_exact(source: &str, path: &[PathSegment]) -> Option<Position> {
    let deserializer = serde_yaml::Deserializer::from_str(source);
    match (Probe { path }).deserialize(deserializer) {
        Ok(()) => None,
        Err(error) if error.to_string().contains(FOUND) => {
            let location = error.location()?;
            Some(Position {
                line: location.line(),
                column: location.column(),
            })
        }
        Err(_) => None,
    }
}

struct Probe<'a> {
    path: &'a [PathSegment],
}

impl<'de> DeserializeSeed<'de> for Probe<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Probe<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((PathSegment::Key(wanted), rest)) = self.path.split_first() else {
            return Err(de::Error::custom(FOUND));
        };
        while let Some(key) = map.next_key::<String>()? {
            if &key == wanted {
                return map.next_value_seed(Probe { path: rest });
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((PathSegment::Index(wanted), rest)) = self.path.split_first() else {
            return Err(de::Error::custom(FOUND));
        };
        let mut index = 0;
        loop {
            if index == *wanted {
                return seq.next_element_seed(Probe { path: rest }).map(|_| ());
            }
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.leaf()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.leaf()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.leaf()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.leaf()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.leaf()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.leaf()
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.leaf()
    }
}

impl Probe<'_> {
    fn leaf<E: de::Error>(&self) -> Result<(), E> {
        if self.path.is_empty() {
            Err(E::custom(FOUND))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "a: 1\nb:\n  c: [x, y]\n  d:\n    - e: true\n    - f: 2\n";

    #[test]
    fn finds_nested_keys_and_indices() {
        let at = |path: NodePath| locate(DOC, &path);
        let root = NodePath::root();
        assert_eq!(at(root.key("a")), Position { line: 1, column: 4 });
        assert_eq!(at(root.key("b").key("c").index(1)).line, 3);
        assert_eq!(
            at(root.key("b").key("d").index(1).key("f")),
            Position {
                line: 6,
                column: 10
            }
        );
    }

    #[test]
    fn missing_node_points_at_nearest_ancestor() {
        let position = locate(DOC, &NodePath::root().key("b").key("d").key("zzz"));
        assert_eq!(position.line, 5);
    }

    #[test]
    fn paths_display_as_dotted_names() {
        let path = NodePath::root().key("rules").index(2).key("on");
        assert_eq!(path.to_string(), "rules[2].on");
    }
}
