//! Compose's log presentation: each line prefixed with its container's
//! name padded to the longest one (`web-1  | line`), the prefix coloured
//! on a terminal (a colour per container, in Compose's order), stdout
//! lines to stdout and stderr lines to stderr; and status lines such as
//! `web-1 exited with code 0`.

use std::collections::HashMap;
use std::io::Write;

use berth_runtime::logs::LogEntry;

/// Compose's rainbow: cyan, yellow, green, magenta, blue, then the same
/// bright.
const COLORS: [&str; 10] = [
    "36", "33", "32", "35", "34", "36;1", "33;1", "32;1", "35;1", "34;1",
];

#[derive(Debug)]
pub struct Printer {
    prefix: bool,
    color: bool,
    timestamps: bool,
    /// Longest registered name plus one.
    width: usize,
    colors: HashMap<String, &'static str>,
}

impl Printer {
    pub fn new(prefix: bool, color: bool, timestamps: bool) -> Self {
        Printer {
            prefix,
            color,
            timestamps,
            width: 0,
            colors: HashMap::new(),
        }
    }

    /// Makes `name` known: its colour, and the prefix width.
    pub fn register(&mut self, name: &str) {
        if self.colors.contains_key(name) {
            return;
        }
        let color = COLORS[self.colors.len() % COLORS.len()];
        self.colors.insert(name.to_owned(), color);
        self.width = self.width.max(name.chars().count() + 1);
    }

    fn paint(&self, name: &str, text: &str) -> String {
        match self.colors.get(name) {
            Some(code) if self.color => format!("\x1b[{code}m{text}\x1b[0m"),
            _ => text.to_owned(),
        }
    }

    /// `web-1  | ` (coloured), or nothing with `--no-log-prefix`.
    fn prefix(&self, name: &str) -> String {
        if !self.prefix {
            return String::new();
        }
        let padded = format!("{name:<width$} | ", width = self.width);
        self.paint(name, &padded)
    }

    /// One log entry of container `name`, as its own line(s).
    pub fn line(&self, name: &str, entry: &LogEntry) -> std::io::Result<()> {
        let text = entry.log.strip_suffix('\n').unwrap_or(&entry.log);
        let text = text.strip_suffix('\r').unwrap_or(text);
        let prefix = self.prefix(name);
        let mut out = String::new();
        for line in text.split('\n') {
            out.push_str(&prefix);
            if self.timestamps {
                out.push_str(&entry.time);
                out.push(' ');
            }
            out.push_str(line);
            out.push('\n');
        }
        if entry.stream == "stderr" {
            std::io::stderr().lock().write_all(out.as_bytes())
        } else {
            std::io::stdout().lock().write_all(out.as_bytes())
        }
    }

    /// `web-1 exited with code 0`, in the container's colour, on stdout.
    pub fn status(&self, name: &str, message: &str) -> std::io::Result<()> {
        let line = self.paint(name, &format!("{name} {message}"));
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")?;
        out.flush()
    }

    pub fn flush(&self) -> std::io::Result<()> {
        std::io::stdout().lock().flush()
    }

    #[cfg(test)]
    fn rendered_prefix(&self, name: &str) -> String {
        self.prefix(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_pad_to_the_longest_name_and_colour_only_when_asked() {
        let mut p = Printer::new(true, false, false);
        p.register("web-1");
        p.register("db-1");
        assert_eq!(p.rendered_prefix("web-1"), "web-1  | ");
        assert_eq!(p.rendered_prefix("db-1"), "db-1   | ");
        let mut c = Printer::new(true, true, false);
        c.register("web-1");
        c.register("db-1");
        assert_eq!(c.rendered_prefix("db-1"), "\x1b[33mdb-1   | \x1b[0m");
        let none = Printer::new(false, true, false);
        assert_eq!(none.rendered_prefix("web-1"), "");
    }
}
