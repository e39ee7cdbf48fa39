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
pub mod dump;
pub mod heredoc;
pub mod parser;
pub mod pattern;
pub mod shell;
