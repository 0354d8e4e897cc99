//! `trace_store::open("jsonl://PATH")` opens a working JSON Lines store.
#![cfg(feature = "jsonl")]

use trace_store::{Error, Trace, TraceFilter, TraceStoreExt};

#[test]
fn jsonl_urls_open_working_stores() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.jsonl");
    let url = format!("jsonl://{}", path.display());
    {
        let store = trace_store::open(&url).expect("open jsonl://");
        store
            .save(&Trace::new("a").with_metadata("user_id", "u1"))
            .expect("save");
        store.save(&Trace::new("b")).expect("save");
        assert!(store.delete("b").expect("delete"));
        assert_eq!(
            store
                .count(&TraceFilter::new().with_metadata("user_id", "u1"))
                .expect("count"),
            1
        );
    }
    assert!(path.exists(), "the store lives in the file the URL names");
    let reopened = trace_store::open(&url).expect("reopen");
    assert_eq!(reopened.load("a").expect("load").run_id, "a");
    assert!(reopened.load_opt("b").expect("load_opt").is_none());

    let synced = trace_store::open(&format!("{url}?durability=sync")).expect("durability=sync");
    synced.save(&Trace::new("c")).expect("save with fsync");
    assert_eq!(
        reopened.list(10, 0).expect("list").len(),
        2,
        "handles share the file"
    );
}

#[test]
fn jsonl_url_errors_are_typed() {
    assert!(matches!(
        trace_store::open("jsonl://"),
        Err(Error::InvalidInput { .. })
    ));
    assert!(matches!(
        trace_store::open("jsonl:///tmp/x.jsonl?durability=sometimes"),
        Err(Error::InvalidInput { .. })
    ));
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no/such/dir/t.jsonl");
    assert!(matches!(
        trace_store::open(&format!("jsonl://{}", missing.display())),
        Err(Error::Io(_))
    ));
}
