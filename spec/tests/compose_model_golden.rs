//! Golden test: `compose-go/loader/full-example.yml` decoded and printed in
//! canonical form (no interpolation, no path resolution: that is the
//! loader's part). Regenerate with `BERTH_UPDATE_GOLDEN=1`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use berth_spec::compose::{decode, model::Project};

fn check_golden(name: &str, actual: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/compose")
        .join(name);
    if std::env::var_os("BERTH_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with BERTH_UPDATE_GOLDEN=1)", path.display()));
    assert_eq!(
        expected,
        actual,
        "{} differs; rerun with BERTH_UPDATE_GOLDEN=1 and review the diff",
        path.display()
    );
}

fn full_example() -> Project {
    let v =
        common::load_yaml(&common::conformance_dir().join("compose-go/loader/full-example.yml"));
    decode::decode(v).unwrap_or_else(|errs| {
        panic!(
            "{}",
            errs.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        )
    })
}

#[test]
fn full_example_canonical_yaml() {
    let yaml = serde_norway::to_string(&full_example()).unwrap();
    check_golden("full-example.yaml", &yaml);
}

#[test]
fn full_example_canonical_json() {
    let json = serde_json::to_string_pretty(&full_example()).unwrap() + "\n";
    check_golden("full-example.json", &json);
}
