//! Checks on a Compose file's shape: type coercion of interpolated values,
//! then the Compose JSON schema, each problem placed at its file, line and
//! column.

use crate::diag::Diagnostic;
use crate::yaml::Node;

use super::schema;

/// Coerces interpolated strings to the types the schema wants, then
/// validates one file's document against the schema. Returns false when an
/// error was recorded.
pub fn check_file_shape(doc: &mut Node, errors: &mut Vec<Diagnostic>) -> bool {
    let before = errors.len();
    errors.extend(schema::coerce(doc));
    if errors[before..].iter().any(Diagnostic::is_error) {
        return false;
    }
    let json = doc.to_json();
    errors.extend(
        schema::validate(&json)
            .iter()
            .map(|violation| violation.to_diagnostic(doc)),
    );
    !errors[before..].iter().any(Diagnostic::is_error)
}
