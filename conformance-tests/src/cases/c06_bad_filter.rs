//! C6: contradictory filters are `InvalidInput` for every reading method.

use trace_store_core::{TraceFilter, TraceStore};

use crate::fixtures::{assert_answer, assert_invalid, at, ok, trace};

fn assert_rejected(store: &dyn TraceStore, filter: &TraceFilter, what: &str) {
    assert_invalid(store.query(filter), &format!("query with {what}"));
    assert_invalid(store.count(filter), &format!("count with {what}"));
    assert_invalid(store.stats(filter), &format!("stats with {what}"));
    assert_invalid(
        store.stats_by(filter, trace_store_core::GroupBy::Day),
        &format!("stats_by with {what}"),
    );
    assert_invalid(
        store.delete_where(filter),
        &format!("delete_where with {what}"),
    );
}

/// `min_steps > max_steps` is rejected, on an empty store and a full one.
pub fn c6_min_steps_above_max_steps(store: &dyn TraceStore) {
    let filter = TraceFilter::new().with_min_steps(3).with_max_steps(2);
    assert_rejected(store, &filter, "min_steps > max_steps");
    ok(store.save(&trace("r", 1, 3)), "save");
    assert_rejected(store, &filter, "min_steps > max_steps");
    assert_answer(
        "C6 min steps above max steps: a rejected query changes nothing",
        1,
        ok(store.list(10, 0), "list").len(),
    );
}

/// `since > until` is rejected.
pub fn c6_since_after_until(store: &dyn TraceStore) {
    ok(store.save(&trace("r", 1, 3)), "save");
    let filter = TraceFilter::new().with_since(at(2)).with_until(at(1));
    assert_rejected(store, &filter, "since > until");
    let edge = TraceFilter::new().with_since(at(1)).with_until(at(1));
    assert_answer(
        "C6 since after until",
        1,
        ok(store.query(&edge), "query with since == until").len(),
    );
}

/// An empty text query is rejected by every reading method and by `delete_where`.
pub fn c6_empty_text(store: &dyn TraceStore) {
    ok(store.save(&trace("r", 1, 3).with_name("named")), "save");
    let filter = TraceFilter::new().with_text("");
    assert_rejected(store, &filter, "C6 an empty text query");
    crate::fixtures::assert_answer(
        "C6 a rejected filter deletes nothing",
        1,
        ok(store.count(&TraceFilter::new()), "count"),
    );
}

/// A score range with `min > max`, or a bound that is not a finite number, is rejected.
pub fn c6_score_min_above_max(store: &dyn TraceStore) {
    ok(store.save(&trace("r", 1, 3)), "save");
    for (min, max, what) in [
        (Some(1.0), Some(0.5), "C6 score min > max"),
        (Some(f64::NAN), None, "C6 score min NaN"),
        (None, Some(f64::INFINITY), "C6 score max infinite"),
    ] {
        assert_rejected(store, &TraceFilter::new().with_score("q", min, max), what);
    }
    let edge = TraceFilter::new().with_score("q", Some(0.5), Some(0.5));
    crate::fixtures::assert_answer(
        "C6 score min == max is valid",
        0,
        ok(store.count(&edge), "count with min == max"),
    );
    crate::fixtures::assert_answer(
        "C6 a rejected filter deletes nothing",
        1,
        ok(store.count(&TraceFilter::new()), "count"),
    );
}
