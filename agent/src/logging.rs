//! The tracing subscriber: human-readable text for terminals, JSON lines for
//! machines. Logs go to stderr so that command output on stdout stays clean.

use std::io::IsTerminal;

use anyhow::Context;
use tracing_subscriber::EnvFilter;

use crate::cli::{GlobalOpts, LogFormat};

/// Installs the global subscriber. `--log-level` wins over `RUST_LOG`, which
/// wins over the default `info`.
pub fn init(opts: &GlobalOpts) -> anyhow::Result<()> {
    let filter =
        match &opts.log_level {
            Some(level) => EnvFilter::try_new(level)
                .with_context(|| format!("invalid --log-level {level:?}"))?,
            None => match std::env::var("RUST_LOG") {
                Ok(spec) if !spec.is_empty() => EnvFilter::try_new(&spec)
                    .with_context(|| format!("invalid RUST_LOG {spec:?}"))?,
                _ => EnvFilter::new("info"),
            },
        };
    // Colours only for a terminal that wants them, never in files or pipes.
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let result = match opts.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    result.map_err(|err| anyhow::anyhow!("cannot install the log subscriber: {err}"))
}
