//! Content digests of the files a project's configs and secrets read, for
//! the config hash: editing a config file changes the hash of exactly the
//! services that mount it, so only those are recreated.

use std::collections::BTreeMap;
use std::path::Path;

use berth_spec::compose::model::Project;
use sha2::{Digest, Sha256};

/// Absolute file path -> `sha256:<hex>` for every `file:` of a top-level
/// config or secret. A folder hashes its files' relative paths and
/// contents, in order; a missing file is left out (the hash then says
/// "unknown", and creating the container reports the real problem).
pub fn file_digests(project: &Project) -> BTreeMap<String, String> {
    project
        .configs
        .values()
        .chain(project.secrets.values())
        .filter_map(|def| def.file.as_deref())
        .filter_map(|file| Some((file.to_owned(), digest(Path::new(file))?)))
        .collect()
}

fn digest(path: &Path) -> Option<String> {
    let mut hasher = Sha256::new();
    hash_into(&mut hasher, path, Path::new("")).ok()?;
    Some(format!("sha256:{:x}", hasher.finalize()))
}

fn hash_into(hasher: &mut Sha256, path: &Path, rel: &Path) -> std::io::Result<()> {
    let meta = std::fs::metadata(path)?;
    if meta.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(path)?
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        entries.sort();
        for name in entries {
            hash_into(hasher, &path.join(&name), &rel.join(&name))?;
        }
        return Ok(());
    }
    let content = std::fs::read(path)?;
    // Length-prefixed, so no two different trees hash alike.
    let name = rel.as_os_str().as_encoded_bytes();
    hasher.update((name.len() as u64).to_le_bytes());
    hasher.update(name);
    hasher.update((content.len() as u64).to_le_bytes());
    hasher.update(&content);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_spec::compose::model::FileObjectConfig;

    #[test]
    fn configs_and_secrets_are_hashed_by_content() {
        let tmp = tempfile::tempdir().unwrap();
        let conf = tmp.path().join("app.conf");
        let dir = tmp.path().join("certs");
        std::fs::write(&conf, "a=1\n").unwrap();
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("key.pem"), "k").unwrap();
        let mut project = Project::default();
        let def = |p: &Path| FileObjectConfig {
            file: Some(p.display().to_string()),
            ..Default::default()
        };
        project.configs.insert("app".into(), def(&conf));
        project.secrets.insert("certs".into(), def(&dir));
        project
            .secrets
            .insert("gone".into(), def(&tmp.path().join("missing")));
        let first = file_digests(&project);
        assert_eq!(first.len(), 2, "{first:?}");
        assert!(first[&conf.display().to_string()].starts_with("sha256:"));

        std::fs::write(&conf, "a=2\n").unwrap();
        let second = file_digests(&project);
        assert_ne!(
            first[&conf.display().to_string()],
            second[&conf.display().to_string()]
        );
        assert_eq!(
            first[&dir.display().to_string()],
            second[&dir.display().to_string()]
        );

        std::fs::write(dir.join("key.pem"), "k2").unwrap();
        assert_ne!(
            file_digests(&project)[&dir.display().to_string()],
            second[&dir.display().to_string()]
        );
    }
}
