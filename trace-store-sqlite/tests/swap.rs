//! A database file replaced under an open store (a restore, a rotation by `mv`): the
//! old handle may only fail, never touch the new file's log, shared memory or pages.

use std::path::Path;

use trace_store_core::{Trace, TraceFilter, TraceStore};
use trace_store_sqlite::SqliteStore;

fn fill(path: &Path, prefix: &str, count: usize) -> SqliteStore {
    let store = SqliteStore::open(path).expect("open");
    let traces: Vec<Trace> = (0..count)
        .map(|i| Trace::new(format!("{prefix}-{i:04}")).with_metadata("from", prefix))
        .collect();
    store.save_many(&traces).expect("save_many");
    store
}

fn count(path: &Path, prefix: &str) -> u64 {
    let store = SqliteStore::open(path).expect("reopen");
    store
        .count(&TraceFilter::new().with_metadata("from", prefix))
        .expect("count")
}

/// The swap of the issue: 1,000 traces moved in under a store that holds 300 (some of
/// them still only in its write-ahead log); after the old store closes, the path holds
/// the 1,000 and nothing of the 300.
fn swap_then(close_old: impl FnOnce(SqliteStore)) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("traces.db");
    let old = fill(&path, "old", 300);
    // Writes the old handle made after its last checkpoint sit in its log.
    old.save(&Trace::new("old-late").with_metadata("from", "old"))
        .expect("save");
    let incoming = dir.path().join("incoming.db");
    fill(&incoming, "new", 1_000).close().expect("close");
    std::fs::rename(&incoming, &path).expect("swap the file in");

    let error = old
        .save(&Trace::new("old-after-swap"))
        .expect_err("the old handle refuses writes after the swap");
    assert!(error.to_string().contains("Reopen the store"), "{error}");
    close_old(old);

    assert_eq!(
        count(&path, "new"),
        1_000,
        "every trace of the new file is there"
    );
    assert_eq!(count(&path, "old"), 0, "nothing of the old file leaked in");
    let check = rusqlite::Connection::open(&path).expect("open");
    let integrity: String = check
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(integrity, "ok");
}

#[test]
fn a_file_swapped_under_an_open_store_keeps_its_data_after_close() {
    swap_then(|old| old.close().expect("close"));
}

#[test]
fn a_file_swapped_under_an_open_store_keeps_its_data_after_drop() {
    swap_then(drop);
}

#[test]
fn a_file_swapped_under_an_open_store_keeps_its_data_after_reads() {
    swap_then(|old| {
        // Readers of the old handle may still answer from the old file, but must not
        // leave anything behind for the new one either.
        let _ = old.list(10, 0);
        let _ = old.count(&TraceFilter::new());
        drop(old);
    });
}
