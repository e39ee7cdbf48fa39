//! `berth image import`: a rootfs tarball (file or `-` for stdin) becomes a
//! one-layer image; prints its ID like `docker import`.

use std::fs::File;
use std::io::{self, IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use berth_image::{ImportOptions, Reference};

use super::GlobalOpts;
use super::image::open_store;

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The tarball (plain, gzip or zstd), or `-` for stdin.
    #[arg(value_name = "FILE|-")]
    file: PathBuf,
    /// Name for the image, e.g. `busybox:latest`.
    #[arg(value_name = "REPOSITORY[:TAG]")]
    reference: Option<String>,
    /// Commit message kept in the image's history.
    #[arg(short, long)]
    message: Option<String>,
}

pub fn run(args: &ImportArgs, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let reference = args
        .reference
        .as_deref()
        .map(Reference::parse)
        .transpose()?;
    let store = open_store(global)?;
    let stdin = args.file.as_os_str() == "-";
    let mut input: Box<dyn Read> = if stdin {
        if io::stdin().is_terminal() {
            bail!("refusing to read a tarball from a terminal: pipe one in or give a file");
        }
        Box::new(io::stdin().lock())
    } else {
        Box::new(
            File::open(&args.file)
                .with_context(|| format!("cannot open {}", args.file.display()))?,
        )
    };
    let options = ImportOptions {
        reference,
        message: args.message.clone(),
        source: Some(if stdin {
            "-".to_owned()
        } else {
            args.file.display().to_string()
        }),
        created: None,
    };
    let image = store
        .import(&mut input, &options)
        .with_context(|| format!("cannot import {}", args.file.display()))?;
    println!("{}", image.id);
    Ok(ExitCode::SUCCESS)
}
