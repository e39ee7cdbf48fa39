//! A YAML document as a tree of [`Node`]s that remember where they came from.
//!
//! Compose files are merged, interpolated, extended and included before they
//! are typed; keeping a [`Span`] on every node through all of that is what lets
//! a schema error in an included file point at that file's line and column.
//! Anchors, aliases and `<<` merge keys are resolved while parsing, so later
//! stages never see them. The `!reset` and `!override` tags that Compose uses
//! in override files are kept on the node as a [`Tag`].

use std::path::Path;
use std::sync::Arc;

use crate::diag::Diagnostic;

mod build;
mod merge;
mod scalar;

pub use build::{MAX_DEPTH, MAX_NODES};

/// Where a node starts: file, 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Span {
    pub file: Arc<Path>,
    pub line: u32,
    pub column: u32,
}

impl Span {
    pub fn new(file: Arc<Path>, line: u32, column: u32) -> Self {
        Self { file, line, column }
    }
}

/// Compose's merge tags: `!reset` removes the value inherited from an earlier
/// file or an extended service, `!override` replaces it instead of merging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    Reset,
    Override,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    Seq(Vec<Node>),
    /// In file order; keys are unique (a duplicate key is a parse error).
    Map(Vec<Entry>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_span: Span,
    pub value: Node,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub span: Span,
    pub tag: Option<Tag>,
}

/// One step of a key path: a map key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathSeg {
    Key(String),
    Index(usize),
}

/// `services.web.ports[0].published`: the form diagnostics show.
pub fn display_path(path: &[PathSeg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            PathSeg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            PathSeg::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    out
}

impl Node {
    pub fn new(value: Value, span: Span) -> Self {
        Self {
            value,
            span,
            tag: None,
        }
    }

    /// The value under `key` when this node is a map.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|e| e.key == key).map(|e| &e.value),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        match &mut self.value {
            Value::Map(entries) => entries
                .iter_mut()
                .find(|e| e.key == key)
                .map(|e| &mut e.value),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn entries(&self) -> &[Entry] {
        match &self.value {
            Value::Map(entries) => entries,
            _ => &[],
        }
    }

    /// The deepest node along `path`, and the span to report for it: the
    /// key's own span when the path ends on a map key that exists, so an
    /// error about `ports` points at the word `ports`. Used to place errors
    /// that come from later stages (schema, typed decode) which only know a
    /// path.
    pub fn locate(&self, path: &[PathSeg]) -> &Span {
        let mut node = self;
        let mut span = &self.span;
        for seg in path {
            let next = match (seg, &node.value) {
                (PathSeg::Key(k), Value::Map(entries)) => entries
                    .iter()
                    .find(|e| &e.key == k)
                    .map(|e| (&e.key_span, &e.value)),
                (PathSeg::Index(i), Value::Seq(items)) => items.get(*i).map(|n| (&n.span, n)),
                _ => None,
            };
            match next {
                Some((s, n)) => {
                    span = s;
                    node = n;
                }
                None => break,
            }
        }
        span
    }

    /// The plain JSON value, for schema validation and typed decoding.
    /// Tags are dropped: they must have been applied by then.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(J::Number)
                .unwrap_or(J::Null),
            Value::String(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|e| (e.key.clone(), e.value.to_json()))
                    .collect(),
            ),
        }
    }
}

/// Parses one YAML document into a [`Node`] tree.
///
/// Scalars resolve like compose-go's yaml.v3 (YAML 1.2 core schema: only
/// `true`/`false` are booleans, `yes`/`on` stay strings; quoted and block
/// scalars are always strings). Anchors, aliases and `<<` merge keys are
/// resolved; `!reset` and `!override` are kept in [`Node::tag`].
///
/// An empty document (or one holding only comments) gives a `Null` node.
/// Errors carry the file, line and column of the first problem: YAML
/// syntax, duplicate or non-scalar keys, unknown tags, a second document,
/// nesting deeper than [`MAX_DEPTH`] or more than [`MAX_NODES`] nodes after
/// alias expansion.
pub fn parse(text: &str, file: Arc<Path>) -> Result<Node, Diagnostic> {
    build::parse_document(text, file)
}

/// Parses every YAML document of a stream (`---` separated), in order,
/// skipping empty ones; empty when the text holds none. Compose merges the
/// documents of one file like files given with `-f`.
pub fn parse_documents(text: &str, file: Arc<Path>) -> Result<Vec<Node>, Diagnostic> {
    build::parse_stream(text, file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(line: u32, column: u32) -> Span {
        Span::new(Arc::from(Path::new("c.yaml")), line, column)
    }

    #[test]
    fn parse_documents_returns_each_non_empty_document_in_order() {
        let file: Arc<Path> = Arc::from(Path::new("c.yaml"));
        let text = "---\n---\na: 1\n---\nb: 2\n...\n";
        let docs = parse_documents(text, file.clone()).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].get("a").map(|n| &n.value), Some(&Value::Int(1)));
        assert_eq!(docs[1].get("b").map(|n| &n.value), Some(&Value::Int(2)));
        assert_eq!(docs[1].span.line, 4, "a later document starts at its `---`");
        assert!(
            parse_documents("# only a comment\n", file.clone())
                .unwrap()
                .is_empty()
        );
        assert!(parse(text, file).is_err(), "parse takes one document only");
    }

    #[test]
    fn display_path_joins_keys_and_indexes() {
        let path = [
            PathSeg::Key("services".into()),
            PathSeg::Key("web".into()),
            PathSeg::Key("ports".into()),
            PathSeg::Index(0),
        ];
        assert_eq!(display_path(&path), "services.web.ports[0]");
    }

    #[test]
    fn locate_stops_at_deepest_existing_node() {
        let inner = Node::new(Value::String("x".into()), span(3, 5));
        let services = Node::new(
            Value::Map(vec![Entry {
                key: "web".into(),
                key_span: span(2, 3),
                value: Node::new(
                    Value::Map(vec![Entry {
                        key: "image".into(),
                        key_span: span(3, 5),
                        value: inner,
                    }]),
                    span(3, 5),
                ),
            }]),
            span(2, 3),
        );
        let root = Node::new(
            Value::Map(vec![Entry {
                key: "services".into(),
                key_span: span(1, 1),
                value: services,
            }]),
            span(1, 1),
        );
        let p = |s: &[&str]| {
            s.iter()
                .map(|k| PathSeg::Key(k.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(root.locate(&p(&["services", "web", "image"])).line, 3);
        assert_eq!(root.locate(&p(&["services", "web", "nope"])).line, 2);
        assert_eq!(root.locate(&p(&["services", "db"])).line, 1);
    }
}
