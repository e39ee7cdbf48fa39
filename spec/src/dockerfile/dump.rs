//! BuildKit's parse-tree dump, the format of the upstream `result` files:
//! [`dump`] renders an [`Ast`] one `(keyword ["flags"] "args")` line per
//! instruction; [`go_quote`] is Go's `strconv.Quote`.

use std::fmt::Write as _;

use super::parser::{Ast, Node};

/// The whole tree, one line per instruction, ending with a newline.
pub fn dump(ast: &Ast) -> String {
    let mut out = String::new();
    for node in &ast.nodes {
        out.push('(');
        out.push_str(&dump_node(node));
        out.push_str(")\n");
    }
    out
}

/// One instruction without the outer parentheses.
pub fn dump_node(node: &Node) -> String {
    let mut out = node.keyword.to_lowercase();
    if !node.flags.is_empty() {
        let quoted: Vec<String> = node.flags.iter().map(|f| go_quote(f)).collect();
        let _ = write!(out, " [{}]", quoted.join(" "));
    }
    for arg in &node.args {
        out.push(' ');
        out.push_str(&go_quote(arg));
    }
    if let Some(sub) = &node.sub {
        let _ = write!(out, " ({})", dump_node(sub));
    }
    out
}

/// Go's `strconv.Quote`: double quotes, `\"` and `\\`, C-style escapes for
/// the usual control characters, `\xNN`/`\uNNNN`/`\UNNNNNNNN` for other
/// non-printable characters, printable Unicode kept as is.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0C' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0B' => out.push_str("\\v"),
            c if is_go_printable(c) => out.push(c),
            c if u32::from(c) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if u32::from(c) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => {
                let _ = write!(out, "\\U{:08x}", u32::from(c));
            }
        }
    }
    out.push('"');
    out
}

/// Approximates Go's `strconv.IsPrint`: letters, marks, numbers,
/// punctuation, symbols and the ASCII space. Rust's std has no general
/// category table, so controls, non-ASCII spaces, format characters,
/// private-use and noncharacters are excluded by range.
fn is_go_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let u = u32::from(c);
    let format_or_special = matches!(u,
        0x00AD | 0x061C | 0x180E | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F
        | 0xFEFF | 0xFFF9..=0xFFFB | 0xE000..=0xF8FF | 0xF0000..=0x10FFFF
    );
    let noncharacter = (0xFDD0..=0xFDEF).contains(&u) || (u & 0xFFFE) == 0xFFFE;
    !(format_or_special || noncharacter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_like_go() {
        assert_eq!(go_quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(go_quote("\n\t\x00\x7f"), "\"\\n\\t\\x00\\x7f\"");
        assert_eq!(go_quote("☥ é"), "\"☥ é\"");
        assert_eq!(go_quote("\u{a0}\u{feff}"), "\"\\u00a0\\ufeff\"");
    }
}
