//! `trace_store::open` with SQLite URLs gives working stores.
#![cfg(feature = "sqlite")]

use trace_store::{Error, Trace, TraceFilter, TraceStore};

fn round_trip(store: &dyn TraceStore) {
    let trace = Trace::new("run-1").with_metadata("user_id", "u_1");
    store.save(&trace).expect("save");
    assert_eq!(store.load("run-1").expect("load"), trace);
    assert_eq!(
        store
            .count(&TraceFilter::new().with_metadata("user_id", "u_1"))
            .expect("count"),
        1
    );
}

#[test]
fn sqlite_file_urls_open_the_same_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.db");
    let url = format!("sqlite://{}", path.display());
    round_trip(&*trace_store::open(&url).expect("open"));
    assert!(path.exists());
    let again = trace_store::open(&url).expect("reopen");
    assert_eq!(again.list(10, 0).expect("list").len(), 1);

    let synced = trace_store::open(&format!("{url}?durability=sync")).expect("open sync");
    // The store's Debug shows its options: the parameter reached SQLite's settings.
    let shown = format!("{synced:?}");
    assert!(shown.contains("durability: Sync"), "{shown}");
    assert!(
        format!("{again:?}").contains("durability: Flush"),
        "{again:?}"
    );
    synced
        .save(&Trace::new("run-2"))
        .expect("save with durability=sync");
    assert_eq!(again.list(10, 0).expect("list").len(), 2);
}

#[test]
fn sqlite_memory_url_is_a_private_database() {
    let store = trace_store::open("sqlite::memory:").expect("open");
    round_trip(&*store);
    let other = trace_store::open("sqlite::memory:").expect("open");
    assert!(other.list(10, 0).expect("list").is_empty());
}

#[test]
fn a_file_that_is_not_a_store_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "not a database").expect("write");
    let error = trace_store::open(&format!("sqlite://{}", path.display())).expect_err("not SQLite");
    assert!(matches!(error, Error::Corrupt { .. }), "{error}");
    assert_eq!(std::fs::read(&path).expect("read"), b"not a database");
}
