//! `.dockerignore` patterns against paths made from the same input. None
//! may panic.
#![no_main]

use std::path::Path;

use berth_spec::dockerignore::DockerIgnore;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(ignore) = DockerIgnore::parse(text, Path::new(".dockerignore")) else {
        return;
    };
    for line in text.lines().take(16) {
        let _ = ignore.is_excluded(line, false);
        let _ = ignore.may_contain_exceptions(line);
    }
});
