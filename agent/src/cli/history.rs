//! `berth history IMAGE`: the image's history entries newest first, in
//! `docker history`'s columns (IMAGE, CREATED, CREATED BY, SIZE, COMMENT).
//! SIZE is the layer blob's size as stored (compressed), 0B for entries
//! that made no layer.

use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Context;
use serde_json::{Value, json};

use super::GlobalOpts;
use super::image::open_store;

#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// Do not truncate CREATED BY (and show full image IDs).
    #[arg(long)]
    no_trunc: bool,
    /// Print only image IDs.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// `table` (default) or `json` (one object per line).
    #[arg(long, default_value = "table")]
    format: String,
    /// Show times as RFC 3339 instead of "2 hours ago".
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set)]
    human: bool,
    #[arg(value_name = "IMAGE")]
    image: String,
}

struct Row {
    id: String,
    created: Option<String>,
    created_by: String,
    size: u64,
    comment: String,
}

pub fn run(args: &HistoryArgs, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let store = open_store(global)?;
    let image = store
        .image(&args.image)
        .with_context(|| format!("no such image: {}", args.image))?;
    let raw = store.raw_config(&image)?;
    let history = raw
        .get("history")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut sizes = image.layers().iter().map(|l| l.size());
    let mut rows = Vec::new();
    for h in &history {
        let empty = h
            .get("empty_layer")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let size = if empty { 0 } else { sizes.next().unwrap_or(0) };
        rows.push(Row {
            id: "<missing>".to_owned(),
            created: h.get("created").and_then(Value::as_str).map(str::to_owned),
            created_by: h
                .get("created_by")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            size,
            comment: h
                .get("comment")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        });
    }
    rows.reverse();
    if let Some(top) = rows.first_mut() {
        top.id = if args.no_trunc {
            image.id.to_string()
        } else {
            image.id.short().to_owned()
        };
    }
    if args.quiet {
        for r in &rows {
            println!("{}", r.id);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.format == "json" || args.format == "{{json .}}" {
        for r in &rows {
            println!(
                "{}",
                json!({
                    "Comment": r.comment,
                    "CreatedAt": r.created.clone().unwrap_or_default(),
                    "CreatedBy": r.created_by,
                    "CreatedSince": since(r.created.as_deref()),
                    "ID": r.id,
                    "Size": human_size(r.size),
                })
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<12}   {:<14}   {:<45}   {:<9}   COMMENT",
        "IMAGE", "CREATED", "CREATED BY", "SIZE"
    );
    for r in &rows {
        let by = if args.no_trunc {
            r.created_by.clone()
        } else {
            truncate(&r.created_by, 45)
        };
        let created = if args.human {
            since(r.created.as_deref())
        } else {
            r.created.clone().unwrap_or_default()
        };
        println!(
            "{:<12}   {:<14}   {:<45}   {:<9}   {}",
            r.id,
            created,
            by,
            human_size(r.size),
            r.comment
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_owned();
    }
    let mut t: String = s.chars().take(n - 1).collect();
    t.push('…');
    t
}

/// go-units' `HumanDuration` + " ago", as `docker history` prints it.
fn since(created: Option<&str>) -> String {
    let Some(t) = created.and_then(|c| humantime::parse_rfc3339_weak(c).ok()) else {
        return "N/A".to_owned();
    };
    let secs = SystemTime::now()
        .duration_since(t)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (minutes, hours) = (secs / 60, secs / 3600);
    let text = match secs {
        0 => "Less than a second".to_owned(),
        1 => "1 second".to_owned(),
        2..=59 => format!("{secs} seconds"),
        _ if minutes == 1 => "About a minute".to_owned(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".to_owned(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", hours / 24 / 365),
    };
    format!("{text} ago")
}

fn human_size(bytes: u64) -> String {
    if bytes < 1000 {
        return format!("{bytes}B");
    }
    let units = ["kB", "MB", "GB", "TB"];
    let mut v = bytes as f64 / 1000.0;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < units.len() {
        v /= 1000.0;
        i += 1;
    }
    format!("{v:.3}{}", units[i]).replace(".000", "")
}
