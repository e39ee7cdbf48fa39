//! A small deterministic fuzz: mutated golden inputs must give a
//! tree or a diagnostic, never a panic. Set BERTH_FUZZ_ITERS and
//! BERTH_FUZZ_SEED for a longer run; a real cargo-fuzz target is still to
//! be written.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;

use berth_spec::{dotenv, interpolate, yaml};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const PIECES: &[&str] = &[
    "\n",
    " ",
    "  ",
    ":",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "&a ",
    "*a",
    "<<: ",
    "!reset ",
    "!!int ",
    "!x ",
    "\"",
    "'",
    "|",
    ">",
    "#",
    "---\n",
    "...\n",
    "?",
    "${",
    "$",
    "}",
    "\t",
    "é",
    "\u{feff}",
    "%YAML 1.2\n",
    "\\",
];

fn mutate(rng: &mut Rng, base: &str) -> String {
    let mut chars: Vec<char> = base.chars().collect();
    for _ in 0..=rng.below(6) {
        let at = rng.below(chars.len() + 1);
        match rng.below(3) {
            0 if !chars.is_empty() && at < chars.len() => {
                chars.remove(at);
            }
            1 => {
                let piece = PIECES[rng.below(PIECES.len())];
                for (i, c) in piece.chars().enumerate() {
                    chars.insert(at + i, c);
                }
            }
            _ => {
                if at < chars.len() {
                    let c = chars[rng.below(chars.len())];
                    chars[at] = c;
                }
            }
        }
    }
    chars.into_iter().collect()
}

fn seeds() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/yaml");
    let mut out = Vec::new();
    for dir in [root.clone(), root.join("negative")] {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            if let Ok(text) = std::fs::read_to_string(entry.path().join("input.yaml")) {
                if text.len() < 4096 {
                    out.push(text);
                }
            }
        }
    }
    out
}

#[test]
fn mutated_inputs_never_panic() {
    let seeds = seeds();
    let seed: u64 = std::env::var("BERTH_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x9E37_79B9_7F4A_7C15);
    let mut rng = Rng(seed | 1);
    let file: Arc<Path> = Arc::from(Path::new("f.yaml"));
    let lookup = |k: &str| (k.len() % 2 == 0).then(|| k.to_lowercase());
    let iterations: usize = std::env::var("BERTH_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    for _ in 0..iterations {
        let seed = &seeds[rng.below(seeds.len())];
        let text = mutate(&mut rng, seed);
        if let Ok(mut node) = yaml::parse(&text, file.clone()) {
            let _ = interpolate::interpolate_node(&mut node, &lookup);
            let _ = node.to_json();
        }
        let _ = interpolate::interpolate(&text, &lookup);
        let _ = dotenv::parse(&text, Path::new(".env"), &lookup);
    }
    println!("yaml robustness: {iterations} mutated inputs, no panic");
}
