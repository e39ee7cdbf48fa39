//! Service discovery: one small DNS server per network, answering the
//! names of the network's containers and forwarding everything else to
//! the host's resolvers.
//!
//! berth has no daemon, so the server is a process of its own per network
//! (`berth dns --state-dir <network dir>`), detached like a container's
//! shim, outliving the CLI or agent that started it. It listens on the
//! network's gateway address, port 53, UDP and TCP, which is what the
//! containers' `/etc/resolv.conf` names.
//!
//! The networking code talks to it through one file and three calls:
//! ```text
//! network created:   DnsRecords::new(vec![SocketAddr::new(gateway, DEFAULT_PORT)],
//!                                    host_upstreams(Path::new("/etc/resolv.conf"))?)
//!                        .save(dir)?;
//!                    spawn(dir, &berth_exe)?;            // no-op if it runs
//! container joins:   DnsRecords::update(dir, |r| r.set_container(id, names, ip))?;
//!   on several networks: its resolv.conf names the first network's server,
//!   whose record of it lists the others:
//!                    DnsRecords::update(first_dir, |r| Ok(r.set_other_networks(id, other_dirs)))?;
//! container leaves:  DnsRecords::update(dir, |r| Ok(r.remove_container(id)))?;
//! network removed:   stop(dir)?;
//! ```
//! The server notices a new `dns.json` on the next query (one `stat` per
//! query; see `server`), so updates need no signal and no restart.
//!
//! Files in the network's state dir:
//! - `dns.json`: the records ([`DnsRecords`]), replaced atomically;
//! - `dns.json.lock`: serializes writers ([`DnsRecords::update`]);
//! - `dns.lock`: held by the running server for its whole life (liveness);
//! - `dns.pid`: the running server's pid;
//! - `dns.log` (`.1`): its log, rotated at spawn past 1 MiB.
//!
//! Only sources on the listen interfaces' subnets (and loopback) are
//! answered: see `clients`.
//!
//! Answers: see `answer` (A with every replica, round-robin, TTL 0; AAAA
//! and other types NOERROR-empty for known names; the search domain; PTR;
//! forwarding with SERVFAIL on timeout). Why the host's loopback resolvers
//! are fine upstreams: see [`host_upstreams`].

mod answer;
mod clients;
mod daemon;
mod error;
mod forward;
mod process;
mod records;
mod resolv;
mod server;
mod zone;

pub use daemon::{SYSTEM_ALLOCATOR_ENV, Spawned, is_running, pid, spawn, stop};
pub use error::{Error, ErrorKind, Result};
pub use process::{ServerArgs, main};
pub use records::{ContainerRecord, DEFAULT_PORT, DnsRecords, FORMAT_VERSION};
pub use resolv::{FALLBACK_UPSTREAMS, host_upstreams, parse_nameservers};

/// The records file in a network's state dir.
pub const RECORDS_FILE: &str = "dns.json";
/// Held by writers of [`RECORDS_FILE`] while they update it.
pub const RECORDS_LOCK_FILE: &str = "dns.json.lock";
/// Held by the running server.
pub const SERVER_LOCK_FILE: &str = "dns.lock";
/// The running server's pid.
pub const PID_FILE: &str = "dns.pid";
/// The server's log (its stderr).
pub const LOG_FILE: &str = "dns.log";
