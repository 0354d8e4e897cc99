//! Eviction order and capacity rules beyond the conformance suite's eviction case.

use trace_store_core::{Error, Timestamp, Trace, TraceFilter, TraceStore};
use trace_store_memory::MemoryStore;

fn trace(run_id: &str, micros: i64) -> Trace {
    Trace::new(run_id).with_created_at(Timestamp::from_micros(micros).expect("valid"))
}

#[test]
fn capacity_zero_is_invalid_input() {
    assert!(matches!(
        MemoryStore::new(0),
        Err(Error::InvalidInput { .. })
    ));
    assert_eq!(MemoryStore::new(3).expect("valid").capacity(), Some(3));
    assert_eq!(MemoryStore::unbounded().capacity(), None);
}

#[test]
fn a_huge_capacity_allocates_nothing_up_front() {
    // A capacity is a bound, not a size hint: `memory://?capacity=<huge>` must neither
    // abort on allocation nor panic.
    for capacity in [usize::MAX, 1 << 40] {
        let store = MemoryStore::new(capacity).expect("valid");
        store.save(&trace("a", 1)).expect("save");
        assert_eq!(store.len(), 1);
    }
}

#[test]
fn eviction_follows_use_not_insertion() {
    // selectools evicts in insertion order while documenting LRU; this must not.
    let store = MemoryStore::new(3).expect("valid");
    for (i, id) in ["a", "b", "c"].into_iter().enumerate() {
        store.save(&trace(id, i as i64)).expect("save");
    }
    store.load("a").expect("load");
    store.save(&trace("d", 3)).expect("save");
    assert!(store.load("b").is_err(), "b was least recently used");
    store.save(&trace("c", 9)).expect("upsert refreshes c");
    store.save(&trace("e", 4)).expect("save");
    assert!(store.load("a").is_err(), "a was least recently used");
    let listed: Vec<_> = store
        .list(10, 0)
        .expect("list")
        .into_iter()
        .map(|s| s.run_id)
        .collect();
    assert_eq!(listed, ["c", "e", "d"]);
}

#[test]
fn browsing_does_not_refresh_and_upsert_does_not_evict() {
    let store = MemoryStore::new(2).expect("valid");
    store.save(&trace("a", 1)).expect("save");
    store.save(&trace("b", 2)).expect("save");
    for _ in 0..3 {
        store
            .query(&TraceFilter::new().with_limit(1))
            .expect("query");
        store.count(&TraceFilter::new()).expect("count");
    }
    store
        .save(&trace("b", 5))
        .expect("upsert of a held id evicts nothing");
    assert_eq!(store.len(), 2);
    store.save(&trace("c", 3)).expect("save");
    assert!(
        store.load("a").is_err(),
        "query and count did not refresh a"
    );
    assert_eq!(store.count(&TraceFilter::new()).expect("count"), 2);
}

#[test]
fn save_many_over_capacity_keeps_the_last() {
    let store = MemoryStore::new(2).expect("valid");
    let batch: Vec<_> = (0..5).map(|i| trace(&format!("r{i}"), i)).collect();
    store.save_many(&batch).expect("save_many");
    let listed: Vec<_> = store
        .list(10, 0)
        .expect("list")
        .into_iter()
        .map(|s| s.run_id)
        .collect();
    assert_eq!(listed, ["r4", "r3"]);
}
