//! The container options of a [`ContainerSpec`] beyond command, mounts
//! and limits, in runtime terms: security (capabilities, privileged,
//! read-only root, `security_opt`), ulimits (clamped to the host with a
//! warning), logging, lifecycle hooks, and configs/secrets as file copies.
//!
//! Every value the runtime cannot honour is an `InvalidArgument` naming the
//! service, the key and the value, never dropped.

use berth_reconcilers::container::{FileKind, FileMount, FileSource, HookSpec};
use berth_reconcilers::{BackendError, ContainerSpec, ErrorKind};
use berth_runtime::{Hook, Hooks, LogConfig, LogDriver, Mount, Rlimit, Security};

fn invalid(spec: &ContainerSpec, message: String) -> BackendError {
    BackendError::new(
        ErrorKind::InvalidArgument,
        format!("service {}: {message}", spec.service),
    )
}

/// `security_opt` entries that only say "no confinement", which is what
/// berth has: accepted as they are true already.
const UNCONFINED: &[&str] = &[
    "seccomp=unconfined",
    "seccomp:unconfined",
    "apparmor=unconfined",
    "apparmor:unconfined",
    "label=disable",
    "label:disable",
];

/// Capabilities, privileged mode, read-only root and `security_opt`.
pub fn security(spec: &ContainerSpec) -> Result<Security, BackendError> {
    for (key, names) in [("cap_add", &spec.cap_add), ("cap_drop", &spec.cap_drop)] {
        for name in names {
            berth_runtime::parse_capability(name)
                .map_err(|e| invalid(spec, format!("{key}: {e}")))?;
        }
    }
    let mut out = Security {
        privileged: spec.privileged,
        cap_add: spec.cap_add.clone(),
        cap_drop: spec.cap_drop.clone(),
        readonly_rootfs: spec.read_only,
        ..Default::default()
    };
    for opt in &spec.security_opt {
        let opt = opt.trim();
        let (key, value) = opt
            .split_once(['=', ':'])
            .map_or((opt, None), |(k, v)| (k, Some(v)));
        match (key, value) {
            ("no-new-privileges", None | Some("true")) => out.no_new_privileges = true,
            ("no-new-privileges", Some("false")) => out.no_new_privileges = false,
            ("systempaths", Some("unconfined")) => out.unmask_paths = true,
            _ if UNCONFINED.contains(&opt) => {}
            _ => {
                return Err(invalid(
                    spec,
                    format!(
                        "security_opt {opt:?} is not supported: berth applies no seccomp, AppArmor or SELinux profile yet; \
                         no-new-privileges[:true|false], systempaths=unconfined and the \"unconfined\"/label=disable forms are accepted"
                    ),
                ));
            }
        }
    }
    Ok(out)
}

/// `ulimits` clamped to what this host allows, with a warning per clamp.
pub fn rlimits(spec: &ContainerSpec) -> Vec<Rlimit> {
    let mut limits: Vec<Rlimit> = spec
        .ulimits
        .iter()
        .map(|u| Rlimit {
            name: u.name.clone(),
            soft: u.soft,
            hard: u.hard,
        })
        .collect();
    for c in berth_runtime::clamp_rlimits_to_host(&mut limits) {
        tracing::warn!(
            service = %spec.service,
            container = %spec.name,
            ulimit = %c.name,
            requested = ?c.requested,
            allowed = ?c.allowed,
            "service {}: ulimit {} above the host's maximum: clamped to {}/{} (soft/hard)",
            spec.service, c.name, c.allowed.0, c.allowed.1
        );
    }
    limits
}

/// `logging:`: json-file (the default) and local with `max-size` and
/// `max-file`, or none.
pub fn logging(spec: &ContainerSpec) -> Result<LogConfig, BackendError> {
    let Some(l) = &spec.logging else {
        return Ok(LogConfig::default());
    };
    let driver = l.driver.as_deref().unwrap_or("json-file");
    let mut out = LogConfig::default();
    match driver {
        "json-file" => {}
        // Docker's local driver keeps 5 files of 20 MB by default; berth
        // writes them in the json-file format.
        "local" => {
            out.max_size = Some(20 << 20);
            out.max_files = 5;
        }
        "none" => {
            if let Some(key) = l.options.keys().next() {
                return Err(invalid(
                    spec,
                    format!("logging option {key:?}: the none driver takes no options"),
                ));
            }
            out.driver = LogDriver::None;
            return Ok(out);
        }
        other => {
            return Err(invalid(
                spec,
                format!(
                    "logging driver {other:?} is not supported: berth has json-file, local and none"
                ),
            ));
        }
    }
    for (key, value) in &l.options {
        match key.as_str() {
            "max-size" => {
                let bytes = berth_spec::units::parse_bytes(value)
                    .ok()
                    .filter(|b| *b > 0)
                    .ok_or_else(|| {
                        invalid(
                            spec,
                            format!("logging max-size {value:?} is not a size (10m, 1g)"),
                        )
                    })?;
                out.max_size = Some(bytes);
            }
            "max-file" => {
                out.max_files = value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| {
                        invalid(
                            spec,
                            format!("logging max-file {value:?} must be a number of 1 or more"),
                        )
                    })?;
            }
            // Docker's own default; rotated files are never compressed here.
            "compress" if value == "false" => {}
            other => {
                return Err(invalid(
                    spec,
                    format!(
                        "logging option {other:?} of the {driver} driver is not supported (max-size and max-file are)"
                    ),
                ));
            }
        }
    }
    Ok(out)
}

/// `post_start` and `pre_stop`.
pub fn hooks(spec: &ContainerSpec) -> Result<Hooks, BackendError> {
    let convert = |kind: &str, list: &[HookSpec]| -> Result<Vec<Hook>, BackendError> {
        list.iter()
            .enumerate()
            .map(|(i, h)| {
                if h.command.is_empty() {
                    return Err(invalid(spec, format!("{kind}[{i}] has no command")));
                }
                Ok(Hook {
                    args: h.command.clone(),
                    env: h.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                    user: h.user.clone(),
                    cwd: h.working_dir.clone(),
                    privileged: h.privileged,
                })
            })
            .collect()
    };
    Ok(Hooks {
        post_start: convert("post_start", &spec.post_start)?,
        pre_stop: convert("pre_stop", &spec.pre_stop)?,
    })
}

/// Compose's default mode for configs and secrets.
const DEFAULT_FILE_MODE: u32 = 0o444;

/// Configs and secrets as copies owned `uid:gid` with their mode (0444 and
/// root unless declared), from a file, inline content, or a variable.
/// (`up` resolves `environment:` sources against the project's environment
/// before planning, so they arrive as content; one that did not is looked
/// up in this process's environment.)
pub fn files(spec: &ContainerSpec) -> Result<Vec<Mount>, BackendError> {
    spec.files.iter().map(|f| file(spec, f)).collect()
}

fn file(spec: &ContainerSpec, f: &FileMount) -> Result<Mount, BackendError> {
    let what = match f.kind {
        FileKind::Config => "config",
        FileKind::Secret => "secret",
    };
    let id = |v: &Option<String>, key: &str| -> Result<u32, BackendError> {
        match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(0),
            Some(s) => s.parse().map_err(|_| {
                invalid(
                    spec,
                    format!("{what} {}: {key} {s:?} must be a number", f.name),
                )
            }),
        }
    };
    let (source, content) = match &f.source {
        FileSource::File(path) => (Some(path.into()), None),
        FileSource::Content(c) => (None, Some(c.clone().into_bytes())),
        FileSource::Environment(var) => {
            let value = std::env::var(var).ok().ok_or_else(|| {
                invalid(
                    spec,
                    format!(
                        "environment variable {var:?} required by {what} {} is not set",
                        f.name
                    ),
                )
            })?;
            (None, Some(value.into_bytes()))
        }
        FileSource::External => {
            return Err(invalid(
                spec,
                format!(
                    "external {what} {} is not supported: berth has no {what} store; use file, content or environment",
                    f.name
                ),
            ));
        }
    };
    Ok(Mount::File {
        source,
        content,
        target: f.target.clone(),
        uid: id(&f.uid, "uid")?,
        gid: id(&f.gid, "gid")?,
        mode: f.mode.unwrap_or(DEFAULT_FILE_MODE),
    })
}

#[cfg(test)]
mod tests {
    use berth_reconcilers::conformance::{Fixture, spec};
    use berth_reconcilers::container::{LoggingSpec, UlimitSpec};
    use berth_reconcilers::fakes::{FakeClock, FakeHost};

    use std::collections::BTreeMap;

    use super::*;

    fn base() -> ContainerSpec {
        let host = FakeHost::new(FakeClock::default());
        let f = Fixture {
            backends: host.backends(),
            project: "p".into(),
            image: "busybox".into(),
            command: vec!["true".into()],
            missing_image: String::new(),
            pullable: String::new(),
            not_in_registry: String::new(),
        };
        spec(&f, "web", 1)
    }

    #[test]
    fn security_options() {
        let mut s = base();
        s.cap_add = vec!["net_admin".into()];
        s.cap_drop = vec!["ALL".into()];
        s.read_only = true;
        s.security_opt = vec![
            "no-new-privileges:true".into(),
            "seccomp:unconfined".into(),
            "systempaths=unconfined".into(),
        ];
        let sec = security(&s).unwrap();
        assert!(sec.no_new_privileges && sec.readonly_rootfs && sec.unmask_paths);
        assert_eq!(sec.cap_add, ["net_admin"]);
        s.security_opt = vec!["no-new-privileges=false".into()];
        assert!(!security(&s).unwrap().no_new_privileges);
        s.security_opt = vec!["no-new-privileges".into()];
        assert!(security(&s).unwrap().no_new_privileges);
        for bad in [
            "seccomp=/etc/profile.json",
            "apparmor=docker-default",
            "label=type:svirt_t",
        ] {
            s.security_opt = vec![bad.into()];
            let e = security(&s).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument);
            assert!(e.message.contains(bad), "{}", e.message);
        }
        s.security_opt.clear();
        s.cap_add = vec!["NET_ADMINS".into()];
        let e = security(&s).unwrap_err();
        assert!(
            e.message.contains("cap_add") && e.message.contains("NET_ADMINS"),
            "{}",
            e.message
        );
    }

    #[test]
    fn logging_drivers_and_options() {
        let mut s = base();
        let log = |driver: Option<&str>, opts: &[(&str, &str)]| LoggingSpec {
            driver: driver.map(str::to_string),
            options: opts
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        assert_eq!(logging(&s).unwrap(), LogConfig::default());
        s.logging = Some(log(
            Some("json-file"),
            &[("max-size", "10m"), ("max-file", "3")],
        ));
        let l = logging(&s).unwrap();
        assert_eq!(
            (l.max_size, l.max_files, l.driver),
            (Some(10 << 20), 3, LogDriver::JsonFile)
        );
        s.logging = Some(log(Some("local"), &[]));
        assert_eq!(logging(&s).unwrap().max_files, 5);
        s.logging = Some(log(Some("none"), &[]));
        assert_eq!(logging(&s).unwrap().driver, LogDriver::None);
        s.logging = Some(log(Some("syslog"), &[]));
        assert!(
            logging(&s)
                .unwrap_err()
                .message
                .contains("\"syslog\" is not supported")
        );
        s.logging = Some(log(None, &[("labels", "a")]));
        assert!(logging(&s).unwrap_err().message.contains("\"labels\""));
        s.logging = Some(log(None, &[("max-file", "0")]));
        assert!(logging(&s).is_err());
    }

    #[test]
    fn files_with_owner_mode_and_sources() {
        let mut s = base();
        let fm = |source: FileSource, uid: Option<&str>, mode: Option<u32>| FileMount {
            kind: FileKind::Secret,
            name: "p_token".into(),
            source,
            target: "/run/secrets/token".into(),
            uid: uid.map(str::to_string),
            gid: None,
            mode,
        };
        s.files = vec![
            fm(
                FileSource::File("/srv/token".into()),
                Some("1000"),
                Some(0o400),
            ),
            fm(FileSource::Content("inline".into()), None, None),
            fm(FileSource::Environment("PATH".into()), None, None),
        ];
        let out = files(&s).unwrap();
        assert_eq!(
            out[0],
            Mount::File {
                source: Some("/srv/token".into()),
                content: None,
                target: "/run/secrets/token".into(),
                uid: 1000,
                gid: 0,
                mode: 0o400
            }
        );
        match &out[2] {
            Mount::File { content, mode, .. } => {
                let path = std::env::var("PATH").unwrap();
                assert_eq!(content.as_deref(), Some(path.as_bytes()));
                assert_eq!(*mode, 0o444);
            }
            other => panic!("{other:?}"),
        }
        s.files = vec![fm(
            FileSource::Environment("BERTH_TEST_SURELY_UNSET_VAR".into()),
            None,
            None,
        )];
        let e = files(&s).unwrap_err();
        assert!(
            e.message
                .contains("\"BERTH_TEST_SURELY_UNSET_VAR\" required by secret p_token"),
            "{}",
            e.message
        );
        s.files = vec![fm(FileSource::Content("x".into()), Some("app"), None)];
        assert!(
            files(&s)
                .unwrap_err()
                .message
                .contains("uid \"app\" must be a number")
        );
        s.files = vec![fm(FileSource::External, None, None)];
        assert!(files(&s).unwrap_err().message.contains("external secret"));
    }

    #[test]
    fn hooks_and_ulimits() {
        let mut s = base();
        s.post_start = vec![HookSpec {
            command: vec!["sh".into(), "-c".into(), "echo hi".into()],
            user: Some("root".into()),
            privileged: true,
            working_dir: Some("/tmp".into()),
            env: BTreeMap::from([("A".into(), "1".into())]),
        }];
        let h = hooks(&s).unwrap();
        assert_eq!(h.post_start[0].env, ["A=1"]);
        assert!(h.post_start[0].privileged && h.pre_stop.is_empty());
        s.pre_stop = vec![HookSpec::default()];
        assert!(
            hooks(&s)
                .unwrap_err()
                .message
                .contains("pre_stop[0] has no command")
        );
        s.ulimits = vec![UlimitSpec {
            name: "core".into(),
            soft: 0,
            hard: 0,
        }];
        assert_eq!(
            rlimits(&s),
            [Rlimit {
                name: "core".into(),
                soft: 0,
                hard: 0
            }]
        );
    }
}
