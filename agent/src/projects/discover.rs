//! Which folders under the root are projects: the root itself and every
//! subfolder holding a compose file, at any depth.
//!
//! Hidden folders (`.git`, `.cache`), `node_modules` and `target` are not
//! entered: they never hold a deployable project and can be huge. Symlinked
//! folders are not followed either, so a link loop cannot hang a scan.

use std::path::Path;

use berth_spec::compose::discover::project_files;

use super::ProjectSource;

/// Folders never entered during discovery.
const SKIPPED_DIRS: [&str; 2] = ["node_modules", "target"];

/// How deep discovery goes below the root; deeper trees are not project
/// layouts and only cost time.
const MAX_DEPTH: usize = 16;

/// Every project under `root`, sorted by key.
pub fn discover(root: &Path) -> Vec<ProjectSource> {
    let mut found = Vec::new();
    walk(root, root, 0, &mut found);
    found.sort_by(|a, b| a.key.cmp(&b.key));
    found
}

/// True for a folder name discovery does not enter.
pub fn is_skipped_dir(name: &str) -> bool {
    name.starts_with('.') || SKIPPED_DIRS.contains(&name)
}

fn walk(root: &Path, dir: &Path, depth: usize, found: &mut Vec<ProjectSource>) {
    let files = project_files(dir);
    if !files.is_empty() {
        found.push(ProjectSource {
            key: key_of(root, dir),
            dir: dir.to_path_buf(),
            files,
        });
    }
    if depth >= MAX_DEPTH {
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => {
            // Unreadable or vanished mid-scan: the next scan will see it.
            tracing::debug!(dir = %dir.display(), error = %err, "skipping unreadable folder");
            return;
        }
    };
    for entry in entries.flatten() {
        // DirEntry::file_type does not follow symlinks.
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        let name = entry.file_name();
        let skipped = name.to_str().is_none_or(is_skipped_dir);
        if is_dir && !skipped {
            walk(root, &entry.path(), depth + 1, found);
        }
    }
}

fn key_of(root: &Path, dir: &Path) -> String {
    match dir.strip_prefix(root) {
        Ok(rel) if rel.as_os_str().is_empty() => ".".to_owned(),
        Ok(rel) => rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/"),
        Err(_) => dir.to_string_lossy().into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "services: {}\n").unwrap();
    }

    #[test]
    fn finds_root_and_nested_projects_sorted_by_key() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        touch(&root.join("compose.yaml"));
        touch(&root.join("shop/compose.yml"));
        touch(&root.join("shop/compose.override.yml"));
        touch(&root.join("apps/blog/docker-compose.yaml"));
        touch(&root.join("apps/readme.txt"));
        let found = discover(root);
        let keys: Vec<_> = found.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, vec![".", "apps/blog", "shop"]);
        assert_eq!(found[0].dir, root);
        assert_eq!(found[0].files, vec![root.join("compose.yaml")]);
        assert_eq!(
            found[2].files,
            vec![
                root.join("shop/compose.yml"),
                root.join("shop/compose.override.yml")
            ]
        );
        assert_eq!(found[1].dir, root.join("apps/blog"));
    }

    #[test]
    fn skips_hidden_vendor_and_build_folders() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        touch(&root.join(".git/compose.yaml"));
        touch(&root.join(".hidden/app/compose.yaml"));
        touch(&root.join("node_modules/x/compose.yaml"));
        touch(&root.join("target/compose.yaml"));
        touch(&root.join("real/compose.yaml"));
        let keys: Vec<_> = discover(root).into_iter().map(|p| p.key).collect();
        assert_eq!(keys, vec!["real"]);
    }

    #[test]
    fn does_not_follow_symlinked_folders() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        touch(&root.join("a/compose.yaml"));
        std::os::unix::fs::symlink(root, root.join("a/loop")).unwrap();
        let keys: Vec<_> = discover(root).into_iter().map(|p| p.key).collect();
        assert_eq!(keys, vec!["a"]);
    }

    #[test]
    fn empty_or_missing_root_has_no_projects() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(discover(tmp.path()).is_empty());
        assert!(discover(&tmp.path().join("missing")).is_empty());
    }
}
