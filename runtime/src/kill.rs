//! `kill` and `stop`.

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::error::{Error, Result};
use crate::runtime::{ContainerInfo, Runtime};
use crate::shim::{control, tell_shim};
use crate::state::{State, Status, now_rfc3339, same_process_alive};

/// `9`, `KILL`, `SIGKILL`, `sigkill` → the signal.
pub fn parse_signal(s: &str) -> Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| Error::invalid("signal", s));
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>()
        .map_err(|_| Error::invalid("signal", s))
}

impl Runtime {
    /// Sends `signal` to the container's pid 1 (checked to still be the
    /// same process).
    ///
    /// Like Docker, it marks the container as stopped by the user (an
    /// `unless-stopped` policy leaves it down), and with the stop signal
    /// (any signal when the container has none configured, and always
    /// `SIGKILL`) cancels the restart its exit would bring. A container
    /// waiting to be restarted is only marked.
    pub fn kill(&self, key: &str, signal: Signal) -> Result<()> {
        let info = self.inspect(key)?;
        let dir = self.root.container(&info.config.id);
        let stops = match &info.config.stop_signal {
            Some(s) if signal != Signal::SIGKILL => parse_signal(s).is_ok_and(|s| s == signal),
            _ => true,
        };
        let byte = if stops {
            control::STOP
        } else {
            control::SIGNALLED
        };
        if info.observed.status == "restarting" {
            tell_shim(&dir, byte);
            return Ok(());
        }
        if !info.observed.container_alive {
            return Err(Error::InvalidState {
                id: info.config.id,
                status: info.observed.status,
                action: "kill",
            });
        }
        tracing::debug!(container.id = %info.config.id, ?signal, "kill");
        // Before the signal: the shim must know by the time it sees the exit.
        tell_shim(&dir, byte);
        kill(Pid::from_raw(info.state.pid), signal).map_err(|e| Error::sys("kill", e))?;
        // A paused container gets its signal once thawed, as with Docker.
        self.thaw_if_paused(&info.config.id);
        Ok(())
    }

    /// The stop signal, then `SIGKILL` once `timeout` (default: the
    /// container's stop timeout, else 10 s) has passed; returns once the
    /// exit is recorded. A stopped container is left as it is.
    ///
    /// The shim does not restart a container stopped this way, whatever
    /// its policy; one waiting to be restarted stays exited.
    pub fn stop(&self, key: &str, timeout: Option<Duration>) -> Result<()> {
        let info = self.inspect(key)?;
        if info.observed.status == "restarting" {
            tell_shim(&self.root.container(&info.config.id), control::STOP);
            if self.wait_gone(&info, Duration::from_secs(10)) {
                return Ok(());
            }
            return Err(Error::InvalidState {
                id: info.config.id,
                status: "restarting".to_owned(),
                action: "stop (its shim did not give up the restart within 10 s)",
            });
        }
        if !info.observed.container_alive {
            return Ok(());
        }
        tell_shim(&self.root.container(&info.config.id), control::STOP);
        let signal = match &info.config.stop_signal {
            Some(s) => parse_signal(s)?,
            None => Signal::SIGTERM,
        };
        let timeout = timeout
            .or(info.config.stop_timeout.map(Duration::from_secs))
            .unwrap_or(Duration::from_secs(10));
        let pid = Pid::from_raw(info.state.pid);
        let _ = kill(pid, signal);
        self.thaw_if_paused(&info.config.id);
        if self.wait_gone(&info, timeout) {
            return Ok(());
        }
        let _ = kill(pid, Signal::SIGKILL);
        if self.wait_gone(&info, Duration::from_secs(10)) {
            return Ok(());
        }
        Err(Error::InvalidState {
            id: info.config.id,
            status: "running".to_owned(),
            action: "stop (it survived SIGKILL for 10 s)",
        })
    }

    /// Waits until the container is gone and its exit recorded: by the
    /// shim when it lives, else here (the exit status is then lost).
    pub(crate) fn wait_gone(&self, info: &ContainerInfo, timeout: Duration) -> bool {
        let id = &info.config.id;
        let deadline = Instant::now() + timeout;
        loop {
            let alive = same_process_alive(info.state.pid, info.state.pid_start_time);
            let shim = self.shim_alive(id);
            if !alive && !shim {
                if !info.observed.shim_alive {
                    record_lost_exit(self, id);
                }
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn record_lost_exit(rt: &Runtime, id: &str) {
    let path = rt.root.container(id).state();
    if let Ok(mut st) = State::load(&path)
        && st.status != Status::Exited
    {
        st.status = Status::Exited;
        st.finished_at = Some(now_rfc3339());
        // Only a stop or a forced removal through berth waits here.
        st.manually_stopped = true;
        st.error = Some("the shim died: the exit status was not recorded".to_owned());
        let _ = st.save(&path);
    }
}

/// Docker's `--sig-proxy`: from now on, SIGINT, SIGTERM, SIGHUP, SIGQUIT,
/// SIGUSR1 and SIGUSR2 sent to this process go to the container's pid 1
/// (checked by start time) instead. Blocks them in the calling thread
/// and starts one thread that `sigwait`s; call it after the last fork of
/// this process (the shim is spawned already), before any other thread.
pub fn proxy_signals(pid: i32, start_time: u64) -> Result<()> {
    use nix::sys::signal::{SigSet, SigmaskHow, pthread_sigmask};
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ] {
        set.add(s);
    }
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
        .map_err(|e| Error::sys("block signals", e))?;
    std::thread::Builder::new()
        .name("sig-proxy".to_owned())
        .spawn(move || {
            while let Ok(sig) = set.wait() {
                if !same_process_alive(pid, start_time) {
                    return;
                }
                tracing::debug!(pid, ?sig, "forward signal");
                let _ = kill(Pid::from_raw(pid), sig);
            }
        })
        .map(drop)
        .map_err(|e| Error::io("spawn", "the signal proxy thread", e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn signals_by_name_or_number() {
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("TERM").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("sigint").unwrap(), Signal::SIGINT);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("999").is_err());
    }
}
