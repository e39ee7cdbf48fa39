//! `berth images`: the store's images as `docker images` shows them: a
//! table (REPOSITORY TAG IMAGE ID CREATED SIZE), IDs only (`-q`), or one
//! JSON object per line (`--format json`, Docker's keys).
//!
//! SIZE is the content size: the config plus the layer blobs as stored
//! (what Docker's containerd image store shows), in Docker's decimal
//! units.

use std::io::Write;
use std::process::ExitCode;
use std::time::SystemTime;

use berth_image::{ImageSummary, Reference};
use clap::ValueEnum;
use serde::Serialize;

use super::GlobalOpts;
use super::image::open_store;
use crate::timefmt::rfc3339;

#[derive(Debug, clap::Args)]
pub struct ImagesArgs {
    /// Only images of this repository (and tag).
    #[arg(value_name = "REPOSITORY[:TAG]")]
    filter: Option<String>,
    /// Only print image IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Show manifest digests.
    #[arg(long)]
    digests: bool,
    /// Show full image IDs.
    #[arg(long)]
    no_trunc: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Table,
    Json,
}

/// One line of `--format json`, with `docker images --format json`'s keys.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Row {
    repository: String,
    tag: String,
    #[serde(rename = "ID")]
    id: String,
    digest: String,
    created_at: String,
    created_since: String,
    size: String,
    /// Bytes, for machines (not in Docker's output).
    size_bytes: u64,
}

pub fn run(args: &ImagesArgs, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let store = open_store(global)?;
    let mut summaries = store.image_summaries()?;
    if let Some(filter) = &args.filter {
        summaries.retain(|s| matches_filter(s.reference.as_ref(), filter));
    }
    // Newest first, then by name, as docker does.
    summaries.sort_by(|a, b| {
        b.image
            .created()
            .cmp(&a.image.created())
            .then_with(|| a.reference.cmp(&b.reference))
    });
    let now = SystemTime::now();
    let rows: Vec<Row> = summaries
        .iter()
        .map(|s| row(s, args.no_trunc, now))
        .collect();
    let mut out = std::io::stdout().lock();
    if args.quiet {
        for r in &rows {
            writeln!(out, "{}", r.id)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    match args.format {
        Format::Json => {
            for r in &rows {
                writeln!(out, "{}", serde_json::to_string(r)?)?;
            }
        }
        Format::Table => {
            let mut header = vec!["REPOSITORY", "TAG"];
            if args.digests {
                header.push("DIGEST");
            }
            header.extend(["IMAGE ID", "CREATED", "SIZE"]);
            let mut table = vec![header.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>()];
            for r in rows {
                let mut cells = vec![r.repository, r.tag];
                if args.digests {
                    cells.push(r.digest);
                }
                cells.extend([r.id, r.created_since, r.size]);
                table.push(cells);
            }
            write!(out, "{}", render_table(&table))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn matches_filter(reference: Option<&Reference>, filter: &str) -> bool {
    let Some(r) = reference else {
        return false;
    };
    let Ok(wanted) = Reference::parse(filter) else {
        return false;
    };
    // `busybox` means every tag of busybox; `busybox:1` only that one.
    let tag_given = filter
        .rsplit('/')
        .next()
        .is_some_and(|last| last.contains(':'));
    r.name() == wanted.name() && (!tag_given || r.tag() == wanted.tag())
}

fn row(s: &ImageSummary, no_trunc: bool, now: SystemTime) -> Row {
    let image = &s.image;
    let (repository, tag) = match &s.reference {
        Some(r) => (r.familiar_name(), r.tag().unwrap_or("<none>").to_owned()),
        None => ("<none>".to_owned(), "<none>".to_owned()),
    };
    let created = image.created();
    Row {
        repository,
        tag,
        id: if no_trunc {
            image.id.to_string()
        } else {
            image.id.short().to_owned()
        },
        digest: image.manifest_digest.to_string(),
        created_at: created.map(rfc3339).unwrap_or_default(),
        created_since: created.map_or_else(|| "N/A".to_owned(), |t| human_since(now, t)),
        size: human_size(image.size),
        size_bytes: image.size,
    }
}

/// go-units' `HumanDuration` + " ago", as `docker images` prints CREATED.
pub fn human_since(now: SystemTime, then: SystemTime) -> String {
    let secs = now.duration_since(then).map(|d| d.as_secs()).unwrap_or(0);
    let (minutes, hours) = (secs / 60, secs / 3600);
    let text = if secs < 1 {
        "Less than a second".to_owned()
    } else if secs == 1 {
        "1 second".to_owned()
    } else if secs < 60 {
        format!("{secs} seconds")
    } else if minutes == 1 {
        "About a minute".to_owned()
    } else if minutes < 60 {
        format!("{minutes} minutes")
    } else if hours == 1 {
        "About an hour".to_owned()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", hours / 24 / 365)
    };
    format!("{text} ago")
}

/// go-units' `HumanSizeWithPrecision(size, 3)`: decimal units, three
/// significant digits, trailing zeros dropped (`4.26MB`, `2MB`, `512B`).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit < UNITS.len() - 1 {
        size /= 1000.0;
        unit += 1;
    }
    let digits = if size >= 100.0 {
        0
    } else if size >= 10.0 {
        1
    } else {
        2
    };
    let mut text = format!("{size:.digits$}");
    if text.contains('.') {
        text = text.trim_end_matches('0').trim_end_matches('.').to_owned();
    }
    format!("{text}{}", UNITS[unit])
}

/// Go's tabwriter as docker configures it: each column as wide as its
/// widest cell plus 3 spaces, at least 10; the last column unpadded.
fn render_table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            let widest = rows
                .iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0);
            (widest + 3).max(10)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let last = row.len().saturating_sub(1);
        for (c, cell) in row.iter().enumerate() {
            if c == last {
                out.push_str(cell);
            } else {
                let pad = widths[c].saturating_sub(cell.chars().count());
                out.push_str(cell);
                out.push_str(&" ".repeat(pad));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(4_261_000), "4.26MB");
        assert_eq!(human_size(2_000_000), "2MB");
        assert_eq!(human_size(12_345), "12.3kB");
        assert_eq!(human_size(187_000_000), "187MB");
        assert_eq!(human_size(1_500_000_000), "1.5GB");
    }

    #[test]
    fn ages_like_docker() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(10_000_000);
        let ago = |s: u64| human_since(now, now - Duration::from_secs(s));
        assert_eq!(ago(0), "Less than a second ago");
        assert_eq!(ago(30), "30 seconds ago");
        assert_eq!(ago(90), "About a minute ago");
        assert_eq!(ago(3 * 3600), "3 hours ago");
        assert_eq!(ago(3 * 86400), "3 days ago");
        assert_eq!(ago(21 * 86400), "3 weeks ago");
    }

    #[test]
    fn filters_by_repository_and_tag() {
        let r = Reference::parse("busybox:1").unwrap();
        assert!(matches_filter(Some(&r), "busybox"));
        assert!(matches_filter(Some(&r), "docker.io/library/busybox:1"));
        assert!(!matches_filter(Some(&r), "busybox:2"));
        assert!(!matches_filter(Some(&r), "alpine"));
        assert!(!matches_filter(None, "busybox"));
        let local = Reference::parse("localhost:5000/app").unwrap();
        assert!(matches_filter(Some(&local), "localhost:5000/app"));
    }

    #[test]
    fn table_pads_like_tabwriter() {
        let t = render_table(&[
            vec!["REPOSITORY".into(), "TAG".into(), "SIZE".into()],
            vec!["busybox".into(), "latest".into(), "4MB".into()],
        ]);
        assert_eq!(
            t,
            "REPOSITORY   TAG       SIZE\nbusybox      latest    4MB\n"
        );
    }
}
