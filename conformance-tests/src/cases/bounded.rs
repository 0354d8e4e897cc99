//! Bounded stores: least recently used traces are evicted first.

use trace_store_core::{TraceFilter, TraceStore};

use crate::fixtures::{ok, trace};

/// `save` and `load` refresh recency, `list` and `query` do not; the least recently
/// used trace is the one evicted.
pub fn bounded_evicts_least_recently_used(store: &dyn TraceStore, capacity: usize) {
    assert!(
        capacity >= 3,
        "the eviction case needs a capacity of at least 3"
    );
    for i in 0..capacity {
        ok(store.save(&trace(&format!("r{i}"), i as i64, 1)), "save");
    }
    ok(store.load("r0"), "load r0"); // r0 is now the most recently used
    ok(store.save(&trace("r1", 1, 2)), "re-save r1"); // and r1 after it
    ok(store.list(capacity, 0), "list"); // does not refresh anything
    ok(store.query(&TraceFilter::new()), "query");
    ok(store.save(&trace("new-1", 10_000, 1)), "save over capacity");
    crate::fixtures::assert_not_found(store.load("r2"), "r2");
    ok(
        store.load("r0"),
        "r0 was refreshed by load and must survive",
    );
    assert_eq!(ok(store.load("r1"), "load r1").steps.len(), 2);
    assert_eq!(
        ok(store.count(&TraceFilter::new()), "count"),
        capacity as u64
    );
    assert_eq!(
        ok(store.list(usize::MAX, 0), "list").len(),
        capacity,
        "evicted traces are not listed"
    );
}
