//! `berth exec [-e K=V] [-w DIR] [-u USER] [--privileged] NAME CMD...`.
//!
//! Runs in this process, before any thread exists (the CLI never starts a
//! runtime for this verb); the runtime checks that and joins the
//! container's namespaces from a forked child.

use std::process::ExitCode;

use berth_runtime::ExecOptions;
use clap::Args;

use super::GlobalOpts;

#[derive(Debug, Args)]
pub struct ExecArgs {
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Every capability, whatever the container has.
    #[arg(long)]
    pub privileged: bool,
    pub container: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

pub fn run(args: ExecArgs, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let rt = super::run::runtime(global);
    let env = args
        .env
        .iter()
        .filter_map(|kv| {
            if kv.contains('=') {
                Some(kv.clone())
            } else {
                std::env::var(kv).ok().map(|v| format!("{kv}={v}"))
            }
        })
        .collect();
    let code = rt.exec(
        &args.container,
        &ExecOptions {
            args: args.command,
            env,
            cwd: args.workdir,
            user: args.user,
            privileged: args.privileged,
        },
    )?;
    Ok(super::run::exit_code(code))
}
