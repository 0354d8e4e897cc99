//! Bounded stores: least recently used traces are evicted first.

use trace_store_core::{TraceFilter, TraceStore};

use crate::fixtures::{assert_answer, ok, trace};

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
    assert_answer(
        "LRU evicts least recently used",
        2,
        ok(store.load("r1"), "load r1").steps.len(),
    );
    assert_answer(
        "LRU evicts least recently used",
        capacity as u64,
        ok(store.count(&TraceFilter::new()), "count"),
    );
    assert_answer(
        "LRU evicts least recently used: evicted traces are not listed",
        capacity,
        ok(store.list(usize::MAX, 0), "list").len(),
    );
}

/// Eviction follows recency exactly: after loading every trace in reverse order and
/// re-saving one, new saves evict the least recently used first, one per save, and
/// reading views (`list`, `query`, `count`, `stats`, `stats_by`, text search) never
/// refresh anything.
pub fn bounded_eviction_follows_recency(store: &dyn TraceStore, capacity: usize) {
    use crate::fixtures::{assert_answer, query_ids};
    for i in 0..capacity {
        ok(store.save(&trace(&format!("r{i}"), i as i64, 1)), "save");
    }
    // Recency, least recent first: r{capacity-1}, ..., r1, r0, then r5 (re-saved).
    for i in (0..capacity).rev() {
        ok(store.load(&format!("r{i}")), "load");
    }
    ok(store.save(&trace("r5", 5, 2)), "re-save r5");
    for filter in [TraceFilter::new(), TraceFilter::new().with_text("gpt")] {
        ok(store.query(&filter), "query");
        ok(store.count(&filter), "count");
        ok(store.stats(&filter), "stats");
        ok(
            store.stats_by(&filter, trace_store_core::GroupBy::Day),
            "stats_by",
        );
    }
    ok(store.list(capacity, 0), "list");
    let evicted_first: Vec<String> = (0..3).map(|k| format!("r{}", capacity - 1 - k)).collect();
    for (k, expected_gone) in evicted_first.iter().enumerate() {
        ok(
            store.save(&trace(&format!("new-{k}"), -1 - k as i64, 1)),
            "save over capacity",
        );
        crate::fixtures::assert_not_found(store.load(expected_gone), expected_gone);
    }
    // Loading the survivors above changed nothing that is checked next: r0 and r5 are
    // the most recently used of the originals.
    for survivor in ["r0", "r1", "r5"] {
        ok(store.load(survivor), "LRU: a recently used trace survives");
    }
    assert_answer(
        "LRU eviction: the least recently used went, not the oldest saved",
        Vec::<String>::new(),
        query_ids(
            store,
            &TraceFilter::new()
                .with_since(crate::fixtures::at(capacity as i64 - 3))
                .with_until(crate::fixtures::at(capacity as i64 - 1)),
        ),
    );
    assert_answer(
        "LRU eviction: the store holds its capacity",
        capacity as u64,
        ok(store.count(&TraceFilter::new()), "count"),
    );
}
