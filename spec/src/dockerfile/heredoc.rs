//! Heredocs (`<<EOF`, `<<-EOF`, `<<"EOF"`, `3<<EOF`) on RUN, COPY and ADD,
//! following BuildKit's parser: [`Heredoc`], [`heredocs_from_line`] (which
//! words of an instruction line open a heredoc), [`parse_heredoc`] (one
//! word) and [`chomp_heredoc_content`] (the `<<-` tab stripping).

use super::shell::{LexOptions, Lexer};

/// One heredoc attached to an instruction.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Heredoc {
    /// The delimiter word, quotes removed (`EOF` for `<<"EOF"`).
    pub name: String,
    /// The leading file descriptor number of `3<<EOF`; 0 when absent.
    pub file_descriptor: u32,
    /// Whether variables in the body are expanded: false when any part of
    /// the delimiter was quoted.
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from body lines and the delimiter.
    pub chomp: bool,
    /// The body, every line with its line ending, delimiter line excluded.
    pub content: String,
}

/// Instructions whose (non-JSON) arguments may open heredocs.
pub fn keyword_allows_heredoc(keyword_lower: &str) -> bool {
    matches!(keyword_lower, "run" | "copy" | "add")
}

/// The heredocs opened on an instruction line, in order. Words are found
/// with BuildKit's raw lexer (quotes and escapes kept, unset variables left
/// alone), so `'<<EOF'` is not a heredoc but `<<'EOF'` is.
pub fn heredocs_from_line(line: &str) -> Vec<Heredoc> {
    let lexer = Lexer::new(LexOptions {
        raw_quotes: true,
        raw_escapes: true,
        skip_unset_env: true,
        ..LexOptions::new('\\')
    });
    let none = |_: &str| None;
    // BuildKit ignores a lexing failure here: no words, no heredocs.
    let words = lexer
        .process(line, &none)
        .map(|(_, w)| w)
        .unwrap_or_default();
    words.iter().filter_map(|w| parse_heredoc(w)).collect()
}

/// Parses one word of the form `[n]<<[-]NAME`; `None` when it is not one.
pub fn parse_heredoc(word: &str) -> Option<Heredoc> {
    let digits_end = word
        .char_indices()
        .find(|(_, c)| !c.is_ascii_digit())
        .map_or(word.len(), |(i, _)| i);
    let (digits, rest) = word.split_at_checked(digits_end)?;
    let rest = rest.strip_prefix("<<")?;
    let (chomp, name_part) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    if name_part.is_empty() || name_part.contains('<') {
        return None;
    }
    let none = |_: &str| None;
    let cooked = Lexer::new(LexOptions {
        skip_unset_env: true,
        ..LexOptions::new('\\')
    });
    let words = cooked.process(name_part, &none).ok()?.1;
    let [name] = words.as_slice() else {
        return None;
    };
    let raw = Lexer::new(LexOptions {
        skip_unset_env: true,
        raw_quotes: true,
        ..LexOptions::new('\\')
    });
    let raw_words = raw.process(name_part, &none).ok()?.1;
    let [raw_name] = raw_words.as_slice() else {
        return None;
    };
    // Quotes that the cooked lexer removed mean the delimiter was quoted.
    let quotes = |s: &str| s.chars().filter(|c| *c == '\'' || *c == '"').count();
    Some(Heredoc {
        name: name.clone(),
        file_descriptor: digits.parse().unwrap_or(0),
        expand: quotes(name) == quotes(raw_name),
        chomp,
        content: String::new(),
    })
}

/// Removes the leading tabs of every line, for `<<-` bodies.
pub fn chomp_heredoc_content(content: &str) -> String {
    content
        .split_inclusive('\n')
        .map(|line| line.trim_start_matches('\t'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_chomped_quoted_and_numbered() {
        let h = parse_heredoc("<<EOF").unwrap();
        assert_eq!(
            (h.name.as_str(), h.chomp, h.expand, h.file_descriptor),
            ("EOF", false, true, 0)
        );
        let h = parse_heredoc("<<-EOT").unwrap();
        assert_eq!((h.name.as_str(), h.chomp, h.expand), ("EOT", true, true));
        let h = parse_heredoc("<<\"EOF\"").unwrap();
        assert_eq!((h.name.as_str(), h.expand), ("EOF", false));
        let h = parse_heredoc("<<'EOF'").unwrap();
        assert_eq!((h.name.as_str(), h.expand), ("EOF", false));
        let h = parse_heredoc("3<<FILE").unwrap();
        assert_eq!((h.name.as_str(), h.file_descriptor), ("FILE", 3));
    }

    #[test]
    fn not_heredocs() {
        assert!(parse_heredoc("<<").is_none());
        assert!(parse_heredoc("<<<EOF").is_none());
        assert!(parse_heredoc("x<<EOF").is_none());
        assert!(parse_heredoc("EOF").is_none());
    }

    #[test]
    fn several_on_one_line() {
        let docs = heredocs_from_line("COPY <<FILE1 <<-FILE2 /dest/");
        let names: Vec<_> = docs.iter().map(|d| (d.name.as_str(), d.chomp)).collect();
        assert_eq!(names, vec![("FILE1", false), ("FILE2", true)]);
        assert!(heredocs_from_line("RUN echo '<<EOF'").is_empty());
        let docs = heredocs_from_line("RUN python3 <<'EOF' > out");
        assert_eq!(docs.len(), 1);
        assert!(!docs[0].expand);
    }

    #[test]
    fn chomp_strips_leading_tabs_per_line() {
        assert_eq!(chomp_heredoc_content("\t\ta\n\tb\n c\n"), "a\nb\n c\n");
    }
}
