//! `berth image inspect`: images as a JSON array in `docker image inspect`'s
//! shape (Id, RepoTags, RepoDigests, Created, Config, RootFS, Size, ...).

use std::process::ExitCode;

use anyhow::Context;
use berth_image::registry::RegistryRecords;
use berth_image::{Image, Store};
use serde::Serialize;
use serde_json::Value;

use super::GlobalOpts;
use super::image::open_store;

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// References or (prefixes of) image IDs.
    #[arg(value_name = "IMAGE", required = true)]
    images: Vec<String>,
}

/// The wire shape: Docker's keys, so `jq '.[0].Config.Env'` works the same.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Inspect {
    id: String,
    repo_tags: Vec<String>,
    repo_digests: Vec<String>,
    parent: String,
    comment: String,
    created: Option<String>,
    docker_version: String,
    author: String,
    architecture: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<String>,
    os: String,
    /// The config's `config` object exactly as stored.
    config: Value,
    #[serde(rename = "RootFS")]
    root_fs: RootFs,
    size: u64,
    /// Docker's (since 25) equal to Size; older tools read it.
    virtual_size: u64,
    /// The stored manifest (berth stores images as OCI manifests).
    descriptor: DescriptorOut,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RootFs {
    r#type: &'static str,
    layers: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DescriptorOut {
    media_type: String,
    digest: String,
    size: u64,
}

pub fn run(args: &InspectArgs, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let store = open_store(global)?;
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for name in &args.images {
        match store.image(name) {
            Ok(image) => out.push(inspect(&store, &image)?),
            Err(err) if err.kind() == berth_image::ErrorKind::NotFound => missing.push(name),
            Err(err) => return Err(err).with_context(|| format!("cannot inspect {name}")),
        }
    }
    // Like docker: print what was found, then fail for what was not.
    println!("{}", serde_json::to_string_pretty(&out)?);
    if missing.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        for name in missing {
            eprintln!("berth: no such image: {name}");
        }
        Ok(ExitCode::FAILURE)
    }
}

fn inspect(store: &Store, image: &Image) -> anyhow::Result<Inspect> {
    let raw = store.raw_config(image)?;
    let file = &image.config_file;
    let manifest_size = store.blob_size(&image.manifest_digest)?;
    // As dockerd's: the digests registries gave this image on pull or
    // push, and names pinned by digest; not the local manifest's digest
    // (an image only loaded or built has none).
    let mut repo_digests = store.repo_digests(image)?;
    for r in &image.references {
        if let Some(d) = r.digest() {
            let entry = format!("{}@{d}", r.familiar_name());
            if !repo_digests.contains(&entry) {
                repo_digests.push(entry);
            }
        }
    }
    repo_digests.sort();
    let history = raw.get("history").and_then(Value::as_array);
    let comment = history
        .and_then(|h| h.last())
        .and_then(|h| h.get("comment"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    Ok(Inspect {
        id: image.id.to_string(),
        repo_tags: image
            .references
            .iter()
            .filter(|r| r.tag().is_some() && r.digest().is_none())
            .map(|r| r.familiar())
            .collect(),
        repo_digests,
        parent: String::new(),
        comment,
        created: file.created.clone(),
        docker_version: raw
            .get("docker_version")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        author: file.author.clone().unwrap_or_default(),
        architecture: file.architecture.clone(),
        variant: file.variant.clone(),
        os: file.os.clone(),
        config: raw
            .get("config")
            .cloned()
            .unwrap_or(Value::Object(Default::default())),
        root_fs: RootFs {
            r#type: "layers",
            layers: file.diff_ids.iter().map(ToString::to_string).collect(),
        },
        size: image.size,
        virtual_size: image.size,
        descriptor: DescriptorOut {
            media_type: image.manifest.media_type().as_ref().map_or_else(
                || "application/vnd.oci.image.manifest.v1+json".to_owned(),
                ToString::to_string,
            ),
            digest: image.manifest_digest.to_string(),
            size: manifest_size,
        },
    })
}
