//! Dockerfiles: text -> untyped nodes ([`parser::Ast`], [`parser::Node`])
//! -> typed instructions and stages ([`Dockerfile`], [`Stage`],
//! [`Instruction`]), plus Dockerfile word expansion ([`shell`]) and the
//! BuildKit tree dump used by the conformance tests ([`dump`]).
//!
//! The model is BuildKit's `frontend/dockerfile`: the parser splits
//! arguments exactly like BuildKit's (checked byte for byte against its
//! test files), and the typed layer applies BuildKit's per-instruction
//! rules. Variables are not expanded here: the builder calls
//! [`shell::expand_word`] (or [`Instruction::expand`]) with the stage's
//! ARG/ENV environment.

pub(crate) mod args;
mod copy;
pub mod dump;
mod expand;
pub(crate) mod flags;
mod healthcheck;
pub mod heredoc;
pub mod instruction;
pub mod mounts;
pub mod parser;
pub mod pattern;
pub mod shell;
pub mod stages;

pub use healthcheck::parse_go_duration;
pub use heredoc::Heredoc;
pub use instruction::{
    Add, ArgDecl, CommandLine, Copy, FromSpec, Healthcheck, InlineSource, Instruction, KeyValue,
    NetworkMode, Run, SecurityMode,
};
pub use mounts::{CacheSharing, Mount, MountType};
pub use parser::{Ast, Directive, Node};
pub use shell::{EnvLookup, ExpandError, expand_word, expand_words};
pub use stages::{Command, Dockerfile, Location, Stage};
