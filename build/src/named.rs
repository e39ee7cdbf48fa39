//! Named contexts (`--build-context NAME=VALUE`, compose's
//! `build.additional_contexts`): a local folder, an image, or a git
//! repository (checked out into a folder) that `FROM NAME`,
//! `COPY --from=NAME` and `RUN --mount=from=NAME` read instead of the
//! image or stage of that name, as BuildKit does. A name matches a
//! reference in any of its spellings (`alpine`, `alpine:latest`,
//! `docker.io/library/alpine`), as BuildKit compares familiar names.

use std::collections::BTreeMap;
use std::path::PathBuf;

use berth_image::Reference;

use crate::context::SourceRoot;
use crate::git::GitSources;
use crate::request::NamedContext;

/// A named context ready for the stages.
#[derive(Debug, Clone)]
pub enum Named {
    /// A folder, read like the main context (symlinks kept inside it).
    Dir(SourceRoot),
    /// An image in the store, by reference or ID.
    Image(String),
}

/// `alpine`, `alpine:latest` and `docker.io/library/alpine` → `alpine`.
fn normalize(name: &str) -> String {
    match Reference::parse(name) {
        Ok(r) => r
            .familiar()
            .strip_suffix(":latest")
            .map(str::to_owned)
            .unwrap_or_else(|| r.familiar()),
        Err(_) => name.to_owned(),
    }
}

#[derive(Debug, Default)]
pub struct NamedContexts {
    by_name: BTreeMap<String, Named>,
}

impl NamedContexts {
    /// Checks folders and checks out git contexts.
    pub fn prepare(
        given: &BTreeMap<String, NamedContext>,
        git: &GitSources,
    ) -> Result<NamedContexts, String> {
        let mut by_name = BTreeMap::new();
        for (name, value) in given {
            let named = match value {
                NamedContext::Dir(dir) => Named::Dir(folder(name, dir)?),
                NamedContext::Image(reference) => Named::Image(reference.clone()),
                NamedContext::Git(url) => {
                    let dir = git
                        .context(url)
                        .map_err(|e| format!("build context {name}={url}: {e}"))?;
                    Named::Dir(folder(name, &dir)?)
                }
            };
            by_name.insert(normalize(name), named);
        }
        Ok(NamedContexts { by_name })
    }

    /// The context `name` (a FROM base, `--from`) refers to, if any.
    pub fn get(&self, name: &str) -> Option<&Named> {
        if self.by_name.is_empty() {
            return None;
        }
        self.by_name.get(&normalize(name))
    }
}

fn folder(name: &str, dir: &std::path::Path) -> Result<SourceRoot, String> {
    let root: PathBuf = dir
        .canonicalize()
        .map_err(|e| format!("build context {name}={}: {e}", dir.display()))?;
    if !root.is_dir() {
        return Err(format!(
            "build context {name}={}: not a directory",
            dir.display()
        ));
    }
    Ok(SourceRoot::context(root, None))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_match_in_any_spelling() {
        let tmp = tempfile::tempdir().unwrap();
        let git = GitSources::new(tmp.path(), Default::default());
        let mut given = BTreeMap::new();
        given.insert("alpine".into(), NamedContext::Image("busybox:1".into()));
        given.insert("src".into(), NamedContext::Dir(tmp.path().to_owned()));
        let named = NamedContexts::prepare(&given, &git).unwrap();
        for spelling in ["alpine", "alpine:latest", "docker.io/library/alpine"] {
            assert!(
                matches!(named.get(spelling), Some(Named::Image(r)) if r == "busybox:1"),
                "{spelling}"
            );
        }
        assert!(named.get("alpine:3").is_none());
        assert!(matches!(named.get("src"), Some(Named::Dir(_))));
        given.insert("gone".into(), NamedContext::Dir(tmp.path().join("nope")));
        let err = NamedContexts::prepare(&given, &git).unwrap_err();
        assert!(err.contains("gone="), "{err}");
    }
}
