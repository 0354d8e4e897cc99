//! C6: contradictory filters are `InvalidInput` for every reading method.

use trace_store_core::{TraceFilter, TraceStore};

use crate::fixtures::{assert_invalid, at, ok, trace};

fn assert_rejected(store: &dyn TraceStore, filter: &TraceFilter, what: &str) {
    assert_invalid(store.query(filter), &format!("query with {what}"));
    assert_invalid(store.count(filter), &format!("count with {what}"));
    assert_invalid(store.stats(filter), &format!("stats with {what}"));
}

/// `min_steps > max_steps` is rejected, on an empty store and a full one.
pub fn c6_min_steps_above_max_steps(store: &dyn TraceStore) {
    let filter = TraceFilter::new().with_min_steps(3).with_max_steps(2);
    assert_rejected(store, &filter, "min_steps > max_steps");
    ok(store.save(&trace("r", 1, 3)), "save");
    assert_rejected(store, &filter, "min_steps > max_steps");
    assert_eq!(
        ok(store.list(10, 0), "list").len(),
        1,
        "a rejected query changes nothing"
    );
}

/// `since > until` is rejected.
pub fn c6_since_after_until(store: &dyn TraceStore) {
    ok(store.save(&trace("r", 1, 3)), "save");
    let filter = TraceFilter::new().with_since(at(2)).with_until(at(1));
    assert_rejected(store, &filter, "since > until");
    let edge = TraceFilter::new().with_since(at(1)).with_until(at(1));
    assert_eq!(ok(store.query(&edge), "query with since == until").len(), 1);
}
