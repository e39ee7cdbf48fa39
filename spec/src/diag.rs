//! Diagnostics: every problem the parsers find, pointing at file, line,
//! column and key, with a hint that says what would be valid.

use std::fmt;
use std::path::PathBuf;

/// How bad a diagnostic is. Warnings come back beside a successful result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem in the user's input.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// The file the problem is in; empty when it is not tied to one file
    /// (for example a bad `--env-file` value given on the command line).
    pub file: PathBuf,
    /// 1-based; 0 when unknown.
    pub line: u32,
    /// 1-based; 0 when unknown.
    pub column: u32,
    /// The key path in dotted form, `services.web.ports[0].published`;
    /// empty for problems that are not about one key.
    pub key: String,
    /// What is wrong, lower case, no trailing period.
    pub message: String,
    /// What would be valid, or how to fix it.
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            file: PathBuf::new(),
            line: 0,
            column: 0,
            key: String::new(),
            message: message.into(),
            hint: None,
        }
    }

    pub fn warning(message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(message)
        }
    }

    pub fn at(mut self, span: &crate::yaml::Span) -> Self {
        self.file = span.file.to_path_buf();
        self.line = span.line;
        self.column = span.column;
        self
    }

    pub fn in_file(mut self, file: impl Into<PathBuf>) -> Self {
        self.file = file.into();
        self
    }

    pub fn line_col(mut self, line: u32, column: u32) -> Self {
        self.line = line;
        self.column = column;
        self
    }

    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = key.into();
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    /// `compose.yaml:12:7: services.web.ports[0]: message (hint: ...)`, the
    /// shape compilers use so editors can jump to the spot.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.file.as_os_str().is_empty() {
            write!(f, "{}", self.file.display())?;
            if self.line > 0 {
                write!(f, ":{}", self.line)?;
                if self.column > 0 {
                    write!(f, ":{}", self.column)?;
                }
            }
            write!(f, ": ")?;
        }
        if self.severity == Severity::Warning {
            write!(f, "warning: ")?;
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        write!(f, "{}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

/// A non-empty list of diagnostics with at least one error: what a failed
/// load returns. Display prints one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics(vec![d])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_file_line_column_key_and_hint() {
        let d = Diagnostic::error("invalid port \"80800\"")
            .in_file("/p/compose.yaml")
            .line_col(12, 7)
            .key("services.web.ports[0]")
            .hint("a port is a number from 0 to 65535");
        assert_eq!(
            d.to_string(),
            "/p/compose.yaml:12:7: services.web.ports[0]: invalid port \"80800\" (hint: a port is a number from 0 to 65535)"
        );
    }

    #[test]
    fn display_without_file_or_key() {
        assert_eq!(Diagnostic::warning("x").to_string(), "warning: x");
    }
}
