//! S3 ListObjectsV2 responses.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = evident_collectors::sources::s3::parse_list(data);
});
