//! `ulimits`: `setrlimit` in the container's processes before exec.
//!
//! Names are Docker's (`nofile`, `nproc`, `core`, `memlock`, `stack`, ...;
//! `as` is left out, as in Docker). -1 is unlimited. A value above what the
//! host allows is clamped to the host's maximum instead of failing the
//! container: as root that is `fs.nr_open` for `nofile` and nothing else;
//! without `CAP_SYS_RESOURCE`, the caller's own hard limits. Callers that
//! know the service ([`clamp_to_host`]) warn about each clamp.

use nix::sys::resource::{Resource, setrlimit};

use crate::config::Rlimit;
use crate::error::{Error, Result};

/// `RLIM_INFINITY` as Docker writes it.
pub const UNLIMITED: i64 = -1;

/// Docker's ulimit names and their resources.
const NAMES: &[(&str, Resource)] = &[
    ("core", Resource::RLIMIT_CORE),
    ("cpu", Resource::RLIMIT_CPU),
    ("data", Resource::RLIMIT_DATA),
    ("fsize", Resource::RLIMIT_FSIZE),
    ("locks", Resource::RLIMIT_LOCKS),
    ("memlock", Resource::RLIMIT_MEMLOCK),
    ("msgqueue", Resource::RLIMIT_MSGQUEUE),
    ("nice", Resource::RLIMIT_NICE),
    ("nofile", Resource::RLIMIT_NOFILE),
    ("nproc", Resource::RLIMIT_NPROC),
    ("rss", Resource::RLIMIT_RSS),
    ("rtprio", Resource::RLIMIT_RTPRIO),
    ("rttime", Resource::RLIMIT_RTTIME),
    ("sigpending", Resource::RLIMIT_SIGPENDING),
    ("stack", Resource::RLIMIT_STACK),
];

fn resource(name: &str) -> Option<Resource> {
    NAMES.iter().find(|(n, _)| *n == name).map(|(_, r)| *r)
}

/// Docker's checks: a known name, values of -1 or more, soft no larger
/// than hard (unlimited counts as the largest), each name once.
pub fn validate(limits: &[Rlimit]) -> Result<()> {
    for (i, r) in limits.iter().enumerate() {
        if resource(&r.name).is_none() {
            let known: Vec<&str> = NAMES.iter().map(|(n, _)| *n).collect();
            return Err(Error::invalid(
                "ulimit",
                format!(
                    "invalid ulimit type: {} (known: {})",
                    r.name,
                    known.join(", ")
                ),
            ));
        }
        if r.soft < UNLIMITED || r.hard < UNLIMITED {
            return Err(Error::invalid(
                "ulimit",
                format!("{}: values must be -1 (unlimited) or more", r.name),
            ));
        }
        if as_u64(r.soft) > as_u64(r.hard) {
            return Err(Error::invalid(
                "ulimit",
                format!(
                    "{}: ulimit soft limit must be less than or equal to hard limit: {} > {}",
                    r.name, r.soft, r.hard
                ),
            ));
        }
        if limits[..i].iter().any(|o| o.name == r.name) {
            return Err(Error::invalid("ulimit", format!("{} is set twice", r.name)));
        }
    }
    Ok(())
}

fn as_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

fn as_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(UNLIMITED)
}

/// The most the host lets a container have for `name` (`None`:
/// unlimited). Root (`CAP_SYS_RESOURCE`) may raise any hard limit, but
/// `nofile` only up to `fs.nr_open`; anyone else keeps their own hard
/// limit.
pub fn host_max(name: &str) -> Option<u64> {
    let res = resource(name)?;
    let privileged = caps::has_cap(
        None,
        caps::CapSet::Effective,
        caps::Capability::CAP_SYS_RESOURCE,
    )
    .unwrap_or(false);
    let own_hard = nix::sys::resource::getrlimit(res)
        .ok()
        .map(|(_, hard)| hard)
        .filter(|h| *h != libc::RLIM_INFINITY);
    match (privileged, res) {
        (true, Resource::RLIMIT_NOFILE) => std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|s| s.trim().parse().ok()),
        (true, _) => None,
        (false, _) => own_hard,
    }
}

/// What clamping changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clamped {
    pub name: String,
    /// As asked, `(soft, hard)`.
    pub requested: (i64, i64),
    /// As it will be set.
    pub allowed: (i64, i64),
}

/// `r` within `max` (`None`: no maximum).
pub fn clamp(r: &Rlimit, max: Option<u64>) -> Rlimit {
    let Some(max) = max else {
        return r.clone();
    };
    let cap = |v: i64| as_i64(as_u64(v).min(max));
    Rlimit {
        name: r.name.clone(),
        soft: cap(r.soft),
        hard: cap(r.hard),
    }
}

/// Clamps every limit to what this host allows, returning what changed.
pub fn clamp_to_host(limits: &mut [Rlimit]) -> Vec<Clamped> {
    let mut changed = Vec::new();
    for r in limits.iter_mut() {
        let clamped = clamp(r, host_max(&r.name));
        if clamped != *r {
            changed.push(Clamped {
                name: r.name.clone(),
                requested: (r.soft, r.hard),
                allowed: (clamped.soft, clamped.hard),
            });
            *r = clamped;
        }
    }
    changed
}

/// Sets each limit on the calling process (clamped to the host's maximum,
/// so a config written elsewhere cannot make `setrlimit` fail with EPERM).
pub fn apply(limits: &[Rlimit]) -> Result<()> {
    for r in limits {
        let Some(res) = resource(&r.name) else {
            return Err(Error::invalid(
                "ulimit",
                format!("invalid ulimit type: {}", r.name),
            ));
        };
        let r = clamp(r, host_max(&r.name));
        let raw = |v: i64| {
            if v == UNLIMITED {
                libc::RLIM_INFINITY
            } else {
                as_u64(v)
            }
        };
        tracing::debug!(name = %r.name, soft = r.soft, hard = r.hard, "setrlimit");
        setrlimit(res, raw(r.soft), raw(r.hard)).map_err(|e| Error::Sys {
            action: "setrlimit",
            source: e,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn r(name: &str, soft: i64, hard: i64) -> Rlimit {
        Rlimit {
            name: name.into(),
            soft,
            hard,
        }
    }

    #[test]
    fn docker_names_and_checks() {
        assert!(
            validate(&[
                r("nofile", 1024, 2048),
                r("core", -1, -1),
                r("stack", 8192, -1)
            ])
            .is_ok()
        );
        let err = validate(&[r("files", 1, 1)]).unwrap_err().to_string();
        assert!(err.contains("invalid ulimit type: files"), "{err}");
        let err = validate(&[r("nofile", 4096, 1024)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("4096 > 1024"), "{err}");
        assert!(
            validate(&[r("nofile", -1, 1024)]).is_err(),
            "unlimited soft over a finite hard"
        );
        assert!(validate(&[r("nproc", -2, 5)]).is_err());
        assert!(validate(&[r("nproc", 1, 1), r("nproc", 2, 2)]).is_err());
        assert!(
            validate(&[r("as", 1, 1)]).is_err(),
            "Docker leaves `as` out"
        );
    }

    #[test]
    fn clamping_caps_both_values_at_the_maximum() {
        assert_eq!(
            clamp(&r("nofile", 10, 2_000_000), Some(1_048_576)),
            r("nofile", 10, 1_048_576)
        );
        assert_eq!(
            clamp(&r("nofile", 2_000_000, 3_000_000), Some(1_048_576)),
            r("nofile", 1_048_576, 1_048_576)
        );
        assert_eq!(
            clamp(&r("nofile", -1, -1), Some(100)),
            r("nofile", 100, 100)
        );
        assert_eq!(clamp(&r("core", -1, -1), None), r("core", -1, -1));
        assert_eq!(clamp(&r("nofile", 5, 6), Some(100)), r("nofile", 5, 6));
    }

    #[test]
    fn the_host_maximum_for_nofile_is_nr_open_as_root() {
        let root = caps::has_cap(
            None,
            caps::CapSet::Effective,
            caps::Capability::CAP_SYS_RESOURCE,
        )
        .unwrap_or(false);
        if !root {
            eprintln!("SKIPPED: needs CAP_SYS_RESOURCE to see root's limits");
            return;
        }
        let nr_open: u64 = std::fs::read_to_string("/proc/sys/fs/nr_open")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(host_max("nofile"), Some(nr_open));
        assert_eq!(host_max("core"), None);
        let mut limits = vec![r("nofile", 1024, i64::MAX), r("core", 0, 0)];
        let changed = clamp_to_host(&mut limits);
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].name, "nofile");
        assert_eq!(changed[0].allowed, (1024, nr_open as i64));
        assert_eq!(limits[0].hard, nr_open as i64);
    }
}
