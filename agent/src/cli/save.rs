//! `berth save`: images into a tar archive that `docker load`, `berth
//! load` and OCI tools (skopeo's `oci-archive:`) read (see
//! `berth_image::save`).

use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};

use super::GlobalOpts;
use super::image::open_store;

#[derive(Debug, clap::Args)]
pub struct SaveArgs {
    /// Images: references (saved under that name) or IDs (untagged).
    #[arg(value_name = "IMAGE", required = true)]
    images: Vec<String>,
    /// Write to this file instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

pub fn run(args: &SaveArgs, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let store = open_store(global)?;
    match &args.output {
        Some(path) => {
            // Written beside the target and renamed: a failed save leaves
            // no truncated archive under the name asked for.
            let mut tmp_name = path.file_name().unwrap_or_default().to_owned();
            tmp_name.push(format!(".berth-save-{}", std::process::id()));
            let tmp = path.with_file_name(tmp_name);
            let result = (|| -> anyhow::Result<()> {
                let file = std::fs::File::create(&tmp)
                    .with_context(|| format!("cannot create {}", tmp.display()))?;
                let mut out = BufWriter::new(file);
                store
                    .save(&args.images, &mut out)
                    .with_context(|| format!("cannot save {}", args.images.join(", ")))?;
                out.flush()
                    .with_context(|| format!("cannot write {}", path.display()))?;
                std::fs::rename(&tmp, path)
                    .with_context(|| format!("cannot write {}", path.display()))
            })();
            if result.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            result?;
        }
        None => {
            if std::io::stdout().is_terminal() {
                bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            }
            let mut out = BufWriter::new(std::io::stdout().lock());
            store
                .save(&args.images, &mut out)
                .with_context(|| format!("cannot save {}", args.images.join(", ")))?;
            out.flush().context("cannot write to stdout")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
