//! Which capabilities a container's processes get: Docker's default set,
//! changed by `cap_add`/`cap_drop` or replaced by `privileged`, with
//! Docker's rules (moby's `TweakCapabilities`).
//!
//! Names are accepted as Docker accepts them: any case, with or without
//! the `CAP_` prefix, and `ALL`. An unknown name is an error that names it,
//! never a silently ignored entry.

use std::collections::HashSet;
use std::str::FromStr;

use caps::Capability;

use crate::config::Security;
use crate::error::{Error, Result};
use crate::process::DEFAULT_CAPS;

/// One entry of `cap_add`/`cap_drop`, normalized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CapName {
    All,
    One(Capability),
}

/// `net_admin`, `CAP_NET_ADMIN`, `Net_Admin`, `all`.
pub fn parse_capability(name: &str) -> Result<CapName> {
    let trimmed = name.trim();
    if trimmed.eq_ignore_ascii_case("ALL") {
        return Ok(CapName::All);
    }
    Capability::from_str(&caps::to_canonical(trimmed))
        .map(CapName::One)
        .map_err(|_| {
            Error::invalid(
                "capability",
                format!(
                    "unknown capability {name:?}: use a name from capabilities(7) such as NET_ADMIN or CAP_SYS_TIME, or ALL"
                ),
            )
        })
}

fn parse_all(names: &[String]) -> Result<Vec<CapName>> {
    names.iter().map(|n| parse_capability(n)).collect()
}

/// Checks every name in `cap_add` and `cap_drop`.
pub fn validate(security: &Security) -> Result<()> {
    parse_all(&security.cap_add)?;
    parse_all(&security.cap_drop)?;
    Ok(())
}

/// The capabilities a container can have here: those this kernel knows
/// (`/proc/sys/kernel/cap_last_cap`) that are still in this process's
/// bounding set (a host that withholds one, as some sandboxes withhold
/// `CAP_SYS_RESOURCE`, cannot pass it on; Docker gives "all" the same
/// meaning).
pub fn supported() -> HashSet<Capability> {
    let kernel: HashSet<Capability> = caps::runtime::procfs_all_supported(None)
        .unwrap_or_else(|_| caps::runtime::thread_all_supported())
        .into_iter()
        .collect();
    match caps::read(None, caps::CapSet::Bounding) {
        Ok(bounding) => kernel
            .into_iter()
            .filter(|c| bounding.contains(c))
            .collect(),
        Err(_) => kernel,
    }
}

/// The set a container with `security` gets, out of `all` (the kernel's):
/// every one when privileged; otherwise Docker's defaults with `cap_drop`
/// removed and `cap_add` added, where `cap_add: [ALL]` starts from all
/// capabilities (minus `cap_drop`) and `cap_drop: [ALL]` keeps only
/// `cap_add`.
pub fn effective(security: &Security, all: &HashSet<Capability>) -> Result<HashSet<Capability>> {
    if security.privileged {
        return Ok(all.clone());
    }
    let add = parse_all(&security.cap_add)?;
    let drop = parse_all(&security.cap_drop)?;
    let named = |list: &[CapName]| -> HashSet<Capability> {
        list.iter()
            .filter_map(|c| match c {
                CapName::One(cap) => Some(*cap),
                CapName::All => None,
            })
            .collect()
    };
    let (add_set, drop_set) = (named(&add), named(&drop));
    let out: HashSet<Capability> = if add.contains(&CapName::All) {
        all.difference(&drop_set).copied().collect()
    } else if drop.contains(&CapName::All) {
        add_set
    } else {
        DEFAULT_CAPS
            .iter()
            .copied()
            .filter(|c| !drop_set.contains(c))
            .chain(add_set)
            .collect()
    };
    // A capability this kernel does not have cannot be raised; asking for
    // it by name is not worth failing the container over.
    Ok(out.intersection(all).copied().collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sec(add: &[&str], drop: &[&str]) -> Security {
        Security {
            cap_add: add.iter().map(|s| s.to_string()).collect(),
            cap_drop: drop.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn all() -> HashSet<Capability> {
        caps::all()
    }

    #[test]
    fn names_in_any_case_with_or_without_prefix() {
        use Capability::*;
        for n in [
            "NET_ADMIN",
            "net_admin",
            "CAP_NET_ADMIN",
            "cap_Net_Admin",
            " NET_ADMIN ",
        ] {
            assert_eq!(
                parse_capability(n).unwrap(),
                CapName::One(CAP_NET_ADMIN),
                "{n}"
            );
        }
        assert_eq!(parse_capability("all").unwrap(), CapName::All);
        assert_eq!(parse_capability("ALL").unwrap(), CapName::All);
        let err = parse_capability("NET_ADMINN").unwrap_err().to_string();
        assert!(err.contains("\"NET_ADMINN\""), "{err}");
        assert!(parse_capability("").is_err());
        assert!(validate(&sec(&["SYS_TIME"], &["bogus"])).is_err());
    }

    #[test]
    fn add_and_drop_change_dockers_defaults() {
        use Capability::*;
        let defaults: HashSet<Capability> = DEFAULT_CAPS.iter().copied().collect();
        assert_eq!(effective(&sec(&[], &[]), &all()).unwrap(), defaults);
        let s = effective(&sec(&["net_admin"], &["CHOWN", "cap_kill"]), &all()).unwrap();
        assert!(s.contains(&CAP_NET_ADMIN));
        assert!(!s.contains(&CAP_CHOWN) && !s.contains(&CAP_KILL));
        assert_eq!(s.len(), defaults.len() - 1);
    }

    #[test]
    fn all_in_add_or_drop() {
        use Capability::*;
        let s = effective(&sec(&["ALL"], &["SYS_ADMIN"]), &all()).unwrap();
        assert_eq!(s.len(), all().len() - 1);
        assert!(!s.contains(&CAP_SYS_ADMIN));
        let s = effective(&sec(&["NET_BIND_SERVICE"], &["all"]), &all()).unwrap();
        assert_eq!(s, HashSet::from([CAP_NET_BIND_SERVICE]));
        let s = effective(&sec(&[], &["ALL"]), &all()).unwrap();
        assert!(s.is_empty());
    }

    #[test]
    fn privileged_gets_everything_the_kernel_has() {
        use Capability::*;
        let kernel: HashSet<Capability> = [CAP_CHOWN, CAP_SYS_ADMIN].into();
        let mut s = sec(&[], &["ALL"]);
        s.privileged = true;
        assert_eq!(effective(&s, &kernel).unwrap(), kernel);
        // Only what the kernel has, even when named.
        let s = effective(&sec(&["SYS_ADMIN", "BPF"], &["ALL"]), &kernel).unwrap();
        assert_eq!(s, HashSet::from([CAP_SYS_ADMIN]));
    }
}
