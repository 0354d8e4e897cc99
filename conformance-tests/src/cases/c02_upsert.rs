//! C2: saving an existing run_id replaces it.

use serde_json::json;
use trace_store_core::{Status, TraceFilter, TraceStore};

use crate::fixtures::{at, ids, ok, trace, with_meta};

/// The newest save wins, and the run_id is listed once.
pub fn c2_upsert_replaces(store: &dyn TraceStore) {
    let v1 = trace("r", 10, 1).with_name("first");
    let v2 = trace("r", 10, 3)
        .with_name("second")
        .with_status(Status::Ok);
    ok(store.save(&v1), "save v1");
    ok(store.save(&v2), "save v2");
    assert_eq!(ok(store.load("r"), "load"), v2);
    let listed = ok(store.list(10, 0), "list");
    assert_eq!(ids(&listed), ["r"], "an upserted run_id is listed once");
    assert_eq!(listed[0].steps, 3);
    assert_eq!(listed[0].name.as_deref(), Some("second"));
    assert_eq!(ok(store.count(&TraceFilter::new()), "count"), 1);
    assert_eq!(ok(store.stats(&TraceFilter::new()), "stats").count, 1);
}

/// An upsert that changes `created_at` moves the trace in list order and in time filters.
pub fn c2_upsert_moves_created_at(store: &dyn TraceStore) {
    ok(store.save(&trace("a", 1, 1)), "save a");
    ok(store.save(&trace("b", 2, 1)), "save b");
    assert_eq!(ids(&ok(store.list(10, 0), "list")), ["b", "a"]);
    ok(store.save(&trace("a", 3, 1)), "re-save a later");
    assert_eq!(ids(&ok(store.list(10, 0), "list")), ["a", "b"]);
    assert_eq!(
        ok(store.load("a"), "load").created_at,
        at(3),
        "created_at is kept as given"
    );
    ok(store.save(&trace("a", 0, 1)), "re-save a earlier");
    assert_eq!(ids(&ok(store.list(10, 0), "list")), ["b", "a"]);
    let since_2 = TraceFilter::new().with_since(at(2));
    assert_eq!(ids(&ok(store.query(&since_2), "query")), ["b"]);
    let until_1 = TraceFilter::new().with_until(at(1));
    assert_eq!(ids(&ok(store.query(&until_1), "query")), ["a"]);
}

/// An upsert replaces every index entry: metadata, steps, status, name.
pub fn c2_upsert_replaces_index_entries(store: &dyn TraceStore) {
    ok(
        store.save(&with_meta("r", 1, "user", json!("u1")).with_name("old")),
        "save v1",
    );
    let mut v2 = with_meta("r", 1, "user", json!("u2")).with_status(Status::Error);
    v2.steps.clear();
    ok(store.save(&v2), "save v2");
    let query = |filter: TraceFilter| ids(&ok(store.query(&filter), "query")).len();
    assert_eq!(
        query(TraceFilter::new().with_metadata("user", "u1")),
        0,
        "old metadata is gone"
    );
    assert_eq!(query(TraceFilter::new().with_metadata("user", "u2")), 1);
    assert_eq!(
        query(TraceFilter::new().with_min_steps(1)),
        0,
        "old step count is gone"
    );
    assert_eq!(query(TraceFilter::new().with_max_steps(0)), 1);
    assert_eq!(
        query(TraceFilter::new().with_name("old")),
        0,
        "old name is gone"
    );
    assert_eq!(query(TraceFilter::new().with_status(Status::Error)), 1);
    assert_eq!(
        ok(
            store.count(&TraceFilter::new().with_metadata("user", "u1")),
            "count"
        ),
        0
    );
}

/// Within one `save_many`, a later trace wins over an earlier one with the same run_id.
pub fn c2_upsert_within_save_many(store: &dyn TraceStore) {
    let batch = [
        trace("x", 1, 1).with_name("first"),
        trace("y", 2, 1),
        trace("x", 3, 2).with_name("last"),
    ];
    let saved = ok(store.save_many(&batch), "save_many");
    assert_eq!(
        saved,
        ["x", "y", "x"],
        "save_many returns one run_id per input trace"
    );
    assert_eq!(ok(store.load("x"), "load"), batch[2]);
    assert_eq!(ids(&ok(store.list(10, 0), "list")), ["x", "y"]);
}
