//! C1: `load(save(t)?)? == t`, exactly, for any valid trace.

use serde_json::{Value, json};
use trace_store_core::{
    MAX_JSON_DEPTH, Step, StepKind, Timestamp, Trace, TraceFilter, TraceStore, TraceSummary,
};

use crate::fixtures::{assert_answer, assert_invalid, at, everything, ids, odd_run_ids, ok, trace};

fn assert_round_trip(store: &dyn TraceStore, trace: &Trace) {
    let returned = ok(store.save(trace), "save");
    assert_eq!(returned, trace.run_id, "save returns the run_id");
    let loaded = ok(store.load(&trace.run_id), "load");
    assert!(
        loaded == *trace,
        "load({:?}) differs from what was saved",
        trace.run_id
    );
}

/// The smallest valid trace comes back unchanged, and its summary is the one core derives.
pub fn c1_round_trip_minimal(store: &dyn TraceStore) {
    let t = Trace::new("minimal").with_created_at(at(0));
    assert_round_trip(store, &t);
    let listed = ok(store.list(10, 0), "list");
    assert_answer(
        "C1 round trip minimal",
        vec![TraceSummary::from(&t)],
        listed,
    );
}

/// Every field, every JSON type, every step kind (including `Other`), nested steps.
pub fn c1_round_trip_every_field(store: &dyn TraceStore) {
    let t = everything("everything");
    assert_round_trip(store, &t);
    let listed = ok(store.query(&TraceFilter::new()), "query");
    assert_answer(
        "C1 round trip every field: stored summary differs from core's",
        vec![TraceSummary::from(&t)],
        listed,
    );
}

/// Non-ASCII everywhere: names, metadata keys and values, step payloads.
pub fn c1_round_trip_unicode(store: &dyn TraceStore) {
    let t = Trace::new("ünïcödé-🦀")
        .with_created_at(at(5))
        .with_name("エージェント")
        .with_metadata("ключ", "значение")
        .with_metadata("emoji 🔑", json!(["👩‍👩‍👧", "\u{202e}rtl"]))
        .with_step(
            Step::llm_call("模型")
                .with_input("Ωmega \u{0301}combining \u{fffd}")
                .with_output(json!({"مرحبا": "سلام"})),
        );
    assert_round_trip(store, &t);
}

/// A step carrying a 5 MB payload round trips.
pub fn c1_round_trip_large_payload(store: &dyn TraceStore) {
    let chunk = "0123456789abcdef\u{e9}\"\\\n".repeat(5 * 1024 * 1024 / 21);
    let t = Trace::new("large")
        .with_created_at(at(1))
        .with_step(Step::tool_call("dump").with_output(chunk));
    assert_round_trip(store, &t);
    let listed = ok(store.list(5, 0), "list");
    assert_answer("C1 round trip large payload", 1, listed.len());
    assert_answer("C1 round trip large payload", 1, listed[0].steps);
}

/// Every legal run_id works for save, load, list, query and delete.
pub fn c1_odd_run_ids(store: &dyn TraceStore) {
    let odd = odd_run_ids();
    for (i, run_id) in odd.iter().enumerate() {
        let t = trace(run_id, i as i64, 1).with_metadata("id", run_id.as_str());
        assert_round_trip(store, &t);
    }
    let listed = ok(store.list(1000, 0), "list");
    let mut expected: Vec<&str> = odd.iter().rev().map(String::as_str).collect();
    assert_answer(
        "C1 odd run ids: every odd run_id is listed once, newest first",
        &expected,
        &ids(&listed),
    );
    for run_id in &odd {
        let hits = ok(
            store.query(&TraceFilter::new().with_metadata("id", run_id.as_str())),
            "query",
        );
        assert_answer(
            &format!("C1 odd run ids: metadata query for {run_id:?}"),
            [run_id.as_str()],
            ids(&hits),
        );
    }
    for run_id in odd.iter().step_by(2) {
        assert!(
            ok(store.delete(run_id), "delete"),
            "delete({run_id:?}) finds it"
        );
    }
    expected.retain(|id| !odd.iter().step_by(2).any(|gone| gone == id));
    assert_answer(
        "C1 odd run ids",
        expected,
        ids(&ok(store.list(1000, 0), "list")),
    );
}

/// The earliest and latest timestamps, and instants before 1970, keep their value and order.
pub fn c1_timestamp_extremes(store: &dyn TraceStore) {
    let instants = [
        Timestamp::MIN,
        Timestamp::from_micros(-1).unwrap_or(Timestamp::MIN),
        Timestamp::UNIX_EPOCH,
        at(0),
        at(1),
        Timestamp::MAX.saturating_add_micros(-1),
        Timestamp::MAX,
    ];
    for (i, created_at) in instants.iter().enumerate() {
        let t = Trace::new(format!("t{i}"))
            .with_created_at(*created_at)
            .with_ended_at(*created_at)
            .with_step(Step::new(StepKind::Chain).with_started_at(*created_at));
        assert_round_trip(store, &t);
    }
    let listed = ok(store.list(100, 0), "list");
    assert_answer(
        "C1 timestamp extremes",
        ["t6", "t5", "t4", "t3", "t2", "t1", "t0"],
        ids(&listed),
    );
    let between = TraceFilter::new()
        .with_since(at(1))
        .with_until(Timestamp::MAX.saturating_add_micros(-1));
    assert_answer(
        "C1 timestamp extremes",
        ["t5", "t4"],
        ids(&ok(store.query(&between), "query")),
    );
}

/// A JSON value `depth` arrays and objects deep.
fn nested(depth: usize) -> Value {
    (0..depth).fold(json!("leaf"), |inner, i| {
        if i % 2 == 0 {
            json!([inner, i])
        } else {
            json!({ "k": inner })
        }
    })
}

/// Values nested [`MAX_JSON_DEPTH`] deep round trip wherever a trace holds JSON; one
/// level deeper is `InvalidInput` on save, never a trace that is stored but cannot be
/// read back.
pub fn c1_deeply_nested_json(store: &dyn TraceStore) {
    let deepest = nested(MAX_JSON_DEPTH);
    let t = Trace::new("deep")
        .with_created_at(at(1))
        .with_metadata("deep", deepest.clone())
        .with_step(
            Step::llm_call("m")
                .with_input(deepest.clone())
                .with_output(deepest.clone())
                .with_attribute("deep", deepest.clone()),
        );
    assert_round_trip(store, &t);
    let hits = ok(
        store.query(&TraceFilter::new().with_metadata("deep", deepest)),
        "query by a deeply nested value",
    );
    assert_answer("C1 deeply nested json", ["deep"], ids(&hits));

    let too_deep = nested(MAX_JSON_DEPTH + 1);
    let rejected = [
        trace("too-deep", 2, 1).with_metadata("deep", too_deep.clone()),
        trace("too-deep", 2, 0).with_step(Step::llm_call("m").with_output(too_deep.clone())),
        trace("too-deep", 2, 0).with_step(Step::llm_call("m").with_attribute("a", too_deep)),
    ];
    for t in &rejected {
        assert_invalid(store.save(t), "save of JSON nested too deep");
        assert_invalid(store.save_many(std::slice::from_ref(t)), "save_many of it");
    }
    assert_answer(
        "C1 deeply nested json: nothing else written",
        ["deep"],
        ids(&ok(store.list(10, 0), "list")),
    );
}
