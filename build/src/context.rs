//! Reading sources: the build context (filtered by `.dockerignore`) or a
//! stage's / image's filesystem, with paths that cannot leave their root.
//!
//! [`SourceRoot::expand`] turns COPY/ADD source patterns (globs as Go's
//! `filepath.Match`) into files under the root; every symlink on the way
//! is resolved inside the root. In the context a symlink (or `..`) that
//! leads out is refused; in a stage's filesystem an absolute link is taken
//! relative to that filesystem's root, as a container would see it.
//! [`SourceRoot::hash`] is the content hash the cache key takes for what a
//! step reads (path, type, mode, content or link target; not the owner,
//! which differs between hosts and does not reach the image).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use berth_spec::dockerignore::{DockerIgnore, IgnorePattern};
use sha2::{Digest as _, Sha256};

use crate::statcache::StatCache;

/// A tree sources are read from.
#[derive(Debug, Clone)]
pub struct SourceRoot {
    pub root: PathBuf,
    /// `.dockerignore` of the context; none for stages and images.
    pub ignore: Option<DockerIgnore>,
    /// The build context: symlinks must not lead out of it.
    pub strict: bool,
    /// COPY/ADD `--exclude` patterns, matched relative to each source.
    pub exclude: Option<DockerIgnore>,
}

/// One matched source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Path relative to the root, `/`-separated, no leading `/`; `""` for
    /// the root itself.
    pub rel: String,
    /// Where it is on disk (symlinks on the way resolved).
    pub path: PathBuf,
    /// Whether the pattern had wildcards (several files may match).
    pub wildcard: bool,
}

const MAX_LINKS: usize = 40;

/// `a/./b/../c` → `a/c`; leading `/` and `..` above the root dropped.
pub fn clean_rel(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

impl SourceRoot {
    pub fn context(root: PathBuf, ignore: Option<DockerIgnore>) -> Self {
        Self {
            root,
            ignore,
            strict: true,
            exclude: None,
        }
    }

    pub fn filesystem(root: PathBuf) -> Self {
        Self {
            root,
            ignore: None,
            strict: false,
            exclude: None,
        }
    }

    /// This root with COPY/ADD `--exclude` patterns (matched like
    /// `.dockerignore` lines, relative to each source: the name of a
    /// matched source, the path below a copied directory).
    pub fn with_excludes(&self, exclude: &[String]) -> Result<SourceRoot, String> {
        if exclude.is_empty() {
            return Ok(self.clone());
        }
        let mut root = self.clone();
        let mut ignore = DockerIgnore::default();
        for pattern in exclude {
            if let Some(p) =
                IgnorePattern::new(pattern, 0).map_err(|e| format!("--exclude={pattern}: {e}"))?
            {
                ignore.patterns.push(p);
            }
        }
        root.exclude = Some(ignore);
        Ok(root)
    }

    /// Whether `child_rel` (root-relative) below source `base` is left out,
    /// by `.dockerignore` or by `--exclude`.
    pub fn excluded_below(&self, base: &str, child_rel: &str, is_dir: bool) -> bool {
        if self.excluded(child_rel, is_dir) {
            return true;
        }
        let Some(ex) = &self.exclude else {
            return false;
        };
        let below = if base.is_empty() {
            child_rel
        } else {
            child_rel
                .strip_prefix(base)
                .map_or(child_rel, |r| r.trim_start_matches('/'))
        };
        ex.is_excluded(below, is_dir)
    }

    /// Whether a matched source itself is left out by `--exclude`.
    fn source_excluded(&self, rel: &str, is_dir: bool) -> bool {
        let Some(ex) = &self.exclude else {
            return false;
        };
        let name = rel.rsplit('/').next().unwrap_or(rel);
        ex.is_excluded(name, is_dir) || ex.is_excluded(rel, is_dir)
    }

    fn excluded(&self, rel: &str, is_dir: bool) -> bool {
        !rel.is_empty()
            && self
                .ignore
                .as_ref()
                .is_some_and(|i| i.is_excluded(rel, is_dir))
    }

    /// Resolves `rel` (already clean) under the root, following symlinks
    /// inside it. `follow_last`: resolve the final component too.
    pub fn resolve(&self, rel: &str, follow_last: bool) -> Result<PathBuf, String> {
        let mut resolved: Vec<String> = Vec::new();
        let mut todo: Vec<String> = rel
            .split('/')
            .filter(|p| !p.is_empty())
            .rev()
            .map(str::to_owned)
            .collect();
        let mut links = 0usize;
        while let Some(part) = todo.pop() {
            match part.as_str() {
                "." => continue,
                ".." => {
                    if resolved.pop().is_none() && self.strict {
                        return Err(format!("{rel:?} leads outside the build context"));
                    }
                    continue;
                }
                _ => {}
            }
            let mut here = self.root.clone();
            here.extend(&resolved);
            here.push(&part);
            let is_last = todo.is_empty();
            match fs::symlink_metadata(&here) {
                Ok(m) if m.file_type().is_symlink() && (!is_last || follow_last) => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(format!("too many levels of symbolic links in {rel:?}"));
                    }
                    let target = fs::read_link(&here).map_err(|e| format!("{rel:?}: {e}"))?;
                    let target = target.to_string_lossy().into_owned();
                    if target.starts_with('/') {
                        if self.strict {
                            return Err(format!(
                                "{rel:?} is reached through symlink {:?} -> {target:?}, which leaves the build context",
                                resolved
                                    .iter()
                                    .chain([&part])
                                    .cloned()
                                    .collect::<Vec<_>>()
                                    .join("/")
                            ));
                        }
                        resolved.clear();
                    }
                    // Depth check for the strict case: `..`s in the target
                    // may not climb above the root.
                    if self.strict {
                        let mut depth = resolved.len() as isize;
                        for p in target.split('/') {
                            match p {
                                "" | "." => {}
                                ".." => depth -= 1,
                                _ => depth += 1,
                            }
                            if depth < 0 {
                                return Err(format!(
                                    "{rel:?} is reached through symlink {:?} -> {target:?}, which leaves the build context",
                                    resolved
                                        .iter()
                                        .chain([&part])
                                        .cloned()
                                        .collect::<Vec<_>>()
                                        .join("/")
                                ));
                            }
                        }
                    }
                    todo.extend(
                        target
                            .split('/')
                            .filter(|p| !p.is_empty())
                            .rev()
                            .map(str::to_owned),
                    );
                }
                _ => resolved.push(part),
            }
        }
        let mut out = self.root.clone();
        out.extend(&resolved);
        Ok(out)
    }

    /// The files a source pattern names. Not found (or everything
    /// excluded by `.dockerignore`) is an error naming the pattern.
    pub fn expand(&self, pattern: &str) -> Result<Vec<Source>, String> {
        let cleaned = clean_rel(pattern);
        if pattern.split('/').any(|p| p == "..") && self.strict {
            let mut depth = 0isize;
            for p in pattern.split('/') {
                match p {
                    "" | "." => {}
                    ".." => depth -= 1,
                    _ => depth += 1,
                }
                if depth < 0 {
                    return Err(format!(
                        "{pattern:?} is outside the build context: sources are relative to the context directory"
                    ));
                }
            }
        }
        if !has_wildcard(&cleaned) {
            let path = self.resolve(&cleaned, true)?;
            let meta = fs::symlink_metadata(&path).map_err(|_| not_found(pattern))?;
            if self.excluded(&cleaned, meta.is_dir()) {
                return Err(not_found(pattern));
            }
            return Ok(vec![Source {
                rel: cleaned,
                path,
                wildcard: false,
            }]);
        }
        let mut found = vec![(String::new(), self.root.clone())];
        let parts: Vec<&str> = cleaned.split('/').collect();
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            let mut next = Vec::new();
            for (rel, _) in &found {
                let join = |name: &str| {
                    if rel.is_empty() {
                        name.to_owned()
                    } else {
                        format!("{rel}/{name}")
                    }
                };
                if !has_wildcard(part) {
                    let r = join(part);
                    if let Ok(p) = self.resolve(&r, true)
                        && p.symlink_metadata().is_ok()
                    {
                        next.push((r, p));
                    }
                    continue;
                }
                let matcher = IgnorePattern::new(part, 0)
                    .map_err(|e| format!("bad pattern {pattern:?}: {e}"))?;
                let dir = self.resolve(rel, true)?;
                let Ok(entries) = fs::read_dir(&dir) else {
                    continue;
                };
                let mut names: Vec<String> = entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                for name in names {
                    if matcher.as_ref().is_some_and(|m| m.matches(&name)) {
                        let r = join(&name);
                        let p = self.resolve(&r, last)?;
                        next.push((r, p));
                    }
                }
            }
            found = next;
        }
        let out: Vec<Source> = found
            .into_iter()
            .filter(|(rel, p)| {
                !self.excluded(rel, p.is_dir()) && !self.source_excluded(rel, p.is_dir())
            })
            .map(|(rel, path)| Source {
                rel,
                path,
                wildcard: true,
            })
            .collect();
        if out.is_empty() {
            return Err(not_found(pattern));
        }
        Ok(out)
    }

    /// Feeds `source` (recursively, `.dockerignore` applied) into `hasher`:
    /// relative names, types, modes, sizes, content digests (from
    /// the stat cache when the file is unchanged) and link targets.
    pub fn hash(
        &self,
        source: &Source,
        cache: &mut StatCache,
        hasher: &mut Sha256,
    ) -> Result<(), String> {
        self.hash_path(&source.path, &source.rel, &source.rel, "", cache, hasher)
    }

    fn hash_path(
        &self,
        path: &Path,
        base: &str,
        rel: &str,
        shown: &str,
        cache: &mut StatCache,
        hasher: &mut Sha256,
    ) -> Result<(), String> {
        let meta = fs::symlink_metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let ft = meta.file_type();
        // No owner: COPY and ADD give what they copy root (or --chown),
        // as BuildKit's context transfer does, and the checkout's owner
        // differs between hosts, which would make the key differ too
        // (an inline cache imported elsewhere would never match).
        let head = format!("{shown}\0{:o}\0", meta.mode());
        hasher.update(head.as_bytes());
        if ft.is_symlink() {
            let t = fs::read_link(path).map_err(|e| format!("{}: {e}", path.display()))?;
            hasher.update(t.as_os_str().as_encoded_bytes());
        } else if ft.is_file() {
            let digest = cache
                .file_digest(path, &meta)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            hasher.update(digest);
        } else if ft.is_dir() {
            let mut names: Vec<String> = fs::read_dir(path)
                .map_err(|e| format!("{}: {e}", path.display()))?
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            for name in names {
                let child_rel = if rel.is_empty() {
                    name.clone()
                } else {
                    format!("{rel}/{name}")
                };
                let child = path.join(&name);
                let is_dir = child.symlink_metadata().is_ok_and(|m| m.is_dir());
                if self.excluded_below(base, &child_rel, is_dir) {
                    if is_dir
                        && self
                            .ignore
                            .as_ref()
                            .is_some_and(|i| i.may_contain_exceptions(&child_rel))
                    {
                        // Walk it for the re-included paths only.
                    } else {
                        continue;
                    }
                }
                self.hash_path(
                    &child,
                    base,
                    &child_rel,
                    &format!("{shown}/{name}"),
                    cache,
                    hasher,
                )?;
            }
        }
        hasher.update(b"\n");
        Ok(())
    }
}

fn not_found(pattern: &str) -> String {
    format!(
        "{pattern:?}: not found (sources are relative to the build context and .dockerignore may exclude them)"
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        fs::create_dir_all(r.join("src/sub")).unwrap();
        fs::write(r.join("src/a.rs"), "a").unwrap();
        fs::write(r.join("src/b.rs"), "b").unwrap();
        fs::write(r.join("src/sub/c.txt"), "c").unwrap();
        fs::write(r.join("secret.key"), "k").unwrap();
        symlink("/etc", r.join("abs")).unwrap();
        symlink("../..", r.join("src/up")).unwrap();
        symlink("sub/c.txt", r.join("src/inside")).unwrap();
        d
    }

    #[test]
    fn clean_keeps_paths_inside() {
        assert_eq!(clean_rel("/a/./b/../c/"), "a/c");
        assert_eq!(clean_rel("../../x"), "x");
        assert_eq!(clean_rel("."), "");
    }

    #[test]
    fn globs_match_per_component_sorted() {
        let d = tree();
        let root = SourceRoot::context(d.path().to_owned(), None);
        let got: Vec<String> = root
            .expand("src/*.rs")
            .unwrap()
            .into_iter()
            .map(|s| s.rel)
            .collect();
        assert_eq!(got, ["src/a.rs", "src/b.rs"]);
        assert!(root.expand("nope*").is_err());
    }

    #[test]
    fn symlinks_out_of_the_context_are_refused() {
        let d = tree();
        let root = SourceRoot::context(d.path().to_owned(), None);
        let e = root.expand("abs/passwd").unwrap_err();
        assert!(e.contains("leaves the build context"), "{e}");
        let e = root.expand("src/up/x").unwrap_err();
        assert!(e.contains("leaves the build context"), "{e}");
        assert!(
            root.expand("../x")
                .unwrap_err()
                .contains("outside the build context")
        );
        let inside = root.expand("src/inside").unwrap();
        assert_eq!(inside[0].path, d.path().join("src/sub/c.txt"));
        // A stage's filesystem takes absolute links relative to its root.
        let fsroot = SourceRoot::filesystem(d.path().to_owned());
        assert_eq!(fsroot.resolve("abs", true).unwrap(), d.path().join("etc"));
    }

    #[test]
    fn dockerignore_filters_sources_and_hashes() {
        let d = tree();
        let ignore = DockerIgnore::from_patterns(&["*.key", "src/sub"]).unwrap();
        let root = SourceRoot::context(d.path().to_owned(), Some(ignore));
        assert!(root.expand("secret.key").is_err());
        let dir = root.expand("src").unwrap();
        let mut cache = StatCache::default();
        let mut h1 = Sha256::new();
        root.hash(&dir[0], &mut cache, &mut h1).unwrap();
        // A change in an ignored file does not change the hash.
        fs::write(d.path().join("src/sub/c.txt"), "changed").unwrap();
        let mut h2 = Sha256::new();
        root.hash(&dir[0], &mut cache, &mut h2).unwrap();
        assert_eq!(h1.finalize(), h2.finalize());
        fs::write(d.path().join("src/a.rs"), "changed").unwrap();
        let mut h3 = Sha256::new();
        root.hash(&dir[0], &mut cache, &mut h3).unwrap();
        let mut h4 = Sha256::new();
        root.hash(
            &root.expand("src").unwrap()[0],
            &mut StatCache::default(),
            &mut h4,
        )
        .unwrap();
        assert_eq!(
            h3.finalize(),
            h4.finalize(),
            "stat cache notices the change"
        );
    }
}
