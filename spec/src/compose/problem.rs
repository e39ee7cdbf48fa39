//! [`PathProblem`]: a problem at a key path of the merged document, the one
//! shape the schema check and the typed decode both report, placed at file,
//! line and column by the loader.

use crate::compose::model::Hinted;
use crate::diag::Diagnostic;
use crate::yaml::{Node, PathSeg, display_path};

/// What is wrong at `path`, and what would be valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathProblem {
    pub path: Vec<PathSeg>,
    pub message: String,
    pub hint: Option<String>,
}

impl PathProblem {
    pub fn new(path: Vec<PathSeg>, message: impl Into<String>) -> Self {
        Self {
            path,
            message: message.into(),
            hint: None,
        }
    }

    pub(crate) fn from_hinted(path: Vec<PathSeg>, h: Hinted) -> Self {
        Self {
            path,
            message: h.message,
            hint: h.hint,
        }
    }

    pub fn with_hint(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }

    /// An error placed with the node tree the value came from.
    pub fn to_diagnostic(&self, root: &Node) -> Diagnostic {
        self.place(Diagnostic::error(&self.message), root)
    }

    /// Same, as a warning.
    pub fn to_warning(&self, root: &Node) -> Diagnostic {
        self.place(Diagnostic::warning(&self.message), root)
    }

    fn place(&self, d: Diagnostic, root: &Node) -> Diagnostic {
        let d = d.at(root.locate(&self.path)).key(display_path(&self.path));
        match &self.hint {
            Some(h) => d.hint(h),
            None => d,
        }
    }
}

impl std::fmt::Display for PathProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = display_path(&self.path);
        if !p.is_empty() {
            write!(f, "{p}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(h) = &self.hint {
            write!(f, " (hint: {h})")?;
        }
        Ok(())
    }
}
