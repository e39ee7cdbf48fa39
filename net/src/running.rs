//! Which containers are in service: running or stopped (their ports
//! taken back or freed), and the switch of a start-first replacement.

use crate::Net;
use crate::attach::published_ports;
use crate::error::{Error, Result};
use crate::ports;
use crate::state::{self, Endpoint, Lock};

impl Net {
    /// Puts a standby container in service and the one it replaces out of
    /// it, in one nftables transaction: from one packet to the next, the
    /// published ports lead to `container_id` and no longer to
    /// `replacing`; the DNS records of their networks are rewritten at the
    /// same time. `replacing` keeps its namespace and addresses (it still
    /// runs, answering the connections it has) until it is detached.
    /// Refused (`Conflict`) when a container in service other than
    /// `replacing` publishes one of the same host ports.
    pub fn promote(&self, container_id: &str, replacing: &str) -> Result<()> {
        let _lock = Lock::acquire(&self.paths)?;
        let Some(mut ep) = self.endpoint(container_id)? else {
            return Ok(());
        };
        let endpoints = self.endpoints()?;
        for other in endpoints.iter().filter(|e| {
            e.running && !e.standby && e.container_id != container_id && e.container_id != replacing
        }) {
            if let Some(p) = ep
                .ports
                .iter()
                .find(|p| other.ports.iter().any(|o| o.clashes(p)))
            {
                return Err(Error::Conflict(format!(
                    "{}: host port {p} is published by {}",
                    ep.container_name, other.container_name
                )));
            }
        }
        let mut networks: Vec<String> = ep.attachments.iter().map(|a| a.network.clone()).collect();
        let before = ep.clone();
        let old_before = self.endpoint(replacing)?;
        // The new one first: a crash between the two writes leaves both
        // in service (the first DNAT rule wins), never neither.
        ep.standby = false;
        let switched = state::write_json(&self.paths.endpoint_file(container_id), &ep)
            .and_then(|()| match &old_before {
                Some(old) => {
                    networks.extend(old.attachments.iter().map(|a| a.network.clone()));
                    state::write_json(
                        &self.paths.endpoint_file(replacing),
                        &Endpoint {
                            standby: true,
                            ..old.clone()
                        },
                    )
                }
                None => Ok(()),
            })
            .and_then(|()| {
                networks.sort();
                networks.dedup();
                self.sync_locked(&networks)
            });
        if let Err(e) = switched {
            // Back as it was, so the old one keeps serving: the rules
            // and records on the host are the old ones or get them back.
            let _ = state::write_json(&self.paths.endpoint_file(container_id), &before);
            if let Some(old) = &old_before {
                let _ = state::write_json(&self.paths.endpoint_file(replacing), old);
            }
            let _ = self.sync_locked(&networks);
            return Err(e);
        }
        tracing::info!(container = %ep.container_name, replacing, "in service");
        Ok(())
    }

    /// Records whether the container runs: its names are in its networks'
    /// DNS records, and its ports published, only while it does. Called
    /// with `true` before the container starts: its ports, free for
    /// others while it was stopped, are taken again (the same ones where
    /// still free); a port it asked for by number that another container
    /// or a host process holds now fails the start, naming the holder.
    pub fn set_running(&self, container_id: &str, running: bool) -> Result<()> {
        let _lock = Lock::acquire(&self.paths)?;
        let Some(mut ep) = self.endpoint(container_id)? else {
            return Ok(());
        };
        if ep.running == running {
            return Ok(());
        }
        // A standby container's ports are checked when it is promoted: the
        // one it replaces still holds them now.
        if running && !ep.standby && !ep.ports.is_empty() {
            let endpoints = self.endpoints()?;
            ep.ports = ports::rebind(
                &ep.container_name,
                &ep.port_requests,
                &ep.ports,
                &published_ports(&endpoints, container_id),
                &ports::BindCheck,
            )?;
        }
        ep.running = running;
        state::write_json(&self.paths.endpoint_file(container_id), &ep)?;
        let networks: Vec<String> = ep.attachments.iter().map(|a| a.network.clone()).collect();
        self.sync_locked(&networks)
    }
}
