//! Checks on a Compose file's shape: type coercion of interpolated values,
//! then the Compose JSON schema, each problem placed at its file, line and
//! column.

use crate::diag::Diagnostic;
use crate::yaml::{Node, display_path};

use super::schema;

/// Coerces interpolated strings to the types the schema wants, then
/// validates one file's document against the schema. Every problem is
/// reported, not only the first: a value that could not be coerced is
/// reported once (the schema's complaint about the same key is dropped).
/// Returns false when an error was recorded.
pub fn check_file_shape(doc: &mut Node, errors: &mut Vec<Diagnostic>) -> bool {
    let before = errors.len();
    let coerced = schema::coerce(doc);
    let json = doc.to_json();
    let violations = schema::validate(&json);
    let already = |key: &str| {
        coerced
            .iter()
            .any(|d| key == d.key || key.starts_with(&format!("{}.", d.key)))
    };
    let from_schema: Vec<Diagnostic> = violations
        .iter()
        .filter(|v| !already(&display_path(&v.path)))
        .map(|v| v.to_diagnostic(doc))
        .collect();
    errors.extend(coerced);
    errors.extend(from_schema);
    // In file order, so a file with several problems reads top to bottom.
    errors[before..].sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    !errors[before..].iter().any(Diagnostic::is_error)
}
