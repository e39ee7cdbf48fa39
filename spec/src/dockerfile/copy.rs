//! COPY and ADD: flags, file sources vs heredoc sources, destination;
//! parsed into [`Copy`] and [`Add`].

use super::flags::{FlagKind, FlagSpec, flag, parse_flags};
use super::heredoc::{chomp_heredoc_content, parse_heredoc};
use super::instruction::{Add, Copy, InlineSource, InstructionError};
use super::parser::Node;

type Parsed<T> = Result<T, InstructionError>;

const ADD_FLAGS: &[FlagSpec] = &[
    flag("chown", FlagKind::String),
    flag("chmod", FlagKind::String),
    flag("link", FlagKind::Bool),
    flag("checksum", FlagKind::String),
    flag("keep-git-dir", FlagKind::Bool),
    flag("exclude", FlagKind::Strings),
    flag("unpack", FlagKind::Bool),
];

const COPY_FLAGS: &[FlagSpec] = &[
    flag("from", FlagKind::String),
    flag("chown", FlagKind::String),
    flag("chmod", FlagKind::String),
    flag("link", FlagKind::Bool),
    flag("parents", FlagKind::Bool),
    flag("exclude", FlagKind::Strings),
];

/// Splits COPY/ADD arguments into file sources, heredoc sources and dest.
fn sources_and_dest(name: &str, node: &Node) -> Parsed<(Vec<String>, Vec<InlineSource>, String)> {
    let Some((dest, sources)) = node.args.split_last().filter(|(_, s)| !s.is_empty()) else {
        return Err(InstructionError::new(
            format!(
                "{name} requires at least two arguments, but only one was provided. Destination could not be determined"
            ),
            format!("write `{name} <source>... <destination>`"),
        ));
    };
    if !node.json && parse_heredoc(dest).is_some() {
        return Err(InstructionError::new(
            format!("{name} cannot accept a heredoc as a destination"),
            "heredocs can only be sources",
        )
        .at(dest.clone()));
    }
    let mut paths = Vec::new();
    let mut inline = Vec::new();
    for src in sources {
        match parse_heredoc(src).filter(|_| !node.json) {
            Some(doc) => {
                let body = node
                    .heredocs
                    .iter()
                    .find(|h| h.name == doc.name)
                    .map(|h| h.content.clone())
                    .unwrap_or_default();
                inline.push(InlineSource {
                    data: if doc.chomp {
                        chomp_heredoc_content(&body)
                    } else {
                        body
                    },
                    path: doc.name,
                    expand: doc.expand,
                });
            }
            None => paths.push(src.clone()),
        }
    }
    Ok((paths, inline, dest.clone()))
}

pub(crate) fn parse_copy(node: &Node) -> Parsed<Copy> {
    let flags = parse_flags("COPY", &node.flags, COPY_FLAGS)?;
    let (sources, inline_sources, dest) = sources_and_dest("COPY", node)?;
    Ok(Copy {
        sources,
        inline_sources,
        dest,
        from: flags.string("from"),
        chown: flags.string("chown"),
        chmod: flags.string("chmod"),
        link: flags.bool("link"),
        parents: flags.bool("parents"),
        exclude: flags.strings("exclude"),
    })
}

pub(crate) fn parse_add(node: &Node) -> Parsed<Add> {
    let flags = parse_flags("ADD", &node.flags, ADD_FLAGS)?;
    let (sources, inline_sources, dest) = sources_and_dest("ADD", node)?;
    Ok(Add {
        sources,
        inline_sources,
        dest,
        chown: flags.string("chown"),
        chmod: flags.string("chmod"),
        link: flags.bool("link"),
        checksum: flags.string("checksum"),
        keep_git_dir: flags.bool("keep-git-dir"),
        exclude: flags.strings("exclude"),
        unpack: flags.is_set("unpack").then(|| flags.bool("unpack")),
    })
}
