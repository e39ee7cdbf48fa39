//! `network connect` / `disconnect`: one more network for a container
//! that has an endpoint, or one less.

use crate::attach::{Slot, plan_attachment};
use crate::error::{Error, Result};
use crate::interfaces::veth_name;
use crate::state::{self, Endpoint, Lock};
use crate::{IFACE_PREFIX, JoinRequest, Net, links};

impl Net {
    /// Joins a container that has an endpoint to one more network (`docker
    /// network connect`): a new interface, its addresses, its names. The
    /// default route stays where it is unless no interface had one.
    pub fn connect(&self, container_id: &str, join: &JoinRequest) -> Result<Endpoint> {
        let _lock = Lock::acquire(&self.paths)?;
        let mut ep = self.endpoint(container_id)?.ok_or_else(|| {
            Error::Invalid(format!(
                "container {container_id} has no network namespace of its own (network none, host or container:): it cannot join a network"
            ))
        })?;
        if ep.attachments.iter().any(|a| a.network == join.network) {
            return Err(Error::Conflict(format!(
                "container {} is already connected to network {}",
                ep.container_name, join.network
            )));
        }
        let network = self.network(&join.network)?;
        let prefix = network
            .driver_opts
            .get(IFACE_PREFIX)
            .map(String::as_str)
            .unwrap_or("eth");
        // The first free slot: veth names (and default interface names)
        // follow it.
        let index = (0..)
            .find(|i| {
                !ep.attachments.iter().any(|a| {
                    a.ifname == format!("{prefix}{i}")
                        || a.host_veth == veth_name("veth", container_id, *i)
                })
            })
            .unwrap_or(ep.attachments.len());
        let attachment = plan_attachment(
            &Slot {
                container_id,
                container_name: &ep.container_name,
                index,
                default_route: !network.internal && !ep.attachments.iter().any(|a| a.default_route),
            },
            join,
            &network,
            &self.endpoints()?,
            &ep.attachments,
        )?;
        ep.attachments.push(attachment);
        state::write_json(&self.paths.endpoint_file(container_id), &ep)?;
        let made = self
            .ensure_locked(&ep)
            .and_then(|()| self.sync_locked(std::slice::from_ref(&network.name)));
        if let Err(e) = made {
            let _ = self.disconnect_locked(container_id, &network.name);
            return Err(e);
        }
        Ok(ep)
    }

    /// Takes a container off one network (`docker network disconnect`).
    pub fn disconnect(&self, container_id: &str, network: &str) -> Result<()> {
        let _lock = Lock::acquire(&self.paths)?;
        self.disconnect_locked(container_id, network)
    }

    fn disconnect_locked(&self, container_id: &str, network: &str) -> Result<()> {
        let mut ep = self.endpoint(container_id)?.ok_or_else(|| {
            Error::Invalid(format!(
                "container {container_id} is not connected to network {network}"
            ))
        })?;
        let Some(pos) = ep.attachments.iter().position(|a| a.network == network) else {
            return Err(Error::Invalid(format!(
                "container {} is not connected to network {network}",
                ep.container_name
            )));
        };
        let gone = ep.attachments.remove(pos);
        let veth = gone.host_veth.clone();
        links::in_host(move |h| async move { links::delete(&h, &veth).await })?;
        if ep.port_target == Some(gone.ip) {
            // Published ports led through this network.
            ep.port_target = None;
            ep.port_target6 = None;
        }
        state::write_json(&self.paths.endpoint_file(container_id), &ep)?;
        self.sync_locked(&[network.to_owned()])
    }
}
