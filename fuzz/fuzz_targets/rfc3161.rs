//! RFC 3161 timestamp responses and the certificates inside them.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = evident::anchor::tsp::verify(data, b"checkpoint\n", None, None);
    let _ = evident::anchor::tsp::parse_cert(data);
});
