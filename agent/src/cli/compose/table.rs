//! Go's `text/tabwriter`, as Docker's and Compose's tables use it: every
//! cell but the last of a line is padded to its column's width (the
//! widest cell plus `padding`, at least `min_width`); the last cell is
//! written as it is, so a line whose last cell is empty keeps the padding
//! of the one before, exactly as `docker compose ps` prints it.

/// Renders `rows` (the header first), one line each.
pub fn render(rows: &[Vec<String>], min_width: usize, padding: usize) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; columns];
    for row in rows {
        // The last cell of each line is not a column cell.
        for (i, cell) in row.iter().enumerate().take(row.len().saturating_sub(1)) {
            widths[i] = widths[i].max((cell.chars().count() + padding).max(min_width));
        }
    }
    let mut out = String::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths[i].saturating_sub(cell.chars().count());
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
    out
}

/// Docker's `formatter.Ellipsis`: at most `max` characters, the last one
/// `…` when cut.
pub fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Go's `strconv.Quote` for the text Docker shows: quotes, backslashes
/// and control characters escaped.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn pads_like_go_tabwriter() {
        let rows = vec![
            row(&["NAME", "SERVICE", "PORTS"]),
            row(&["shop-web-1", "web", ""]),
        ];
        assert_eq!(
            render(&rows, 20, 3),
            format!(
                "NAME{}SERVICE{}PORTS\nshop-web-1{}web{}\n",
                " ".repeat(16),
                " ".repeat(13),
                " ".repeat(10),
                " ".repeat(17)
            )
        );
        // Wide cells grow their column by the padding.
        let rows = vec![row(&["A", "B"]), row(&["a-very-long-name", "x"])];
        assert_eq!(
            render(&rows, 4, 2),
            "A                 B\na-very-long-name  x\n"
        );
    }

    #[test]
    fn ellipsis_and_quote_like_docker() {
        assert_eq!(ellipsis("sleep 3600", 20), "sleep 3600");
        assert_eq!(
            ellipsis("docker-entrypoint.sh postgres", 20),
            "docker-entrypoint.s…"
        );
        assert_eq!(quote("sh -c \"echo hi\""), "\"sh -c \\\"echo hi\\\"\"");
    }
}
