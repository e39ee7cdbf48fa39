//! `images`: the image each of the project's containers was created from,
//! as `docker compose images` lists them (CONTAINER REPOSITORY TAG
//! PLATFORM IMAGE ID SIZE CREATED), as IDs (`-q`) or JSON.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Context;
use berth_image::{Digest, Reference, Store};
use clap::ValueEnum;
use serde::Serialize;

use super::project::{ComposeProject, Files};
use super::table::render;
use crate::cli::images::{human_since, human_size};
use crate::cli::{GlobalOpts, ProjectOpts};
use crate::containers;

#[derive(Debug, Clone, Default, clap::Args)]
pub struct ImagesFlags {
    /// Only display IDs.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Format the output.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    #[default]
    Table,
    Json,
}

/// `docker compose images --format json`'s keys.
#[derive(Serialize)]
struct Row {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "ContainerName")]
    container: String,
    #[serde(rename = "Repository")]
    repository: String,
    #[serde(rename = "Tag")]
    tag: String,
    #[serde(rename = "Platform")]
    platform: String,
    #[serde(rename = "Size")]
    size: u64,
    #[serde(rename = "Created", skip_serializing_if = "Option::is_none")]
    created: Option<String>,
    #[serde(skip)]
    created_at: Option<SystemTime>,
}

pub fn run(
    opts: &ProjectOpts,
    flags: &ImagesFlags,
    global: &GlobalOpts,
) -> anyhow::Result<ExitCode> {
    let Some(cp) = ComposeProject::open(opts, global, Files::Optional)? else {
        return Ok(ExitCode::FAILURE);
    };
    cp.check_services(&flags.services)?;
    let store = Store::open(&global.root)?;
    let mut rows = Vec::new();
    for c in cp.containers(&flags.services, false) {
        let Some((name, id)) = containers::image_of(&c.info.config) else {
            continue;
        };
        let image = store.image(id).ok();
        let (repository, tag) = match Reference::parse(name) {
            Ok(r) => (r.familiar_name(), r.tag().unwrap_or("<none>").to_owned()),
            Err(_) => ("<none>".to_owned(), "<none>".to_owned()),
        };
        let created_at = image.as_ref().and_then(|i| i.created());
        rows.push(Row {
            id: id.to_owned(),
            container: c.name().to_owned(),
            repository,
            tag,
            platform: image
                .as_ref()
                .map(|i| format!("{}/{}", i.config_file.os, i.config_file.architecture))
                .unwrap_or_default(),
            size: image.as_ref().map_or(0, |i| i.size),
            created: created_at.map(crate::timefmt::rfc3339),
            created_at,
        });
    }
    let mut out = std::io::stdout().lock();
    if flags.quiet {
        let mut seen = BTreeSet::new();
        for r in &rows {
            let hex = Digest::parse(&r.id).map_or_else(|_| r.id.clone(), |d| d.hex().to_owned());
            if seen.insert(hex.clone()) {
                writeln!(out, "{hex}").context("cannot write to stdout")?;
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    if flags.format == Format::Json {
        writeln!(out, "{}", serde_json::to_string(&rows)?).context("cannot write to stdout")?;
        return Ok(ExitCode::SUCCESS);
    }
    let now = SystemTime::now();
    let mut table = vec![
        [
            "CONTAINER",
            "REPOSITORY",
            "TAG",
            "PLATFORM",
            "IMAGE ID",
            "SIZE",
            "CREATED",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    for r in rows {
        let short = Digest::parse(&r.id).map_or_else(|_| r.id.clone(), |d| d.short().to_owned());
        table.push(vec![
            r.container,
            r.repository,
            r.tag,
            r.platform,
            short,
            human_size(r.size),
            r.created_at
                .map_or_else(|| "N/A".to_owned(), |t| human_since(now, t)),
        ]);
    }
    write!(out, "{}", render(&table, 20, 3)).context("cannot write to stdout")?;
    Ok(ExitCode::SUCCESS)
}
