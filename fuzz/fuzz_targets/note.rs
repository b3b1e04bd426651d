//! C2SP signed notes, checkpoints, tlog proofs and verifier keys.
#![no_main]
use std::sync::OnceLock;

use evident::ledger::note::{Checkpoint, NoteVerifier, TlogProof};
use libfuzzer_sys::fuzz_target;

fn key() -> &'static NoteVerifier {
    static K: OnceLock<NoteVerifier> = OnceLock::new();
    K.get_or_init(|| NoteVerifier::parse(include_str!("../seeds/log.vkey")).expect("seed key"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = Checkpoint::open(text, key());
    let _ = key().open(text);
    let _ = TlogProof::parse(text);
    let _ = NoteVerifier::parse(text);
});
