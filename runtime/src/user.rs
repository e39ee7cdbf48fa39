//! `--user` resolved against the container's `/etc/passwd` and
//! `/etc/group`, following runc's `GetExecUser` rules.

use crate::error::{Error, Result};

/// The identity the container's process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups: the groups that list the user as a member,
    /// unless a group was given explicitly.
    pub additional_gids: Vec<u32>,
    /// From passwd; `/` when the user has no entry.
    pub home: String,
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

fn parse_passwd(text: &str) -> Vec<PasswdEntry<'_>> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(PasswdEntry {
                name: f.first()?,
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                home: f.get(5).copied().unwrap_or(""),
            })
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<GroupEntry<'_>> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(GroupEntry {
                name: f.first()?,
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Resolves `spec` (`""`, `uid`, `name`, `uid:gid`, `name:group`, ...)
/// against passwd and group file contents (empty when the image has none).
/// A numeric user with no entry is allowed (gid 0, home `/`); a name that
/// is not there is an error, as in Docker.
pub fn resolve_user(spec: &str, passwd: &str, group: &str) -> Result<ExecUser> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let users = parse_passwd(passwd);
    let mut out = ExecUser {
        uid: 0,
        gid: 0,
        additional_gids: Vec::new(),
        home: "/".to_owned(),
    };
    let mut matched_name: Option<&str> = None;
    if user_part.is_empty() {
        if let Some(root) = users.iter().find(|u| u.uid == 0) {
            out.home = non_empty(root.home);
            matched_name = Some(root.name);
        }
    } else if let Ok(uid) = user_part.parse::<u32>() {
        out.uid = uid;
        if let Some(entry) = users.iter().find(|u| u.uid == uid) {
            out.gid = entry.gid;
            out.home = non_empty(entry.home);
            matched_name = Some(entry.name);
        }
    } else {
        let entry = users.iter().find(|u| u.name == user_part).ok_or_else(|| {
            Error::invalid(
                "user",
                format!("unable to find user {user_part}: no matching entries in passwd file"),
            )
        })?;
        out.uid = entry.uid;
        out.gid = entry.gid;
        out.home = non_empty(entry.home);
        matched_name = Some(entry.name);
    }
    let groups = parse_group(group);
    match group_part {
        Some(g) if !g.is_empty() => {
            out.gid = match g.parse::<u32>() {
                Ok(gid) => gid,
                Err(_) => groups
                    .iter()
                    .find(|e| e.name == g)
                    .map(|e| e.gid)
                    .ok_or_else(|| {
                        Error::invalid(
                            "user",
                            format!("unable to find group {g}: no matching entries in group file"),
                        )
                    })?,
            };
        }
        _ => {
            if let Some(name) = matched_name {
                out.additional_gids = groups
                    .iter()
                    .filter(|g| g.members.contains(&name))
                    .map(|g| g.gid)
                    .collect();
            }
        }
    }
    Ok(out)
}

/// `group_add`: each entry a group name from `group` or a number (which
/// need not exist), as gids, in order and without repeats.
pub fn resolve_groups(names: &[String], group: &str) -> Result<Vec<u32>> {
    let groups = parse_group(group);
    let mut out: Vec<u32> = Vec::new();
    for name in names {
        let gid = match name.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => groups
                .iter()
                .find(|g| g.name == name)
                .map(|g| g.gid)
                .ok_or_else(|| {
                    Error::invalid(
                        "group_add",
                        format!("unable to find group {name}: no matching entries in group file"),
                    )
                })?,
        };
        if !out.contains(&gid) {
            out.push(gid);
        }
    }
    Ok(out)
}

fn non_empty(home: &str) -> String {
    if home.is_empty() {
        "/".to_owned()
    } else {
        home.to_owned()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n\
        app:x:1000:1001:App:/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nnogroup:x:65534:\nappgrp:x:1001:\n\
        wheel:x:10:app,other\naudio:x:29:app\n";

    #[test]
    fn default_is_root() {
        let u = resolve_user("", PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (0, 0, "/root"));
    }

    #[test]
    fn name_gives_uid_gid_home_and_supplementary_groups() {
        let u = resolve_user("app", PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (1000, 1001, "/home/app"));
        assert_eq!(u.additional_gids, vec![10, 29]);
    }

    #[test]
    fn numeric_uid_matches_an_entry() {
        let u = resolve_user("65534", PASSWD, GROUP).unwrap();
        assert_eq!(
            (u.uid, u.gid, u.home.as_str()),
            (65534, 65534, "/nonexistent")
        );
    }

    #[test]
    fn numeric_uid_without_entry_is_allowed() {
        let u = resolve_user("4242", PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (4242, 0, "/"));
        assert!(u.additional_gids.is_empty());
    }

    #[test]
    fn explicit_group_by_name_or_number_drops_supplementary() {
        let u = resolve_user("app:wheel", PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid), (1000, 10));
        assert!(u.additional_gids.is_empty());
        let u = resolve_user("1000:77", PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid), (1000, 77));
    }

    #[test]
    fn unknown_names_are_errors() {
        let e = resolve_user("ghost", PASSWD, GROUP).unwrap_err();
        assert!(e.to_string().contains("unable to find user ghost"), "{e}");
        let e = resolve_user("app:ghosts", PASSWD, GROUP).unwrap_err();
        assert!(e.to_string().contains("unable to find group ghosts"), "{e}");
    }

    #[test]
    fn added_groups_by_name_or_number() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            resolve_groups(&names(&["audio", "4242", "wheel", "29"]), GROUP).unwrap(),
            vec![29, 4242, 10]
        );
        let e = resolve_groups(&names(&["video"]), GROUP).unwrap_err();
        assert!(e.to_string().contains("unable to find group video"), "{e}");
    }

    #[test]
    fn missing_files_still_allow_numeric_ids() {
        let u = resolve_user("12:34", "", "").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (12, 34, "/"));
        assert!(resolve_user("root", "", "").is_err());
    }
}
