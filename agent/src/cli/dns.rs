//! `berth dns` (hidden): a network's DNS server, started detached by the
//! networking code (`berth_net::dns::spawn`), or run in the foreground to
//! debug one: `berth dns --state-dir /var/lib/berth/networks/NAME`. Its
//! argv is a stable interface between berth versions:
//! `dns --state-dir DIR [--detach]`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

#[derive(Debug, Args)]
pub struct DnsArgs {
    /// The network's state dir, holding dns.json.
    #[arg(long, value_name = "DIR")]
    pub state_dir: PathBuf,
    /// Started by berth: the lock on stdin, the status pipe on stdout.
    #[arg(long, hide = true)]
    pub detach: bool,
}

pub fn run(args: DnsArgs) -> anyhow::Result<ExitCode> {
    let server = berth_net::dns::ServerArgs {
        state_dir: args.state_dir,
        detach: args.detach,
    };
    // Mostly idle for the network's whole life: what setting up touched
    // (clap, config parsing, the runtime's start) need not stay resident.
    match berth_net::dns::main(&server, berth_runtime::release_setup_text) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // Detached, the server logged its error and told its spawner.
        Err(_) if server.detach => Ok(ExitCode::FAILURE),
        // The errors name the network's dir already.
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    #[test]
    fn the_spawned_argv_parses_back() {
        let server = berth_net::dns::ServerArgs {
            state_dir: "/var/lib/berth/networks/shop_default".into(),
            detach: true,
        };
        let argv = std::iter::once("berth".into()).chain(server.to_argv());
        let cli = Cli::try_parse_from(argv).unwrap();
        let Command::Dns(args) = cli.command else {
            panic!("not dns: {:?}", cli.command)
        };
        assert_eq!(args.state_dir, server.state_dir);
        assert!(args.detach);
    }

    #[test]
    fn the_server_gets_the_system_allocator() {
        assert_eq!(
            berth_net::dns::SYSTEM_ALLOCATOR_ENV,
            berth_runtime::alloc::SYSTEM_ALLOCATOR_ENV
        );
    }
}
