//! The TOML config: any text is a config or a clear error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = evident::config::Config::parse(text, std::path::Path::new("/fuzz/evident.toml"));
    }
});
