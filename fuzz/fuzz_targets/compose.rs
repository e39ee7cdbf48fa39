//! The Compose pipeline on arbitrary text: YAML tree, interpolation,
//! merge onto itself, type coercion, schema validation, typed decode. Any
//! input may be rejected; none may panic, hang or overflow the stack.
#![no_main]

use std::path::Path;
use std::sync::Arc;

use berth_spec::compose::{decode, merge, schema};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(mut doc) = berth_spec::yaml::parse(text, Arc::from(Path::new("compose.yaml"))) else {
        return;
    };
    let lookup = |name: &str| match name {
        "SET" => Some("value".to_string()),
        "EMPTY" => Some(String::new()),
        "PORT" => Some("8080".to_string()),
        _ => None,
    };
    let _ = berth_spec::interpolate::interpolate_node(&mut doc, &lookup);
    let mut merged = merge::merge_documents(doc.clone(), doc);
    merge::strip_tags(&mut merged);
    let _ = schema::coerce(&mut merged);
    let json = merged.to_json();
    for violation in schema::validate(&json) {
        let _ = violation.to_diagnostic(&merged).to_string();
    }
    if let Ok(project) = decode::decode(json) {
        let _ = serde_json::to_string(&project);
    }
});
