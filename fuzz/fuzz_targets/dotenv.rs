//! `.env` text and bare interpolation templates. None may panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lookup = |name: &str| (name == "SET").then(|| "value".to_string());
    let _ = berth_spec::dotenv::parse(text, Path::new(".env"), &lookup);
    let _ = berth_spec::interpolate::interpolate(text, &lookup);
    let _ = berth_spec::units::parse_duration(text);
    let _ = berth_spec::units::parse_bytes(text);
});
