//! `<<` merge keys, applied when a mapping is complete.

use std::collections::HashSet;

use super::build::{Key, MapState};
use super::{Entry, Node, PathSeg, Span, Value, display_path};
use crate::diag::Diagnostic;

/// Applies `<<` merge keys like yaml.v3: keys written in the mapping win
/// over merged ones, and in `<<: [*a, *b]` the earlier source wins. Merged
/// entries take the place of the `<<` key. `path` leads to the mapping.
pub(super) fn apply(state: MapState, path: &[PathSeg]) -> Result<Vec<Entry>, Diagnostic> {
    let has_merge = state.entries.iter().any(|e| e.key.is_merge);
    let mut out = Vec::with_capacity(state.entries.len());
    if !has_merge {
        out.extend(state.entries.into_iter().map(|e| Entry {
            key: e.key.text,
            key_span: e.key.span,
            value: e.value,
        }));
        return Ok(out);
    }
    let explicit: HashSet<String> = state
        .entries
        .iter()
        .filter(|e| !e.key.is_merge)
        .map(|e| e.key.text.clone())
        .collect();
    let mut merged: HashSet<String> = HashSet::new();
    for pending in state.entries {
        if !pending.key.is_merge {
            out.push(Entry {
                key: pending.key.text,
                key_span: pending.key.span,
                value: pending.value,
            });
            continue;
        }
        for source in sources(pending.value, &pending.key, path)? {
            for entry in source {
                if explicit.contains(&entry.key) || !merged.insert(entry.key.clone()) {
                    continue;
                }
                out.push(entry);
            }
        }
    }
    Ok(out)
}

fn sources(value: Node, key: &Key, path: &[PathSeg]) -> Result<Vec<Vec<Entry>>, Diagnostic> {
    let bad = |span: &Span| {
        let mut path = path.to_vec();
        path.push(PathSeg::Key(key.text.clone()));
        Diagnostic::error("a merge key << needs a mapping or a list of mappings")
            .at(span)
            .key(display_path(&path))
            .hint("write `<<: *anchor` or `<<: [*a, *b]` where the anchors name mappings")
    };
    match value.value {
        Value::Map(entries) => Ok(vec![entries]),
        Value::Seq(items) => items
            .into_iter()
            .map(|item| match item.value {
                Value::Map(entries) => Ok(entries),
                _ => Err(bad(&item.span)),
            })
            .collect(),
        _ => Err(bad(&value.span)),
    }
}
