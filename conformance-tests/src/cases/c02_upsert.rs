//! C2: saving an existing run_id replaces it.

use serde_json::json;
use trace_store_core::{Status, TraceFilter, TraceStore};

use crate::fixtures::{assert_answer, at, ids, ok, trace, with_meta};

/// The newest save wins, and the run_id is listed once.
pub fn c2_upsert_replaces(store: &dyn TraceStore) {
    let v1 = trace("r", 10, 1).with_name("first");
    let v2 = trace("r", 10, 3)
        .with_name("second")
        .with_status(Status::Ok);
    ok(store.save(&v1), "save v1");
    ok(store.save(&v2), "save v2");
    assert_answer("C2 upsert replaces", v2, ok(store.load("r"), "load"));
    let listed = ok(store.list(10, 0), "list");
    assert_answer(
        "C2 upsert replaces: an upserted run_id is listed once",
        ["r"],
        ids(&listed),
    );
    assert_answer("C2 upsert replaces", 3, listed[0].steps);
    assert_answer(
        "C2 upsert replaces",
        Some("second"),
        listed[0].name.as_deref(),
    );
    assert_answer(
        "C2 upsert replaces",
        1,
        ok(store.count(&TraceFilter::new()), "count"),
    );
    assert_answer(
        "C2 upsert replaces",
        1,
        ok(store.stats(&TraceFilter::new()), "stats").count,
    );
}

/// An upsert that changes `created_at` moves the trace in list order and in time filters.
pub fn c2_upsert_moves_created_at(store: &dyn TraceStore) {
    ok(store.save(&trace("a", 1, 1)), "save a");
    ok(store.save(&trace("b", 2, 1)), "save b");
    assert_answer(
        "C2 upsert moves created at",
        ["b", "a"],
        ids(&ok(store.list(10, 0), "list")),
    );
    ok(store.save(&trace("a", 3, 1)), "re-save a later");
    assert_answer(
        "C2 upsert moves created at",
        ["a", "b"],
        ids(&ok(store.list(10, 0), "list")),
    );
    assert_answer(
        "C2 upsert moves created at: created_at is kept as given",
        at(3),
        ok(store.load("a"), "load").created_at,
    );
    ok(store.save(&trace("a", 0, 1)), "re-save a earlier");
    assert_answer(
        "C2 upsert moves created at",
        ["b", "a"],
        ids(&ok(store.list(10, 0), "list")),
    );
    let since_2 = TraceFilter::new().with_since(at(2));
    assert_answer(
        "C2 upsert moves created at",
        ["b"],
        ids(&ok(store.query(&since_2), "query")),
    );
    let until_1 = TraceFilter::new().with_until(at(1));
    assert_answer(
        "C2 upsert moves created at",
        ["a"],
        ids(&ok(store.query(&until_1), "query")),
    );
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
    assert_answer(
        "C2 upsert replaces index entries: old metadata is gone",
        0,
        query(TraceFilter::new().with_metadata("user", "u1")),
    );
    assert_answer(
        "C2 upsert replaces index entries",
        1,
        query(TraceFilter::new().with_metadata("user", "u2")),
    );
    assert_answer(
        "C2 upsert replaces index entries: old step count is gone",
        0,
        query(TraceFilter::new().with_min_steps(1)),
    );
    assert_answer(
        "C2 upsert replaces index entries",
        1,
        query(TraceFilter::new().with_max_steps(0)),
    );
    assert_answer(
        "C2 upsert replaces index entries: old name is gone",
        0,
        query(TraceFilter::new().with_name("old")),
    );
    assert_answer(
        "C2 upsert replaces index entries",
        1,
        query(TraceFilter::new().with_status(Status::Error)),
    );
    assert_answer(
        "C2 upsert replaces index entries",
        0,
        ok(
            store.count(&TraceFilter::new().with_metadata("user", "u1")),
            "count",
        ),
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
    assert_answer(
        "C2 upsert within save many: save_many returns one run_id per input trace",
        ["x", "y", "x"],
        saved,
    );
    assert_answer(
        "C2 upsert within save many",
        &batch[2],
        &ok(store.load("x"), "load"),
    );
    assert_answer(
        "C2 upsert within save many",
        ["x", "y"],
        ids(&ok(store.list(10, 0), "list")),
    );
}

/// Save, re-save with one more step of another model: `stats` and its `by_model` count
/// the new version only (literal numbers).
pub fn c2_resave_updates_stats_by_model(store: &dyn TraceStore) {
    let first = crate::fixtures::trace("r", 1, 2);
    ok(store.save(&first), "save");
    let mut second = first.clone();
    second.steps.push(
        trace_store_core::Step::llm_call("other-model")
            .with_usage(100, 50)
            .with_cost_nano_usd(9_000),
    );
    ok(store.save(&second), "re-save with one more step");
    let stats = ok(store.stats(&TraceFilter::new()), "stats");
    let models: Vec<_> = stats
        .by_model
        .iter()
        .map(|(m, u)| {
            (
                m.as_str(),
                u.calls,
                u.input_tokens,
                u.output_tokens,
                u.cost_nano_usd,
            )
        })
        .collect();
    crate::fixtures::assert_answer(
        "C2 stats after a re-save (count, steps, in, out, cost)",
        (1, 3, 121, 60, 11_001),
        (
            stats.count,
            stats.steps,
            stats.input_tokens,
            stats.output_tokens,
            stats.cost_nano_usd,
        ),
    );
    crate::fixtures::assert_answer(
        "C2 stats.by_model after a re-save (model, calls, in, out, cost)",
        vec![
            ("gpt-4o-mini", 2, 21, 10, 2_001),
            ("other-model", 1, 100, 50, 9_000),
        ],
        models,
    );
    ok(store.save(&first), "re-save the first version");
    let stats = ok(store.stats(&TraceFilter::new()), "stats");
    let models: Vec<_> = stats.by_model.keys().map(String::as_str).collect();
    crate::fixtures::assert_answer(
        "C2 stats.by_model after re-saving fewer steps drops the model",
        vec!["gpt-4o-mini"],
        models,
    );
}
