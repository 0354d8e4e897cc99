//! A handle's readers follow its own writer's appends incrementally: a `stat` taken
//! before a concurrent save must never make them read the whole file again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use trace_store_conformance::child_trace;
use trace_store_core::{TraceFilter, TraceStore};
use trace_store_jsonl::{JsonlOptions, JsonlStore};

#[test]
fn readers_racing_a_writer_on_the_same_handle_never_reread_the_whole_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        JsonlStore::open_with(
            dir.path().join("t.jsonl"),
            JsonlOptions::default().without_auto_compact(),
        )
        .unwrap(),
    );
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (store, done) = (Arc::clone(&store), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut looks = 0u64;
                while !done.load(Ordering::Relaxed) {
                    store.query(&TraceFilter::new().with_limit(5)).unwrap();
                    looks += 1;
                }
                looks
            })
        })
        .collect();
    for i in 0..1500 {
        store.save(&child_trace("w", i)).unwrap();
    }
    done.store(true, Ordering::Relaxed);
    let looks: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert!(looks > 0, "the readers never ran");
    let health = store.health().unwrap();
    assert_eq!(health.live_records, 1500);
    assert_eq!(
        health.full_rereads, 0,
        "readers re-read the whole file after the writer's appends ({looks} reads)"
    );
}
