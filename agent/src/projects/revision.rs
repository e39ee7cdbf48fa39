//! A project's revision: a sha256 over the sorted (path, content) pairs of
//! every file that feeds it. Content, not modification time, so touching a
//! file or saving it unchanged is not a change.
//!
//! The set always includes the compose files and `<dir>/.env`, even when
//! absent (hashed as absent): a `.env` appearing later must count as a
//! change, and a failed load has no input list of its own.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use berth_spec::compose::model::Project;
use sha2::{Digest, Sha256};

/// Files a loaded model names that the loader itself does not read, so
/// that editing them is a change: the `file:`s of configs and secrets
/// (a folder: every file in it), and every `env_file`, including
/// optional ones that are absent now (appearing later is a change).
pub fn model_inputs(project: &Project) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for def in project.configs.values().chain(project.secrets.values()) {
        if let Some(file) = &def.file {
            push_files(Path::new(file), &mut out, 0);
        }
    }
    for service in project.services.values() {
        out.extend(service.env_file.iter().map(|e| PathBuf::from(&e.path)));
    }
    out
}

/// `path`, or the files under it when it is a folder (to a sane depth).
fn push_files(path: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    match std::fs::read_dir(path) {
        Ok(entries) if depth < 8 => {
            for e in entries.flatten() {
                push_files(&e.path(), out, depth + 1);
            }
        }
        _ => out.push(path.to_path_buf()),
    }
}

/// The files a project's revision covers: the loader's inputs (empty when
/// loading failed), the compose files and `<dir>/.env`, sorted and unique.
pub fn tracked_paths(dir: &Path, files: &[PathBuf], inputs: &[PathBuf]) -> Vec<PathBuf> {
    // `dir.join` keeps absolute paths as they are and anchors relative ones
    // at the project, not at the agent's working directory.
    let mut paths: Vec<PathBuf> = inputs
        .iter()
        .chain(files)
        .map(|p| dir.join(p))
        .chain(std::iter::once(dir.join(".env")))
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

/// `sha256:<hex>` over `paths` and their current content. Each field is
/// length-prefixed so that no two different lists hash alike; a missing or
/// unreadable file hashes as absent.
pub fn revision(paths: &[PathBuf]) -> String {
    let mut hasher = Sha256::new();
    for path in paths {
        let bytes = path.as_os_str().as_encoded_bytes();
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
        match std::fs::read(path) {
            Ok(content) => {
                hasher.update([1u8]);
                hasher.update((content.len() as u64).to_le_bytes());
                hasher.update(&content);
            }
            Err(err) => {
                // NotFound is the normal "absent"; anything else (permission
                // denied, a folder) also hashes as absent, and the loader
                // reports the real problem.
                if err.kind() != ErrorKind::NotFound {
                    tracing::debug!(path = %path.display(), error = %err, "input unreadable while hashing");
                }
                hasher.update([0u8]);
            }
        }
    }
    format!("sha256:{:x}", hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_inputs_files_and_dotenv_sorted_unique() {
        let dir = Path::new("/p");
        let files = vec![PathBuf::from("/p/compose.yaml")];
        let inputs = vec![PathBuf::from("z.yaml"), PathBuf::from("/p/compose.yaml")];
        assert_eq!(
            tracked_paths(dir, &files, &inputs),
            vec![
                PathBuf::from("/p/.env"),
                PathBuf::from("/p/compose.yaml"),
                PathBuf::from("/p/z.yaml")
            ]
        );
    }

    #[test]
    fn content_changes_the_revision_and_touching_does_not() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("compose.yaml");
        std::fs::write(&file, "services: {}\n").unwrap();
        let paths = tracked_paths(tmp.path(), std::slice::from_ref(&file), &[]);
        let r1 = revision(&paths);
        assert!(r1.starts_with("sha256:"));
        assert_eq!(r1.len(), "sha256:".len() + 64);

        // Rewriting the same bytes (a touch, an unchanged save) is no change.
        std::fs::write(&file, "services: {}\n").unwrap();
        assert_eq!(revision(&paths), r1);

        std::fs::write(&file, "services: {a: {}}\n").unwrap();
        let r2 = revision(&paths);
        assert_ne!(r2, r1);

        // A .env appearing is a change, and so is it going away again.
        std::fs::write(tmp.path().join(".env"), "A=1\n").unwrap();
        let r3 = revision(&paths);
        assert_ne!(r3, r2);
        std::fs::remove_file(tmp.path().join(".env")).unwrap();
        assert_eq!(revision(&paths), r2);
    }

    #[test]
    fn configs_secrets_and_env_files_are_model_inputs() {
        use berth_spec::compose::model::{EnvFile, FileObjectConfig, Service};
        let tmp = tempfile::tempdir().unwrap();
        let certs = tmp.path().join("certs");
        std::fs::create_dir(&certs).unwrap();
        std::fs::write(certs.join("a.pem"), "a").unwrap();
        let mut project = Project::default();
        let def = |p: &Path| FileObjectConfig {
            file: Some(p.display().to_string()),
            ..Default::default()
        };
        project
            .configs
            .insert("app".into(), def(&tmp.path().join("app.conf")));
        project.secrets.insert("certs".into(), def(&certs));
        let mut web = Service::default();
        web.env_file.push(EnvFile {
            path: tmp.path().join("web.env").display().to_string(),
            required: false,
            format: None,
        });
        project.services.insert("web".into(), web);
        let mut inputs = model_inputs(&project);
        inputs.sort();
        assert_eq!(
            inputs,
            vec![
                tmp.path().join("app.conf"),
                certs.join("a.pem"),
                tmp.path().join("web.env")
            ]
        );
    }

    #[test]
    fn empty_file_differs_from_missing_file() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("x");
        let paths = vec![file.clone()];
        let missing = revision(&paths);
        std::fs::write(&file, "").unwrap();
        assert_ne!(revision(&paths), missing);
    }

    #[test]
    fn path_and_content_boundaries_do_not_collide() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("ab"));
        std::fs::write(&a, "bc").unwrap();
        std::fs::write(&b, "c").unwrap();
        assert_ne!(revision(&[a]), revision(&[b]));
    }
}
