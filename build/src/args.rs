//! Build arguments: `--build-arg`s, BuildKit's predefined platform args
//! and proxy args, the global ARGs before the first FROM, and one
//! stage's declared ARGs (scoping as BuildKit: a stage sees only the ARGs
//! it declares; a declaration without default takes the build arg, else
//! the global value).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

/// Args that need no ARG declaration, are passed to RUN, and are kept out
/// of the image config, history and cache key.
pub const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// The host as BuildKit's platform args name it.
pub fn platform_args() -> BTreeMap<String, String> {
    let arch = berth_image::platform::host_arch();
    let os = "linux";
    let platform = format!("{os}/{arch}");
    let mut m = BTreeMap::new();
    for prefix in ["TARGET", "BUILD"] {
        m.insert(format!("{prefix}PLATFORM"), platform.clone());
        m.insert(format!("{prefix}OS"), os.to_owned());
        m.insert(format!("{prefix}ARCH"), arch.to_string());
        m.insert(format!("{prefix}VARIANT"), String::new());
    }
    m
}

/// The build's arguments and which of them were consumed.
#[derive(Debug, Default)]
pub struct BuildArgs {
    pub given: BTreeMap<String, String>,
    pub predefined: BTreeMap<String, String>,
    /// Global ARG values (after build args).
    pub globals: Vec<(String, Option<String>)>,
    used: Mutex<BTreeSet<String>>,
}

impl BuildArgs {
    pub fn new(given: BTreeMap<String, String>) -> Self {
        Self {
            given,
            predefined: platform_args(),
            globals: Vec::new(),
            used: Mutex::new(BTreeSet::new()),
        }
    }

    /// What FROM and the global ARG defaults see.
    pub fn global_lookup(&self, key: &str) -> Option<String> {
        self.given
            .get(key)
            .cloned()
            .or_else(|| self.predefined.get(key).cloned())
    }

    pub fn mark_used(&self, name: &str) {
        if let Ok(mut u) = self.used.lock() {
            u.insert(name.to_owned());
        }
    }

    /// The value of a stage's `ARG name[=default]`; `default` is already
    /// expanded.
    pub fn stage_value(&self, name: &str, default: Option<String>) -> Option<String> {
        self.mark_used(name);
        if let Some(v) = self.given.get(name) {
            return Some(v.clone());
        }
        if default.is_some() {
            return default;
        }
        if let Some((_, v)) = self.globals.iter().rev().find(|(n, _)| n == name) {
            return v.clone();
        }
        self.predefined.get(name).cloned()
    }

    /// Proxy args given on the command line (for RUN's environment only).
    pub fn proxies(&self) -> Vec<(String, String)> {
        PROXY_ARGS
            .iter()
            .filter_map(|k| self.given.get(*k).map(|v| ((*k).to_owned(), v.clone())))
            .collect()
    }

    /// Build args given but declared nowhere (Docker's warning).
    pub fn unused(&self) -> Vec<String> {
        let used = self.used.lock().map(|u| u.clone()).unwrap_or_default();
        self.given
            .keys()
            .filter(|k| !used.contains(*k) && !PROXY_ARGS.contains(&k.as_str()))
            .filter(|k| !self.globals.iter().any(|(n, _)| n == *k))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn scoping_prefers_build_arg_then_default_then_global() {
        let mut a = BuildArgs::new(BTreeMap::from([("A".into(), "cli".into())]));
        a.globals = vec![
            ("G".into(), Some("global".into())),
            ("A".into(), Some("g".into())),
        ];
        assert_eq!(a.stage_value("A", Some("d".into())).as_deref(), Some("cli"));
        assert_eq!(a.stage_value("G", None).as_deref(), Some("global"));
        assert_eq!(a.stage_value("G", Some("d".into())).as_deref(), Some("d"));
        assert_eq!(a.stage_value("TARGETOS", None).as_deref(), Some("linux"));
        assert_eq!(a.stage_value("NOPE", None), None);
    }

    #[test]
    fn unused_args_are_reported_and_proxies_are_not() {
        let a = BuildArgs::new(BTreeMap::from([
            ("X".into(), "1".into()),
            ("HTTP_PROXY".into(), "http://p".into()),
        ]));
        assert_eq!(a.unused(), ["X"]);
        a.mark_used("X");
        assert!(a.unused().is_empty());
        assert_eq!(
            a.proxies(),
            [("HTTP_PROXY".to_owned(), "http://p".to_owned())]
        );
    }
}
