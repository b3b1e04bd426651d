//! The offline bundle verifier on any tar stream: the input is gzip-compressed here so the
//! fuzzer explores tar headers, members and their contents rather than deflate blocks.
#![no_main]

use std::io::Write;
use std::sync::OnceLock;

use evident::bundle::verify::{VerifyOptions, verify_tar};
use evident::ledger::note::NoteVerifier;
use libfuzzer_sys::fuzz_target;

fn opts() -> &'static VerifyOptions {
    static O: OnceLock<VerifyOptions> = OnceLock::new();
    O.get_or_init(|| VerifyOptions {
        key: NoteVerifier::parse(include_str!("../seeds/log.vkey")).expect("seed key"),
        previous: None,
        max_member: 1 << 20,
        tsa_ca: None,
        max_total: 64 << 20,
        max_memory: 32 << 20,
        witnesses: (Vec::new(), 0),
    })
}

fuzz_target!(|data: &[u8]| {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = gz.write_all(data);
    let Ok(packed) = gz.finish() else { return };
    let _ = verify_tar(packed.as_slice(), opts());
    // And the raw bytes as they come, for the gzip framing itself.
    let _ = verify_tar(data, opts());
});
