//! C7: delete is `true` then `false`, and the trace disappears from every view.

use serde_json::json;
use trace_store_core::{Status, TraceFilter, TraceStore};

use crate::fixtures::{assert_answer, assert_not_found, ids, ok, trace};

/// A deleted trace is gone from load, list, query, count and stats.
pub fn c7_delete_removes_everywhere(store: &dyn TraceStore) {
    let doomed = trace("doomed", 2, 4)
        .with_status(Status::Error)
        .with_metadata("user", json!("u1"));
    let kept = trace("kept", 1, 1)
        .with_status(Status::Ok)
        .with_metadata("user", json!("u1"));
    ok(store.save_many(&[doomed, kept]), "save_many");
    assert!(
        ok(store.delete("doomed"), "delete"),
        "first delete returns true"
    );
    assert!(
        !ok(store.delete("doomed"), "delete"),
        "second delete returns false"
    );
    assert_not_found(store.load("doomed"), "doomed");
    assert_answer(
        "C7 delete removes everywhere",
        ["kept"],
        ids(&ok(store.list(10, 0), "list")),
    );
    let by_user = TraceFilter::new().with_metadata("user", "u1");
    assert_answer(
        "C7 delete removes everywhere",
        ["kept"],
        ids(&ok(store.query(&by_user), "query")),
    );
    assert!(ok(store.query(&TraceFilter::new().with_min_steps(2)), "query").is_empty());
    assert!(
        ok(
            store.query(&TraceFilter::new().with_status(Status::Error)),
            "query"
        )
        .is_empty()
    );
    assert_answer(
        "C7 delete removes everywhere",
        1,
        ok(store.count(&TraceFilter::new()), "count"),
    );
    let stats = ok(store.stats(&TraceFilter::new()), "stats");
    assert_answer(
        "C7 delete removes everywhere",
        (1, 1, 0),
        (stats.count, stats.steps, stats.error_count),
    );
    assert!(!stats.by_status.contains_key(&Status::Error));
}

/// Deleting what was never there is `Ok(false)`, even for ids no store could hold.
pub fn c7_delete_missing_is_false(store: &dyn TraceStore) {
    assert!(!ok(store.delete("never-saved"), "delete"));
    ok(store.save(&trace("present", 1, 1)), "save");
    assert!(
        !ok(store.delete("Present"), "delete"),
        "run_ids are case-sensitive"
    );
    assert!(!ok(store.delete("present "), "delete"));
    assert!(!ok(store.delete(""), "delete of an empty id"));
    assert!(!ok(
        store.delete(&"x".repeat(10_000)),
        "delete of a huge id"
    ));
    assert_answer(
        "C7 delete missing is false",
        1,
        ok(store.count(&TraceFilter::new()), "count"),
    );
}

/// A deleted run_id can be saved again, and comes back as the new trace.
pub fn c7_save_after_delete(store: &dyn TraceStore) {
    ok(store.save(&trace("r", 1, 1).with_metadata("v", 1)), "save");
    assert!(ok(store.delete("r"), "delete"));
    let again = trace("r", 5, 2).with_metadata("v", 2);
    ok(store.save(&again), "save again");
    assert_answer("C7 save after delete", again, ok(store.load("r"), "load"));
    assert_answer(
        "C7 save after delete",
        ["r"],
        ids(&ok(store.list(10, 0), "list")),
    );
    assert!(
        ok(
            store.query(&TraceFilter::new().with_metadata("v", 1)),
            "query"
        )
        .is_empty()
    );
    assert_answer(
        "C7 save after delete",
        1,
        ok(
            store.query(&TraceFilter::new().with_metadata("v", 2)),
            "query",
        )
        .len(),
    );
}
