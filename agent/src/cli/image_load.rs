//! `berth load`: images from a `docker save` or OCI image-layout archive,
//! reported like `docker load`.

use std::fs::File;
use std::io::{self, IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};

use super::GlobalOpts;
use super::image::open_store;

#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// Read from this archive instead of stdin.
    #[arg(short, long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// Print nothing.
    #[arg(short, long)]
    quiet: bool,
}

pub fn run(args: &LoadArgs, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let store = open_store(global)?;
    let mut input: Box<dyn Read> = match &args.input {
        Some(path) => {
            Box::new(File::open(path).with_context(|| format!("cannot open {}", path.display()))?)
        }
        None => {
            if io::stdin().is_terminal() {
                bail!("requested load from stdin, but stdin is a terminal: use -i FILE or a pipe");
            }
            Box::new(io::stdin().lock())
        }
    };
    let source = args
        .input
        .as_ref()
        .map_or_else(|| "stdin".to_owned(), |p| p.display().to_string());
    let loaded = store
        .load(&mut input)
        .with_context(|| format!("cannot load images from {source}"))?;
    if !args.quiet {
        for image in loaded {
            if image.references.is_empty() {
                println!("Loaded image ID: {}", image.image.id);
            }
            for r in &image.references {
                println!("Loaded image: {}", r.familiar());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
