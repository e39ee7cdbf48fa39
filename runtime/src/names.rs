//! Container ids and Docker-style random names (`adjective_noun`).

use std::io::Read;

const ADJECTIVES: &[&str] = &[
    "admiring",
    "bold",
    "brave",
    "busy",
    "calm",
    "clever",
    "cool",
    "dazzling",
    "eager",
    "elastic",
    "epic",
    "fervent",
    "focused",
    "gallant",
    "gifted",
    "happy",
    "hopeful",
    "jolly",
    "keen",
    "kind",
    "lucid",
    "modest",
    "nice",
    "optimistic",
    "peaceful",
    "quirky",
    "relaxed",
    "serene",
    "sharp",
    "stoic",
    "tender",
    "upbeat",
    "vibrant",
    "wizardly",
    "zealous",
];
const NOUNS: &[&str] = &[
    "babbage", "bohr", "curie", "darwin", "dijkstra", "einstein", "euler", "feynman", "galileo",
    "gauss", "hopper", "hypatia", "kepler", "knuth", "lamport", "liskov", "lovelace", "maxwell",
    "mccarthy", "newton", "noether", "pascal", "ritchie", "shannon", "thompson", "torvalds",
    "turing", "wozniak", "yonath",
];

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom")
        && f.read_exact(&mut buf).is_ok()
    {
        return buf;
    }
    // No /dev/urandom: time and pid still make collisions unlikely.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
        ^ u128::from(std::process::id());
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (seed >> ((i % 16) * 8)) as u8 ^ i as u8;
    }
    buf
}

/// A new 64-hex-digit container id.
pub fn new_id() -> String {
    random_bytes::<32>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A random `adjective_noun` name.
pub fn random_name() -> String {
    let r = random_bytes::<2>();
    format!(
        "{}_{}",
        ADJECTIVES[r[0] as usize % ADJECTIVES.len()],
        NOUNS[r[1] as usize % NOUNS.len()]
    )
}

/// Docker's rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names_have_the_right_shape() {
        let id = new_id();
        assert_eq!(id.len(), 64);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(id, new_id());
        let name = random_name();
        assert!(valid_name(&name), "{name}");
        assert!(name.contains('_'));
    }

    #[test]
    fn name_rules() {
        assert!(valid_name("web-1.a_b"));
        assert!(!valid_name("-web"));
        assert!(!valid_name(""));
        assert!(!valid_name("a/b"));
    }
}
