//! `berth push`: an image to its registry, reported as `docker push`
//! reports it.

use std::process::ExitCode;
use std::sync::Arc;

use berth_image::Reference;
use berth_image::registry::block_on;

use super::GlobalOpts;
use super::image::open_store;
use super::registry_opts::{Display, RegistryOpts, Verb};

#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// The image: NAME[:TAG] (the name says which registry).
    #[arg(value_name = "NAME[:TAG]")]
    image: String,
    /// Print only the pushed manifest's digest.
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    registry: RegistryOpts,
}

pub fn run(args: &PushArgs, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let store = open_store(global)?;
    let registry = args.registry.registry()?;
    let reference = Reference::parse(&args.image)?;
    if !args.quiet {
        println!("The push refers to repository [{}]", reference.name());
    }
    let display = Arc::new(Display::new(Verb::Push, args.quiet));
    let outcome = block_on(registry.push(&store, &reference, display.clone()))?;
    display.finish();
    // The registry's errors name the operation and the image already.
    let outcome = outcome?;
    if args.quiet {
        println!("{}", outcome.digest);
    } else {
        println!(
            "{}: digest: {} size: {}",
            reference.tag().unwrap_or("latest"),
            outcome.digest,
            outcome.size
        );
    }
    Ok(ExitCode::SUCCESS)
}
