//! Turns saphyr-parser's event stream into a [`Node`] tree.
//!
//! The builder keeps an explicit stack instead of recursing, so a deeply
//! nested input cannot overflow the Rust stack; nesting beyond
//! [`MAX_DEPTH`] is an error. Aliases are copied when they are met, and the
//! running node count (copies included) is capped at [`MAX_NODES`], which
//! stops "billion laughs" inputs before they allocate.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span as RawSpan, Tag as RawTag};

use super::merge;
use super::scalar::resolve_plain;
use super::{Node, PathSeg, Span, Tag, Value, display_path};
use crate::diag::Diagnostic;

/// Deepest nesting of mappings and sequences accepted, aliases included.
pub const MAX_DEPTH: usize = 256;
/// Most nodes a document may hold once aliases are expanded.
pub const MAX_NODES: usize = 1_000_000;

const CORE_TAG_PREFIX: &str = "tag:yaml.org,2002:";

const TAG_HINT: &str = "Compose understands the !reset and !override tags and YAML's standard \
                        tags (!!str, !!int, !!float, !!bool, !!null, !!map, !!seq)";

/// Parses the text and returns the single document's root, or a `Null` node
/// when the text holds no document at all.
pub(super) fn parse_document(text: &str, file: Arc<Path>) -> Result<Node, Diagnostic> {
    let mut documents = parse_stream(text, file.clone())?;
    if documents.len() > 1 {
        let second = documents.swap_remove(1);
        return Err(Diagnostic::error("more than one YAML document in the file")
            .at(&second.span)
            .hint(
                "this reader takes one document; split the file at this `---`, or load it as a \
                 Compose file, where later documents merge onto earlier ones",
            ));
    }
    Ok(documents
        .pop()
        .unwrap_or_else(|| Node::new(Value::Null, Span::new(file, 1, 1))))
}

/// Parses every document of the text, in order. Documents that are empty
/// (`---` with nothing after it) are skipped; the result is empty when the
/// text holds no document at all.
pub(super) fn parse_stream(text: &str, file: Arc<Path>) -> Result<Vec<Node>, Diagnostic> {
    let mut parser = Parser::new_from_str(text);
    let mut builder = Builder::new(file.clone());
    let mut documents: Vec<Node> = Vec::new();
    let mut doc_start = Span::new(file.clone(), 1, 1);
    while let Some(next) = parser.next_event() {
        let (event, raw_span) = match next {
            Ok(ok) => ok,
            Err(e) => return Err(builder.syntax_error(&e)),
        };
        match event {
            Event::DocumentStart(_) => {
                builder.start_document();
                doc_start = builder.span(&raw_span);
            }
            Event::DocumentEnd => {
                let Some(mut root) = builder.root.take() else {
                    continue;
                };
                if root.value == Value::Null && root.tag.is_none() {
                    continue;
                }
                // Place the document where its `---` is, so an error about
                // the document as a whole points there.
                if documents.is_empty() || root.span.line < doc_start.line {
                    documents.push(root);
                } else {
                    root.span = doc_start.clone();
                    documents.push(root);
                }
            }
            Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
            other => builder.on_event(other, &raw_span)?,
        }
    }
    Ok(documents)
}

pub(super) struct Key {
    pub(super) text: String,
    pub(super) span: Span,
    pub(super) is_merge: bool,
}

pub(super) struct PendingEntry {
    pub(super) key: Key,
    pub(super) value: Node,
}

#[derive(Default)]
pub(super) struct MapState {
    pub(super) entries: Vec<PendingEntry>,
    /// Key text → index in `entries`, built only once a mapping is large:
    /// most mappings have a handful of keys, where a scan is cheaper than
    /// hashing, and a 1,000-service `services:` must not be quadratic.
    index: Option<HashMap<String, usize>>,
    key: Option<Key>,
}

/// Mappings with more keys than this get a hash index for duplicates.
const INDEX_AFTER: usize = 16;

impl MapState {
    /// Where `text` was set before in this mapping, if it was.
    fn earlier(&self, text: &str) -> Option<&Span> {
        let i = match &self.index {
            Some(index) => *index.get(text)?,
            None => self.entries.iter().position(|e| e.key.text == text)?,
        };
        self.entries.get(i).map(|e| &e.key.span)
    }

    /// Records a completed entry.
    pub(super) fn push(&mut self, entry: PendingEntry) {
        if let Some(index) = &mut self.index {
            index.insert(entry.key.text.clone(), self.entries.len());
        } else if self.entries.len() >= INDEX_AFTER {
            let mut index: HashMap<String, usize> = self
                .entries
                .iter()
                .enumerate()
                .map(|(i, e)| (e.key.text.clone(), i))
                .collect();
            index.insert(entry.key.text.clone(), self.entries.len());
            self.index = Some(index);
        }
        self.entries.push(entry);
    }
}

enum FrameKind {
    Seq(Vec<Node>),
    Map(MapState),
}

struct Frame {
    kind: FrameKind,
    span: Span,
    tag: Option<Tag>,
    anchor: usize,
    nodes_before: usize,
    child_height: usize,
}

struct Anchored {
    node: Node,
    size: usize,
    height: usize,
}

enum TagKind<'a> {
    Reset,
    Override,
    NonSpecific,
    Core(&'a str),
    Unknown(String),
}

fn classify(tag: &RawTag) -> TagKind<'_> {
    if tag.handle == CORE_TAG_PREFIX {
        return TagKind::Core(&tag.suffix);
    }
    let local = if tag.handle == "!" {
        Some(tag.suffix.as_str())
    } else if tag.handle.is_empty() {
        // Verbatim tags: `!<tag:yaml.org,2002:str>` or `!<!reset>`.
        if let Some(core) = tag.suffix.strip_prefix(CORE_TAG_PREFIX) {
            return TagKind::Core(core);
        }
        tag.suffix.strip_prefix('!')
    } else {
        None
    };
    match local {
        Some("") => TagKind::NonSpecific,
        Some("reset") => TagKind::Reset,
        Some("override") => TagKind::Override,
        _ => TagKind::Unknown(tag.to_string()),
    }
}

struct Builder {
    file: Arc<Path>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Anchored>,
    nodes: usize,
    root: Option<Node>,
}

impl Builder {
    fn new(file: Arc<Path>) -> Self {
        Self {
            file,
            stack: Vec::new(),
            anchors: HashMap::new(),
            nodes: 0,
            root: None,
        }
    }

    fn start_document(&mut self) {
        self.stack.clear();
        self.anchors.clear();
        self.nodes = 0;
        self.root = None;
    }

    fn span(&self, raw: &RawSpan) -> Span {
        let line = u32::try_from(raw.start.line()).unwrap_or(u32::MAX).max(1);
        let column = u32::try_from(raw.start.col())
            .unwrap_or(u32::MAX)
            .saturating_add(1);
        Span::new(self.file.clone(), line, column)
    }

    /// The key path from the root to the innermost open collection, plus
    /// the key waiting for its value there, if any.
    fn path(&self) -> Vec<PathSeg> {
        let mut path = Vec::with_capacity(self.stack.len());
        for frame in &self.stack {
            match &frame.kind {
                FrameKind::Seq(items) => path.push(PathSeg::Index(items.len())),
                FrameKind::Map(state) => match &state.key {
                    Some(key) => path.push(PathSeg::Key(key.text.clone())),
                    None => break,
                },
            }
        }
        path
    }

    fn error_at(&self, message: impl Into<String>, span: &Span) -> Diagnostic {
        Diagnostic::error(message)
            .at(span)
            .key(display_path(&self.path()))
    }

    fn syntax_error(&self, e: &ScanError) -> Diagnostic {
        let mark = e.marker();
        let line = u32::try_from(mark.line()).unwrap_or(u32::MAX).max(1);
        let column = u32::try_from(mark.col())
            .unwrap_or(u32::MAX)
            .saturating_add(1);
        let info = e.info();
        let (message, hint) = if info.contains("unknown anchor") {
            (
                "alias refers to an anchor that is not defined".to_owned(),
                "define `&name` on a node before any `*name` that repeats it",
            )
        } else if info.contains("recursion limit") {
            (
                "invalid YAML: brackets nest too deeply".to_owned(),
                "no Compose file needs this much nesting",
            )
        } else {
            (
                format!("invalid YAML: {info}"),
                "check the indentation (spaces only, children indented under their parent) \
                 and that every quote and bracket is closed",
            )
        };
        Diagnostic::error(message)
            .in_file(self.file.to_path_buf())
            .line_col(line, column)
            .key(display_path(&self.path()))
            .hint(hint)
    }

    fn expecting_key(&self) -> bool {
        matches!(
            self.stack.last(),
            Some(Frame {
                kind: FrameKind::Map(MapState { key: None, .. }),
                ..
            })
        )
    }

    fn count_nodes(&mut self, n: usize, span: &Span) -> Result<(), Diagnostic> {
        match self.nodes.checked_add(n) {
            Some(total) if total <= MAX_NODES => {
                self.nodes = total;
                Ok(())
            }
            _ => Err(self
                .error_at(
                    format!("the document expands to more than {MAX_NODES} nodes through aliases"),
                    span,
                )
                .hint("aliases that copy aliases multiply quickly; reduce the aliases")),
        }
    }

    fn on_event(&mut self, event: Event<'_>, raw: &RawSpan) -> Result<(), Diagnostic> {
        let span = self.span(raw);
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                self.on_scalar(&text, style, anchor, tag.as_deref(), span)
            }
            Event::SequenceStart(anchor, tag) => {
                self.start_collection(FrameKind::Seq(Vec::new()), anchor, tag.as_deref(), span)
            }
            Event::MappingStart(anchor, tag) => self.start_collection(
                FrameKind::Map(MapState::default()),
                anchor,
                tag.as_deref(),
                span,
            ),
            Event::SequenceEnd | Event::MappingEnd => self.end_collection(),
            Event::Alias(id) => self.on_alias(id, span),
            _ => Ok(()),
        }
    }

    fn scalar_value(
        &self,
        text: &str,
        style: ScalarStyle,
        tag: Option<&RawTag>,
        span: &Span,
    ) -> Result<(Value, Option<Tag>), Diagnostic> {
        let untagged = || {
            if style == ScalarStyle::Plain {
                resolve_plain(text)
            } else {
                Value::String(text.to_owned())
            }
        };
        let Some(tag) = tag else {
            return Ok((untagged(), None));
        };
        match classify(tag) {
            TagKind::Reset => Ok((untagged(), Some(Tag::Reset))),
            TagKind::Override => Ok((untagged(), Some(Tag::Override))),
            TagKind::NonSpecific => Ok((Value::String(text.to_owned()), None)),
            TagKind::Core(name) => self.core_scalar(name, text, span).map(|v| (v, None)),
            TagKind::Unknown(shown) => Err(self
                .error_at(format!("unknown tag {shown}"), span)
                .hint(TAG_HINT)),
        }
    }

    /// Applies an explicit `!!type` tag, as yaml.v3 does: the text must
    /// resolve to that type (quoted or not).
    fn core_scalar(&self, name: &str, text: &str, span: &Span) -> Result<Value, Diagnostic> {
        let resolved = resolve_plain(text);
        let value = match (name, resolved) {
            ("str" | "binary" | "timestamp" | "merge", _) => Some(Value::String(text.to_owned())),
            ("null", Value::Null) => Some(Value::Null),
            ("bool", v @ Value::Bool(_)) | ("int", v @ Value::Int(_)) => Some(v),
            ("float", v @ Value::Float(_)) => Some(v),
            #[allow(clippy::cast_precision_loss)]
            ("float", Value::Int(i)) => Some(Value::Float(i as f64)),
            ("null" | "bool" | "int" | "float", _) => None,
            ("map" | "seq" | "omap" | "set" | "pairs", _) => {
                return Err(self
                    .error_at(format!("the tag !!{name} cannot be used on a scalar"), span)
                    .hint(format!("remove the tag, or write a {name} here")));
            }
            _ => {
                return Err(self
                    .error_at(format!("unknown tag !!{name}"), span)
                    .hint(TAG_HINT));
            }
        };
        value.ok_or_else(|| {
            self.error_at(format!("cannot read {text:?} as !!{name}"), span)
                .hint(format!("remove the tag, or give a valid {name} value"))
        })
    }

    fn collection_tag(
        &self,
        tag: Option<&RawTag>,
        is_map: bool,
        span: &Span,
    ) -> Result<Option<Tag>, Diagnostic> {
        let Some(tag) = tag else {
            return Ok(None);
        };
        let what = if is_map { "mapping" } else { "sequence" };
        match classify(tag) {
            TagKind::Reset => Ok(Some(Tag::Reset)),
            TagKind::Override => Ok(Some(Tag::Override)),
            TagKind::NonSpecific => Ok(None),
            TagKind::Core("map" | "omap") if is_map => Ok(None),
            TagKind::Core("seq" | "set" | "pairs") if !is_map => Ok(None),
            TagKind::Core(name) => Err(self
                .error_at(format!("the tag !!{name} cannot be used on a {what}"), span)
                .hint(TAG_HINT)),
            TagKind::Unknown(shown) => Err(self
                .error_at(format!("unknown tag {shown}"), span)
                .hint(TAG_HINT)),
        }
    }

    fn on_scalar(
        &mut self,
        text: &str,
        style: ScalarStyle,
        anchor: usize,
        tag: Option<&RawTag>,
        span: Span,
    ) -> Result<(), Diagnostic> {
        let (value, node_tag) = self.scalar_value(text, style, tag, &span)?;
        self.count_nodes(1, &span)?;
        if self.expecting_key() {
            let is_merge = text == "<<"
                && style == ScalarStyle::Plain
                && tag.is_none_or(|t| matches!(classify(t), TagKind::Core("merge")));
            let key_text = match &value {
                Value::Int(i) => i.to_string(),
                _ => text.to_owned(),
            };
            if anchor != 0 {
                let node = Node {
                    value,
                    span: span.clone(),
                    tag: node_tag,
                };
                self.remember(anchor, &node, 1, 1);
            }
            return self.set_key(Key {
                text: key_text,
                span,
                is_merge,
            });
        }
        let node = Node {
            value,
            span,
            tag: node_tag,
        };
        self.complete(node, anchor, 1, 1)
    }

    fn on_alias(&mut self, id: usize, span: Span) -> Result<(), Diagnostic> {
        let Some(anchored) = self.anchors.get(&id) else {
            return Err(self
                .error_at("alias points into the node that defines its anchor", &span)
                .hint("an alias can only repeat a node that is complete before the alias"));
        };
        let (size, height) = (anchored.size, anchored.height);
        if self.expecting_key() {
            let text = match &anchored.node.value {
                Value::String(s) => s.clone(),
                Value::Int(i) => i.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Float(f) => f.to_string(),
                Value::Null => String::new(),
                Value::Seq(_) | Value::Map(_) => {
                    return Err(self
                        .error_at(
                            "a mapping key must be a string, not an alias to a collection",
                            &span,
                        )
                        .hint("keys are plain names"));
                }
            };
            self.count_nodes(1, &span)?;
            return self.set_key(Key {
                text,
                span,
                is_merge: false,
            });
        }
        if self.stack.len().saturating_add(height) > MAX_DEPTH {
            return Err(self
                .error_at(
                    format!("aliases nest deeper than {MAX_DEPTH} levels"),
                    &span,
                )
                .hint("flatten the structure or use fewer nested aliases"));
        }
        self.count_nodes(size, &span)?;
        let Some(mut node) = self.anchors.get(&id).map(|a| a.node.clone()) else {
            return Ok(());
        };
        // The copy's content keeps the spans where it is written; the copy
        // itself is reported where the alias stands.
        node.span = span;
        self.complete(node, 0, size, height)
    }

    fn start_collection(
        &mut self,
        kind: FrameKind,
        anchor: usize,
        tag: Option<&RawTag>,
        span: Span,
    ) -> Result<(), Diagnostic> {
        let is_map = matches!(kind, FrameKind::Map(_));
        if self.expecting_key() {
            let what = if is_map { "mapping" } else { "sequence" };
            return Err(self
                .error_at(
                    format!("a mapping key must be a string, not a {what}"),
                    &span,
                )
                .hint("keys are plain names; quote a key that contains [ ] { } or :"));
        }
        if self.stack.len() >= MAX_DEPTH {
            return Err(self
                .error_at(format!("nesting is deeper than {MAX_DEPTH} levels"), &span)
                .hint("no Compose file needs this much nesting"));
        }
        let tag = self.collection_tag(tag, is_map, &span)?;
        let nodes_before = self.nodes;
        self.count_nodes(1, &span)?;
        self.stack.push(Frame {
            kind,
            span,
            tag,
            anchor,
            nodes_before,
            child_height: 0,
        });
        Ok(())
    }

    fn end_collection(&mut self) -> Result<(), Diagnostic> {
        let Some(frame) = self.stack.pop() else {
            return Ok(());
        };
        let value = match frame.kind {
            FrameKind::Seq(items) => Value::Seq(items),
            FrameKind::Map(state) => Value::Map(merge::apply(state, &self.path())?),
        };
        let node = Node {
            value,
            span: frame.span,
            tag: frame.tag,
        };
        let size = self.nodes.saturating_sub(frame.nodes_before);
        self.complete(
            node,
            frame.anchor,
            size,
            frame.child_height.saturating_add(1),
        )
    }

    fn remember(&mut self, anchor: usize, node: &Node, size: usize, height: usize) {
        self.anchors.insert(
            anchor,
            Anchored {
                node: node.clone(),
                size,
                height,
            },
        );
    }

    fn complete(
        &mut self,
        node: Node,
        anchor: usize,
        size: usize,
        height: usize,
    ) -> Result<(), Diagnostic> {
        if anchor != 0 {
            self.remember(anchor, &node, size, height);
        }
        let Some(frame) = self.stack.last_mut() else {
            self.root = Some(node);
            return Ok(());
        };
        frame.child_height = frame.child_height.max(height);
        match &mut frame.kind {
            FrameKind::Seq(items) => items.push(node),
            FrameKind::Map(state) => match state.key.take() {
                Some(key) => state.push(PendingEntry { key, value: node }),
                // The parser always gives a key before a value.
                None => {
                    let span = node.span.clone();
                    return Err(self.error_at("mapping value without a key", &span));
                }
            },
        }
        Ok(())
    }

    fn set_key(&mut self, key: Key) -> Result<(), Diagnostic> {
        let earlier = match self.stack.last() {
            Some(Frame {
                kind: FrameKind::Map(state),
                ..
            }) => state.earlier(&key.text).cloned(),
            _ => None,
        };
        if let Some(first) = earlier {
            let mut path = self.path();
            path.push(PathSeg::Key(key.text.clone()));
            return Err(Diagnostic::error(format!("duplicate key {:?}", key.text))
                .at(&key.span)
                .key(display_path(&path))
                .hint(format!(
                    "{:?} is already set at line {}, column {}; a key may appear only once in a mapping",
                    key.text, first.line, first.column
                )));
        }
        if let Some(Frame {
            kind: FrameKind::Map(state),
            ..
        }) = self.stack.last_mut()
        {
            state.key = Some(key);
        }
        Ok(())
    }
}
