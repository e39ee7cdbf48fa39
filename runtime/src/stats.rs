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

    /// Where the container's json log is; an error for a container whose
    /// log driver keeps no log.
    pub fn log_path(&self, key: &str) -> Result<std::path::PathBuf> {
        let id = self.resolve(key)?;
        let dir = self.root.container(&id);
        let config: crate::ContainerConfig = crate::state::read_json(&dir.config())?;
        if config.log.driver == crate::config::LogDriver::None {
            return Err(Error::invalid(
                "logs",
                "configured logging driver does not support reading (the container's log driver is none)",
            ));
        }
        Ok(dir.log())
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
