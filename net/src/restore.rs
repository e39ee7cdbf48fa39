//! Bringing kernel state back from the files: after a reboot, a flush of
//! the nftables ruleset or a bridge deleted by hand, and releasing the
//! networking of containers removed behind berth's back.

use crate::error::Result;
use crate::interfaces::bridge_up;
use crate::state::{self, Endpoint, Lock};
use crate::sysctl::bridge_sysctls;
use crate::{Net, dns, links, netns, nft};

impl Net {
    /// Brings back every network's bridge, the interfaces of containers
    /// whose namespace is still bound, and the nftables table from the
    /// files (after a reboot or a flush), and drops endpoints whose
    /// container is gone (`exists` says which are not).
    pub fn restore(&self, exists: &dyn Fn(&str) -> bool) -> Result<()> {
        let _lock = Lock::acquire(&self.paths)?;
        self.restore_locked(exists)
    }

    fn restore_locked(&self, exists: &dyn Fn(&str) -> bool) -> Result<()> {
        for ep in self.endpoints()? {
            if !exists(&ep.container_id) {
                tracing::info!(container = %ep.container_name, "removing the networking of a container that is gone");
                self.detach_locked(&ep.container_id)?;
            }
        }
        let networks = self.networks()?;
        for n in &networks {
            let n2 = n.clone();
            links::in_host(move |h| async move { bridge_up(&h, &n2).await })?;
            bridge_sysctls(n)?;
        }
        // A namespace that is not bound (after a reboot) is made again
        // when its container starts (`ensure`), not here.
        for ep in self.endpoints()? {
            if netns::is_bound(&ep.netns) {
                self.ensure_locked(&ep)?;
            }
        }
        let names: Vec<String> = networks.iter().map(|n| n.name.clone()).collect();
        // Forced: the ruleset may have been flushed by hand since berth
        // last applied it (the cache only knows about reboots).
        self.sync_with(&names, true)
    }

    /// Detaches the endpoints of containers that are gone (`exists` says
    /// which are not: removed by a shim's `--rm`, by hand, or never
    /// created by a process killed in between), once their record is
    /// older than `min_age`: a younger one may belong to a create in
    /// flight in another process, between its attach and the runtime's
    /// create. The ids it detached. Also removes the temporary files of
    /// record writes whose process was killed before renaming them.
    pub fn drop_stale_endpoints(
        &self,
        exists: &dyn Fn(&str) -> bool,
        min_age: std::time::Duration,
    ) -> Result<Vec<String>> {
        let stale: Vec<Endpoint> = self
            .endpoints()?
            .into_iter()
            .filter(|ep| !exists(&ep.container_id))
            .filter(|ep| {
                std::fs::metadata(self.paths.endpoint_file(&ep.container_id))
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age >= min_age)
            })
            .collect();
        // Writes a killed process never renamed into place.
        state::remove_orphaned_temps(&self.paths.endpoints());
        if let Ok(networks) = std::fs::read_dir(self.paths.networks()) {
            for dir in networks.flatten() {
                state::remove_orphaned_temps(&dir.path());
            }
        }
        if stale.is_empty() {
            return Ok(Vec::new());
        }
        let _lock = Lock::acquire(&self.paths)?;
        let mut dropped = Vec::new();
        for ep in stale {
            // Checked again under the lock: it may have been detached or
            // its container made meanwhile.
            if self.endpoint(&ep.container_id)?.is_none() || exists(&ep.container_id) {
                continue;
            }
            tracing::info!(container = %ep.container_name, id = %ep.container_id, "removing the networking of a container that is gone");
            self.detach_locked(&ep.container_id)?;
            dropped.push(ep.container_id);
        }
        Ok(dropped)
    }

    /// [`Net::restore`] when something is missing, for a process opening
    /// the state: a bridge, the port of a bound container on it, the
    /// nftables table, a DNS server. Cheap when nothing is (one netlink
    /// dump per link, one `nft list`); never drops endpoints (another
    /// process may be between its attach and the container's create).
    /// `true` when it restored something.
    pub fn restore_if_missing(&self) -> Result<bool> {
        let networks = self.networks()?;
        if networks.is_empty() {
            return Ok(false);
        }
        // Checked without the lock (the files are replaced atomically), so
        // a verb that finds everything in place never waits for another
        // process's long change; a change caught half-way looks missing
        // and costs one idempotent restore.
        let endpoints = self.endpoints()?;
        let checks: Vec<(String, Vec<String>)> = networks
            .iter()
            .map(|n| {
                let ports = endpoints
                    .iter()
                    .filter(|e| netns::is_bound(&e.netns))
                    .flat_map(|e| e.attachments.iter())
                    .filter(|a| a.network == n.name)
                    .map(|a| a.host_veth.clone())
                    .collect();
                (n.bridge.clone(), ports)
            })
            .collect();
        let links_whole = links::in_host(move |h| async move {
            for (bridge, ports) in &checks {
                let Some(idx) = links::index(&h, bridge).await? else {
                    return Ok(false);
                };
                for p in ports {
                    if !links::is_port_of(&h, p, idx).await? {
                        return Ok(false);
                    }
                }
            }
            Ok(true)
        })?;
        let dns_running = networks
            .iter()
            .filter(|n| !n.is_default_bridge())
            .all(|n| self.dns.is_none() || dns::is_running(&self.paths.network_dir(&n.name)));
        if links_whole && dns_running && nft::table_exists() {
            return Ok(false);
        }
        tracing::info!(
            "restoring networks: a bridge, interface, nftables rule or DNS server is missing"
        );
        let _lock = Lock::acquire(&self.paths)?;
        self.restore_locked(&|_| true)?;
        Ok(true)
    }
}
