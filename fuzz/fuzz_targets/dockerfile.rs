//! Dockerfile text through the tree parser, the dump, the typed layer and
//! variable expansion. None may panic.
#![no_main]

use std::path::Path;

use berth_spec::dockerfile::{dump, stages::Dockerfile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("Dockerfile");
    if let Ok(ast) = berth_spec::dockerfile::parser::parse(text, path) {
        let _ = dump::dump(&ast);
    }
    if let Ok(dockerfile) = Dockerfile::parse(text, path) {
        let args = |name: &str| (name == "SET").then(|| "value".to_string());
        let _ = dockerfile.target_stages(None, &args);
        for stage in &dockerfile.stages {
            let _ = dockerfile.expanded_base(stage, &args);
            for command in &stage.commands {
                let _ = command.instruction.expand(&args, dockerfile.escape);
            }
        }
    }
});
