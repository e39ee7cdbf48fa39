//! `stats`: one sample of a container's cgroup counters.

use crate::cgroup::{CgroupPaths, CgroupSample};
use crate::error::{Error, Result};
use crate::runtime::Runtime;

impl Runtime {
    /// The counters of a running container's cgroup now. CPU % needs two
    /// samples: see [`crate::cpu_percent`].
    pub fn stats(&self, key: &str) -> Result<CgroupSample> {
        let info = self.inspect(key)?;
        if !info.observed.container_alive {
            return Err(Error::InvalidState {
                id: info.config.id,
                status: info.observed.status,
                action: "read stats",
            });
        }
        Ok(CgroupPaths::discover(&self.cgroup_root, &info.config.id).sample())
    }

    /// Where the container's json log is.
    pub fn log_path(&self, key: &str) -> Result<std::path::PathBuf> {
        let id = self.resolve(key)?;
        Ok(self.root.container(&id).log())
    }
}

/// The host's total memory in bytes (the "limit" of an unlimited cgroup,
/// as `docker stats` shows it).
pub fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                let rest = l.strip_prefix("MemTotal:")?;
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}
