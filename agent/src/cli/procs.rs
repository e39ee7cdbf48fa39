//! A container's processes as `ps -ef` shows them (UID PID PPID C STIME
//! TTY TIME CMD), read from /proc: every process in the pid namespace of
//! the container's pid 1, which includes what `exec` started. Host pids
//! and host user names, as `docker top` shows them.

use std::path::Path;
use std::time::{Duration, SystemTime};

/// The columns, in `ps -ef`'s order.
pub const TITLES: [&str; 8] = ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"];

/// One process, read from `/proc/<pid>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub pid: i32,
    pub ppid: i32,
    pub uid: u32,
    pub tty_nr: i32,
    /// utime + stime, in clock ticks.
    pub cpu_ticks: u64,
    /// Clock ticks after boot.
    pub start_ticks: u64,
    pub comm: String,
    /// Arguments, joined with spaces; empty for kernel threads and
    /// zombies.
    pub cmdline: String,
}

/// The processes sharing `pid1`'s pid namespace, by pid. Empty when
/// `pid1` is gone.
pub fn in_namespace_of(pid1: i32) -> Vec<Process> {
    let Ok(ns) = std::fs::read_link(format!("/proc/{pid1}/ns/pid")) else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out: Vec<Process> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/ns/pid")).is_ok_and(|l| l == ns))
        .filter_map(|pid| read(Path::new(&format!("/proc/{pid}")), pid))
        .collect();
    out.sort_by_key(|p| p.pid);
    out
}

fn read(dir: &Path, pid: i32) -> Option<Process> {
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    let status = std::fs::read_to_string(dir.join("status")).ok()?;
    let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
    parse(pid, &stat, &status, &cmdline)
}

/// Parses `/proc/<pid>/{stat,status,cmdline}`.
pub fn parse(pid: i32, stat: &str, status: &str, cmdline: &[u8]) -> Option<Process> {
    // comm may hold spaces and parentheses: it ends at the last ')'.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_owned();
    let fields: Vec<&str> = stat.get(close + 2..)?.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<i64>().ok());
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().nth(1))
        .and_then(|u| u.parse().ok())?;
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    Some(Process {
        pid,
        ppid: i32::try_from(field(1)?).ok()?,
        tty_nr: i32::try_from(field(4)?).ok()?,
        uid,
        cpu_ticks: u64::try_from(field(11)? + field(12)?).ok()?,
        start_ticks: u64::try_from(field(19)?).ok()?,
        comm,
        cmdline: args.join(" "),
    })
}

/// What the columns need from the host: clock ticks per second, boot
/// time, now, and user names.
pub struct Clock {
    pub ticks_per_second: u64,
    pub boot: SystemTime,
    pub now: SystemTime,
}

impl Clock {
    pub fn host() -> Self {
        let ticks_per_second = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .and_then(|t| u64::try_from(t).ok())
            .filter(|t| *t > 0)
            .unwrap_or(100);
        let boot = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("btime "))
                    .and_then(|v| v.trim().parse::<u64>().ok())
            })
            .map_or(SystemTime::UNIX_EPOCH, |secs| {
                SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
            });
        Clock {
            ticks_per_second,
            boot,
            now: SystemTime::now(),
        }
    }

    fn started(&self, p: &Process) -> SystemTime {
        self.boot + Duration::from_millis(p.start_ticks * 1000 / self.ticks_per_second)
    }
}

/// The row `ps -ef` prints for `p`.
pub fn row(p: &Process, clock: &Clock, user: &dyn Fn(u32) -> String) -> Vec<String> {
    let cpu_secs = p.cpu_ticks / clock.ticks_per_second;
    let started = clock.started(p);
    let running = clock.now.duration_since(started).unwrap_or_default();
    vec![
        user(p.uid),
        p.pid.to_string(),
        p.ppid.to_string(),
        c_column(p.cpu_ticks, clock.ticks_per_second, running).to_string(),
        stime(started, clock.now),
        tty(p.tty_nr),
        cpu_time(cpu_secs),
        if p.cmdline.is_empty() {
            format!("[{}]", p.comm)
        } else {
            p.cmdline.clone()
        },
    ]
}

/// procps' C: CPU time over the process's lifetime, in whole percent,
/// at most 99.
fn c_column(cpu_ticks: u64, ticks_per_second: u64, running: Duration) -> u64 {
    let secs = running.as_secs();
    if secs == 0 {
        return 0;
    }
    (cpu_ticks * 100 / ticks_per_second / secs).min(99)
}

/// procps' STIME: `HH:MM` within the last day, `MonDD` within the year,
/// else the year; local time.
fn stime(started: SystemTime, now: SystemTime) -> String {
    let local: chrono::DateTime<chrono::Local> = started.into();
    let today: chrono::DateTime<chrono::Local> = now.into();
    if now.duration_since(started).unwrap_or_default() < Duration::from_secs(24 * 3600) {
        local.format("%H:%M").to_string()
    } else if local.format("%Y").to_string() == today.format("%Y").to_string() {
        local.format("%b%d").to_string()
    } else {
        local.format("%Y").to_string()
    }
}

/// `?` without a terminal, `pts/N` or `ttyN` with one.
fn tty(tty_nr: i32) -> String {
    if tty_nr == 0 {
        return "?".to_owned();
    }
    let major = (tty_nr >> 8) & 0xfff;
    let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
    match major {
        136..=143 => format!("pts/{}", minor + (major - 136) * 256),
        4 => format!("tty{minor}"),
        _ => format!("{major}/{minor}"),
    }
}

/// `HH:MM:SS`, or `D-HH:MM:SS` past a day.
fn cpu_time(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}-{h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

/// The host's name for `uid`, else the number (as `ps` does).
pub fn user_name(uid: u32) -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map_or_else(|| uid.to_string(), |u| u.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        let stat = "4242 (sleep (x)) S 4200 4242 4242 34816 4242 4194560 100 0 0 0 250 50 0 0 20 0 1 0 123456 1000 100 18446744073709551615";
        let status = "Name:\tsleep\nUid:\t0\t1000\t1000\t1000\nGid:\t0\t0\t0\t0\n";
        let p = parse(4242, stat, status, b"sleep\x003600\x00").unwrap();
        assert_eq!(
            p,
            Process {
                pid: 4242,
                ppid: 4200,
                uid: 1000,
                tty_nr: 34816,
                cpu_ticks: 300,
                start_ticks: 123_456,
                comm: "sleep (x)".into(),
                cmdline: "sleep 3600".into(),
            }
        );
    }

    #[test]
    fn columns_like_ps_ef() {
        let clock = Clock {
            ticks_per_second: 100,
            boot: SystemTime::UNIX_EPOCH,
            now: SystemTime::UNIX_EPOCH + Duration::from_secs(1300),
        };
        let p = Process {
            pid: 7,
            ppid: 1,
            uid: 0,
            tty_nr: 0,
            cpu_ticks: 30_000,
            start_ticks: 30_000,
            comm: "kworker".into(),
            cmdline: String::new(),
        };
        let r = row(&p, &clock, &|_| "root".into());
        // Started 300 s after boot, ran 1000 s, used 300 s of CPU: 30%.
        assert_eq!(r[0], "root");
        assert_eq!(r[3], "30");
        assert_eq!(r[5], "?");
        assert_eq!(r[6], "00:05:00");
        assert_eq!(r[7], "[kworker]");
        assert_eq!(tty(34816), "pts/0");
        assert_eq!(cpu_time(90_061), "1-01:01:01");
    }
}
