//! Front matter and title hints of any document head.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = evident_collectors::hints::document_hints(data);
});
