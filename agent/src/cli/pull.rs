//! `berth pull`: an image from its registry into the store, reported as
//! `docker pull` reports it.

use std::process::ExitCode;
use std::sync::Arc;

use berth_image::Reference;
use berth_image::registry::{PullOptions, PullStatus, block_on};

use super::GlobalOpts;
use super::image::open_store;
use super::registry_opts::{Display, RegistryOpts, Verb};

#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// The image: NAME[:TAG|@DIGEST].
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    image: String,
    /// Pull this platform's image from a multi-platform index
    /// (os/arch[/variant]) instead of the host's.
    #[arg(long, value_name = "PLATFORM")]
    platform: Option<String>,
    /// Print only the image's full name.
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    registry: RegistryOpts,
}

pub fn run(args: &PullArgs, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let store = open_store(global)?;
    let registry = args.registry.registry()?;
    let reference = Reference::parse(&args.image)?;
    let untagged_input = !has_tag_or_digest(&args.image);
    if !args.quiet {
        if untagged_input {
            println!("Using default tag: latest");
        }
        let label = reference
            .tag()
            .map(str::to_owned)
            .or_else(|| reference.digest().map(ToString::to_string))
            .unwrap_or_default();
        println!("{label}: Pulling from {}", reference.path());
    }
    let display = Arc::new(Display::new(Verb::Pull, args.quiet));
    let options = PullOptions {
        platform: args.platform.clone(),
    };
    let outcome = block_on(registry.pull(&store, &reference, &options, display.clone()))?;
    display.finish();
    // The registry's errors name the operation and the image already.
    let outcome = outcome?;
    if args.quiet {
        println!("{reference}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("Digest: {}", outcome.digest);
    match outcome.status {
        PullStatus::UpToDate => {
            println!("Status: Image is up to date for {}", reference.familiar())
        }
        PullStatus::Downloaded => println!(
            "Status: Downloaded newer image for {}",
            reference.familiar()
        ),
    }
    println!("{reference}");
    Ok(ExitCode::SUCCESS)
}

/// Whether the user named a tag or digest (docker says "Using default
/// tag" otherwise).
fn has_tag_or_digest(input: &str) -> bool {
    input.contains('@')
        || input
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'))
}
