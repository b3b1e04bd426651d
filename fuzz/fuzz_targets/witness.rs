//! The witness's `add-checkpoint` handler (`evident witness serve`) over any request body: it
//! answers every input with one of the spec's statuses, never panics, and cosigns only a
//! checkpoint signed by the log it follows. Also the tile entry-bundle splitter that
//! `verify --tiles` runs on what a tile server sends.
#![no_main]
use std::sync::OnceLock;

use evident::ledger::leaf::LeafView;
use evident::ledger::note::{Checkpoint, NoteVerifier};
use evident::tiles::layout::split_entries;
use evident::witness::book::Book;
use evident::witness::protocol::AddCheckpoint;
use libfuzzer_sys::fuzz_target;

fn key() -> &'static NoteVerifier {
    static K: OnceLock<NoteVerifier> = OnceLock::new();
    K.get_or_init(|| NoteVerifier::parse(include_str!("../seeds/log.vkey")).expect("seed key"))
}

fn book() -> &'static Book {
    static B: OnceLock<(tempfile::TempDir, Book)> = OnceLock::new();
    &B.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        Book::init(dir.path(), "fuzz.example/witness").expect("witness init");
        let book = Book::open(dir.path(), vec![key().clone()]).expect("witness open");
        (dir, book)
    })
    .1
}

fuzz_target!(|data: &[u8]| {
    let a = book().add_checkpoint(data);
    assert!(matches!(a.status, 200 | 400 | 403 | 404 | 409 | 422), "{}", a.status);
    if a.status == 200 {
        let req = AddCheckpoint::parse(data).expect("a cosigned request parsed");
        assert!(Checkpoint::open(&req.checkpoint, key()).is_ok());
    }
    if let Ok(leaves) = split_entries(data, 256) {
        assert!(leaves.len() <= 256);
        for l in leaves {
            let _ = LeafView::parse(l);
        }
    }
});
