//! WebDAV PROPFIND multistatus responses.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = evident_collectors::sources::webdav::parse_multistatus(data);
});
