//! SSH agents for `RUN --mount=type=ssh` (`berth build --ssh`, compose's
//! `build.ssh`).
//!
//! Each `--ssh ID=PATH[,PATH...]` is either one agent socket (forwarded
//! as it is) or key files: for those berth starts a private `ssh-agent`
//! for the build and loads them with `ssh-add`, as BuildKit keeps its own
//! in-process agent for key files ([`Agents::start`]; both binaries come
//! with openssh-client). The agent is never mounted directly: each mount
//! gets a socket of its own ([`Forward`]) owned by the mount's `uid`/`gid`
//! with its `mode` (BuildKit's 0600 root:root by default) that relays
//! every connection to the agent, so the host's socket keeps its
//! permissions and the step can only talk the agent protocol.

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The agents of one build, by ssh id; private agents end on drop.
#[derive(Default)]
pub struct Agents {
    sockets: BTreeMap<String, PathBuf>,
    /// Per private agent: the `cat` it runs as its command (its stdin is
    /// a pipe from this process) and the agent's pid.
    children: Vec<(Child, Option<i32>)>,
    _dirs: Vec<tempfile::TempDir>,
}

fn is_socket(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.file_type().is_socket())
}

impl Agents {
    /// Sockets given are used as they are; key files are loaded into an
    /// `ssh-agent` of this build (under `tmp`).
    pub fn start(given: &BTreeMap<String, Vec<PathBuf>>, tmp: &Path) -> Result<Agents, String> {
        let mut agents = Agents::default();
        for (id, paths) in given {
            match paths.as_slice() {
                [] => {
                    return Err(format!(
                        "--ssh {id}: no agent socket or key file (set SSH_AUTH_SOCK or give {id}=PATH)"
                    ));
                }
                [one] if is_socket(one) => {
                    agents.sockets.insert(id.clone(), one.clone());
                }
                keys => {
                    if let Some(sock) = keys.iter().find(|p| is_socket(p)) {
                        return Err(format!(
                            "--ssh {id}: {} is an agent socket; give either one socket or key files",
                            sock.display()
                        ));
                    }
                    let socket = agents.private_agent(id, keys, tmp)?;
                    agents.sockets.insert(id.clone(), socket);
                }
            }
        }
        Ok(agents)
    }

    fn private_agent(&mut self, id: &str, keys: &[PathBuf], tmp: &Path) -> Result<PathBuf, String> {
        for k in keys {
            std::fs::metadata(k).map_err(|e| format!("--ssh {id}: {}: {e}", k.display()))?;
        }
        std::fs::create_dir_all(tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
        let dir = tempfile::Builder::new()
            .prefix("ssh-agent-")
            .tempdir_in(tmp)
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
        let socket = dir.path().join("agent.sock");
        // The agent runs a command and ends with it (checked every few
        // seconds); the command is `cat` on a pipe from this process, so
        // a berth that is killed does not leave the agent behind. It
        // prints the agent's pid first, for a prompt kill on drop.
        let mut child = Command::new("ssh-agent")
            .arg("-a")
            .arg(&socket)
            .args(["sh", "-c", "echo \"$SSH_AGENT_PID\"; exec cat >/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                format!("--ssh {id}: cannot start ssh-agent for the key files (apt-get install openssh-client): {e}")
            })?;
        let mut pid_line = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut pid_line);
        }
        self.children.push((child, pid_line.trim().parse().ok()));
        self._dirs.push(dir);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !is_socket(&socket) {
            if Instant::now() > deadline {
                return Err(format!(
                    "--ssh {id}: ssh-agent did not create {}",
                    socket.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let out = Command::new("ssh-add")
            .args(keys)
            .env("SSH_AUTH_SOCK", &socket)
            .env_remove("SSH_ASKPASS")
            .env_remove("DISPLAY")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("--ssh {id}: cannot run ssh-add: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "--ssh {id}: cannot load the key files (a key with a passphrase needs an agent: give its socket): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        tracing::debug!(
            id,
            keys = keys.len(),
            "ssh keys loaded into a private agent"
        );
        Ok(socket)
    }

    /// The agent socket of `id`.
    pub fn socket(&self, id: &str) -> Option<&Path> {
        self.sockets.get(id).map(PathBuf::as_path)
    }
}

impl Drop for Agents {
    fn drop(&mut self) {
        for (child, agent) in &mut self.children {
            if let Some(pid) = agent {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(*pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A socket of one RUN's ssh mount relaying to an agent; stops on drop.
pub struct Forward {
    dir: tempfile::TempDir,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Forward {
    /// A socket under `tmp` owned by `uid`:`gid` with `mode`.
    pub fn start(
        agent: &Path,
        tmp: &Path,
        uid: u32,
        gid: u32,
        mode: u32,
    ) -> Result<Forward, String> {
        std::fs::create_dir_all(tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
        let dir = tempfile::Builder::new()
            .prefix("ssh-")
            .tempdir_in(tmp)
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
        let path = dir.path().join("agent.sock");
        let listener = UnixListener::bind(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        nix::unistd::chown(
            &path,
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
        )
        .map_err(|e| format!("{}: {e}", path.display()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let agent = agent.to_owned();
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            for client in listener.incoming() {
                if stopping.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(client) = client else { continue };
                let agent = agent.clone();
                std::thread::spawn(move || relay(client, &agent));
            }
        });
        Ok(Forward {
            dir,
            stop,
            thread: Some(thread),
        })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("agent.sock")
    }
}

/// Copies both ways between a step's connection and the agent.
fn relay(client: UnixStream, agent: &Path) {
    let Ok(upstream) = UnixStream::connect(agent) else {
        tracing::warn!(agent = %agent.display(), "cannot connect to the ssh agent");
        return;
    };
    let (Ok(mut client_r), Ok(mut upstream_w)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_r, &mut upstream_w);
        let _ = upstream_w.shutdown(std::net::Shutdown::Write);
    });
    let (mut upstream_r, mut client_w) = (upstream, client);
    let _ = std::io::copy(&mut upstream_r, &mut client_w);
    let _ = client_w.shutdown(std::net::Shutdown::Write);
    let _ = up.join();
}

impl Drop for Forward {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accept loop so it sees `stop`; a thread that cannot
        // be woken is left to end with the process rather than hang the
        // build on a join.
        if UnixStream::connect(self.path()).is_ok()
            && let Some(t) = self.thread.take()
        {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn forwards_connections_with_the_asked_mode() {
        let tmp = tempfile::tempdir().unwrap();
        let agent_path = tmp.path().join("upstream.sock");
        let upstream = UnixListener::bind(&agent_path).unwrap();
        std::thread::spawn(move || {
            for c in upstream.incoming() {
                let mut c = c.unwrap();
                let mut buf = [0u8; 4];
                c.read_exact(&mut buf).unwrap();
                c.write_all(&buf.map(|b| b.to_ascii_uppercase())).unwrap();
            }
        });
        let uid = nix::unistd::getuid().as_raw();
        let gid = nix::unistd::getgid().as_raw();
        let fwd = Forward::start(&agent_path, tmp.path(), uid, gid, 0o600).unwrap();
        let mode = std::fs::metadata(fwd.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        for _ in 0..2 {
            let mut c = UnixStream::connect(fwd.path()).unwrap();
            c.write_all(b"ping").unwrap();
            let mut got = [0u8; 4];
            c.read_exact(&mut got).unwrap();
            assert_eq!(&got, b"PING");
        }
        let path = fwd.path();
        drop(fwd);
        assert!(!path.exists(), "the socket goes with the forward");
    }

    #[test]
    fn ids_need_a_socket_or_keys() {
        let tmp = tempfile::tempdir().unwrap();
        let mut given = BTreeMap::new();
        given.insert("default".to_owned(), Vec::new());
        let err = Agents::start(&given, tmp.path()).err().unwrap();
        assert!(err.contains("SSH_AUTH_SOCK"), "{err}");
        given.insert("default".to_owned(), vec![tmp.path().join("missing_key")]);
        let err = Agents::start(&given, tmp.path()).err().unwrap();
        assert!(err.contains("missing_key"), "{err}");
    }
}
