//! Finding a project's compose files the way `docker compose` does.

use std::path::{Path, PathBuf};

/// The file names Compose looks for, in order of preference.
pub const COMPOSE_FILE_NAMES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// The override file names that go with each main file name.
pub const OVERRIDE_FILE_NAMES: [&str; 4] = [
    "compose.override.yaml",
    "compose.override.yml",
    "docker-compose.override.yaml",
    "docker-compose.override.yml",
];

/// The compose files of the project whose folder is `dir`: the first main
/// file found by [`COMPOSE_FILE_NAMES`] order, then its override file when
/// present. Empty when `dir` holds no compose file. Only `dir` itself is
/// looked at; `docker compose` also walks up to parent folders, which the CLI
/// does by calling this per ancestor.
pub fn project_files(dir: &Path) -> Vec<PathBuf> {
    let Some(main) = COMPOSE_FILE_NAMES
        .iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
    else {
        return Vec::new();
    };
    let mut files = vec![main];
    if let Some(over) = OVERRIDE_FILE_NAMES
        .iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
    {
        files.push(over);
    }
    files
}

/// True when `name` is one of the file names that define or override a
/// project (what a directory watcher cares about).
pub fn is_compose_file_name(name: &str) -> bool {
    COMPOSE_FILE_NAMES.contains(&name) || OVERRIDE_FILE_NAMES.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefers_compose_yaml_and_adds_override() {
        let dir = std::env::temp_dir().join(format!("berth-discover-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("docker-compose.yml"), "services: {}\n").unwrap();
        assert_eq!(project_files(&dir), vec![dir.join("docker-compose.yml")]);
        std::fs::write(dir.join("compose.yaml"), "services: {}\n").unwrap();
        std::fs::write(dir.join("compose.override.yaml"), "services: {}\n").unwrap();
        assert_eq!(
            project_files(&dir),
            vec![dir.join("compose.yaml"), dir.join("compose.override.yaml")]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn empty_dir_has_no_project() {
        assert!(project_files(Path::new("/nonexistent-berth-dir")).is_empty());
        assert!(is_compose_file_name("compose.override.yml"));
        assert!(!is_compose_file_name("compose.yaml.swp"));
    }
}
