//! `berth stats [--no-stream] [NAME...]`: CPU %, memory, pids, refreshed
//! every second (or printed once after a one-second sample).

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use berth_runtime::{CgroupSample, cpu_percent, host_memory};
use clap::Args;

use super::GlobalOpts;

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Print one sample and exit.
    #[arg(long)]
    pub no_stream: bool,
    /// Containers (default: every running one).
    pub containers: Vec<String>,
}

pub fn run(args: StatsArgs, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let rt = super::run::runtime(global);
    let ids: Vec<(String, String)> = if args.containers.is_empty() {
        rt.list(false)
            .into_iter()
            .map(|c| (c.config.id, c.config.name))
            .collect()
    } else {
        args.containers
            .iter()
            .map(|c| {
                let i = rt.inspect(c)?;
                Ok((i.config.id, i.config.name))
            })
            .collect::<anyhow::Result<_>>()?
    };
    let host_mem = host_memory();
    let mut prev: Vec<Option<(CgroupSample, Instant)>> = ids
        .iter()
        .map(|(id, _)| rt.stats(id).ok().map(|s| (s, Instant::now())))
        .collect();
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let mut out = String::new();
        if !args.no_stream {
            out.push_str("\x1b[2J\x1b[H");
        }
        out.push_str(&format!(
            "{:<14}{:<24}{:>8}   {:<22}{:>8}   {:>5}\n",
            "CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "PIDS"
        ));
        for (i, (id, name)) in ids.iter().enumerate() {
            let now = rt.stats(id).ok().map(|s| (s, Instant::now()));
            let (cpu, mem, limit, pids) = match (&prev[i], &now) {
                (Some((a, ta)), Some((b, tb))) => {
                    let wall = tb.duration_since(*ta).as_nanos() as u64;
                    (
                        cpu_percent(a.cpu_usage_ns, b.cpu_usage_ns, wall),
                        b.memory_usage,
                        b.memory_limit
                            .filter(|&l| l < host_mem || host_mem == 0)
                            .unwrap_or(host_mem),
                        b.pids,
                    )
                }
                (None, Some((b, _))) => (
                    0.0,
                    b.memory_usage,
                    b.memory_limit.unwrap_or(host_mem),
                    b.pids,
                ),
                _ => (0.0, 0, 0, 0),
            };
            let mem_pct = if limit > 0 {
                mem as f64 / limit as f64 * 100.0
            } else {
                0.0
            };
            out.push_str(&format!(
                "{:<14}{:<24}{:>7.2}%   {:<22}{:>7.2}%   {:>5}\n",
                &id[..12.min(id.len())],
                name,
                cpu,
                format!("{} / {}", bytes(mem), bytes(limit)),
                mem_pct,
                pids
            ));
            prev[i] = now;
        }
        let mut stdout = std::io::stdout().lock();
        if stdout
            .write_all(out.as_bytes())
            .and_then(|_| stdout.flush())
            .is_err()
            || args.no_stream
        {
            return Ok(ExitCode::SUCCESS);
        }
    }
}

/// `12.5MiB` like docker stats.
fn bytes(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n}B")
    } else {
        format!("{v:.2}{}", units[u])
    }
}
