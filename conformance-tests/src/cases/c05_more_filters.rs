//! C5, continued: session, parent run and score filters; type and null rules in every
//! view; totals as literal numbers.

use serde_json::{Value, json};
use trace_store_core::{GroupBy, GroupKey, Score, ScoreSource, Status, TraceFilter, TraceStore};

use crate::fixtures::{assert_answer, at, nested, ok, query_ids, trace};

/// `session_id` and `parent_run_id` match exactly: no case folding, no prefixes.
pub fn c5_session_and_parent_exact(store: &dyn TraceStore) {
    let traces = [
        trace("a", 5, 1)
            .with_session_id("chat-1")
            .with_parent_run_id("root"),
        trace("b", 4, 1).with_session_id("chat-1"),
        trace("c", 3, 1)
            .with_session_id("Chat-1")
            .with_parent_run_id("root-2"),
        trace("d", 2, 1)
            .with_session_id("chat-10")
            .with_parent_run_id("root"),
        trace("e", 1, 1),
    ];
    ok(store.save_many(&traces), "save_many");
    for (filter, expected) in [
        (TraceFilter::new().with_session_id("chat-1"), vec!["a", "b"]),
        (TraceFilter::new().with_session_id("Chat-1"), vec!["c"]),
        (TraceFilter::new().with_session_id("chat"), vec![]),
        (TraceFilter::new().with_session_id("chat-%"), vec![]),
        (
            TraceFilter::new().with_parent_run_id("root"),
            vec!["a", "d"],
        ),
        (TraceFilter::new().with_parent_run_id("root-"), vec![]),
        (
            TraceFilter::new()
                .with_session_id("chat-1")
                .with_parent_run_id("root"),
            vec!["a"],
        ),
        (
            TraceFilter::new().with_parent_run_id("root").with_offset(1),
            vec!["d"],
        ),
    ] {
        assert_answer(
            &format!("C5 session_id and parent_run_id exact, query {filter:?}"),
            expected,
            query_ids(store, &filter),
        );
    }
}

/// Score ranges are inclusive, either bound may be open, a trace without a value for
/// the score never matches, and step-level scores never match.
pub fn c5_score_ranges(store: &dyn TraceStore) {
    let scored = |run_id: &str, micros, score: Score| {
        trace(run_id, micros, 1).with_score(score.with_created_at(at(0)))
    };
    let traces = [
        scored("half", 7, Score::new("q").with_value(0.5)),
        scored("one", 6, Score::new("q").with_value(1.0)),
        scored("zero", 5, Score::new("q").with_value(0.0)),
        scored("negative", 4, Score::new("q").with_value(-2.5)),
        scored(
            "step",
            3,
            Score::new("q").with_value(0.7).with_step_id("s0"),
        ),
        scored("label", 2, Score::new("q").with_label("good")),
        scored("other", 1, Score::new("other").with_value(0.5)),
        trace("none", 0, 1),
        scored(
            "llm",
            8,
            Score::new("q")
                .with_source(ScoreSource::Llm)
                .with_value(0.25),
        ),
    ];
    ok(store.save_many(&traces), "save_many");
    for (min, max, expected) in [
        (Some(0.5), Some(1.0), vec!["half", "one"]),
        (Some(0.0), Some(0.5), vec!["llm", "half", "zero"]),
        (None, Some(0.0), vec!["zero", "negative"]),
        (Some(1.0), None, vec!["one"]),
        (None, None, vec!["llm", "half", "one", "zero", "negative"]),
        (Some(0.7), Some(0.7), vec![]),
        (Some(0.5), Some(0.5), vec!["half"]),
        (Some(-2.5), Some(-2.5), vec!["negative"]),
        (Some(1.0000001), None, vec![]),
    ] {
        let filter = TraceFilter::new().with_score("q", min, max);
        assert_answer(
            &format!(
                "C5 score q in [{min:?}, {max:?}] (inclusive; no value or a step score never matches)"
            ),
            expected,
            query_ids(store, &filter),
        );
    }
    assert_answer(
        "C5 score names are exact",
        Vec::<String>::new(),
        query_ids(store, &TraceFilter::new().with_score("Q", None, None)),
    );
    assert_answer(
        "C5 score AND other criteria, paged",
        vec!["half".to_owned()],
        query_ids(
            store,
            &TraceFilter::new()
                .with_score("q", Some(0.0), None)
                .with_since(at(5))
                .with_offset(1)
                .with_limit(1),
        ),
    );
}

/// `"1"` never equals `1`, nor `true` `1`, in count, stats, grouped stats and
/// `delete_where`, not only in `query`.
pub fn c5_string_one_is_not_number_one_in_every_view(store: &dyn TraceStore) {
    let traces = [
        trace("str", 4, 1).with_metadata("v", "1"),
        trace("num", 3, 2).with_metadata("v", 1),
        trace("float", 2, 3).with_metadata("v", 1.0),
        trace("bool", 1, 4).with_metadata("v", true),
    ];
    ok(store.save_many(&traces), "save_many");
    let number = TraceFilter::new().with_metadata("v", 1);
    let stats = ok(store.stats(&number), "stats");
    assert_answer(
        "C5 \"1\" != 1 != true in stats (count, steps)",
        (2, 5),
        (stats.count, stats.steps),
    );
    let string = TraceFilter::new().with_metadata("v", "1");
    let groups = ok(store.stats_by(&string, GroupBy::Status), "stats_by");
    let counts: Vec<u64> = groups.iter().map(|(_, s)| s.count).collect();
    assert_answer("C5 \"1\" != 1 in grouped stats", vec![1], counts);
    let truth = TraceFilter::new().with_metadata("v", true);
    assert_answer(
        "C5 true != 1 in delete_where",
        1,
        ok(store.delete_where(&truth), "delete_where"),
    );
    assert_answer(
        "C5 \"1\" != 1 in delete_where",
        1,
        ok(store.delete_where(&string), "delete_where"),
    );
    assert_answer(
        "C5 what is left after deleting \"1\" and true",
        vec!["num", "float"],
        query_ids(store, &TraceFilter::new()),
    );
    assert_answer(
        "C5 1 matches 1.0 after the deletes",
        vec!["num", "float"],
        query_ids(store, &number.clone().with_metadata("v", 1.0)),
    );
}

/// `null` matches only an explicit `null` in count, stats, grouped stats and
/// `delete_where`; grouping by a key leaves out traces without it but keeps `null`.
pub fn c5_null_is_not_missing_in_every_view(store: &dyn TraceStore) {
    let traces = [
        trace("null", 4, 1).with_metadata("k", Value::Null),
        trace("missing", 3, 2).with_metadata("other", Value::Null),
        trace("empty", 2, 3).with_metadata("k", ""),
        trace("zero", 1, 4).with_metadata("k", 0),
    ];
    ok(store.save_many(&traces), "save_many");
    let null = TraceFilter::new().with_metadata("k", Value::Null);
    let stats = ok(store.stats(&null), "stats");
    assert_answer(
        "C5 null vs missing in stats (count, steps)",
        (1, 1),
        (stats.count, stats.steps),
    );
    let groups = ok(
        store.stats_by(&TraceFilter::new(), GroupBy::Metadata("k".into())),
        "stats_by",
    );
    let got: Vec<(Value, u64)> = groups
        .iter()
        .map(|(key, s)| match key {
            GroupKey::Metadata(text) => (
                serde_json::from_str(text).unwrap_or(json!("not JSON")),
                s.count,
            ),
            other => (json!(other.to_string()), s.count),
        })
        .collect();
    assert!(
        got.len() == 3
            && got.contains(&(Value::Null, 1))
            && got.contains(&(json!(""), 1))
            && got.contains(&(json!(0), 1)),
        "C5 null vs missing in grouped stats: expected groups null, \"\" and 0 of one trace each (none for the trace without k), store returned {got:?}"
    );
    assert_answer(
        "C5 null vs missing in delete_where",
        1,
        ok(store.delete_where(&null), "delete_where"),
    );
    assert_answer(
        "C5 the trace without the key survives delete_where of null",
        vec!["missing", "empty", "zero"],
        query_ids(store, &TraceFilter::new()),
    );
    assert_answer(
        "C5 null never matches a missing key, in count",
        0,
        ok(
            store.count(&TraceFilter::new().with_metadata("absent", Value::Null)),
            "count",
        ),
    );
}

/// Summaries and stats of fixtures with known totals, as literal numbers: nesting,
/// aggregate spans, failures, per-model usage.
pub fn c5_totals_are_exact(store: &dyn TraceStore) {
    ok(
        store.save_many(&[nested("n1", 2), nested("n2", 1), trace("flat", 0, 3)]),
        "save_many",
    );
    let listed = ok(store.list(10, 0), "list");
    let n1 = listed.iter().find(|s| s.run_id == "n1");
    let got = n1.map(|s| {
        (
            s.steps,
            s.total_ms,
            s.input_tokens,
            s.output_tokens,
            s.cost_nano_usd,
            s.error_count,
            s.failed_steps,
        )
    });
    assert_answer(
        "C5 summary of the nested fixture (steps, total_ms, in, out, cost, error_count, failed_steps)",
        Some((4, 6.5, 100, 10, 700, 3, 1)),
        got,
    );
    let flat = listed.iter().find(|s| s.run_id == "flat");
    assert_answer(
        "C5 summary of trace(3 steps) (steps, total_ms, in, out, cost, errors)",
        Some((3, 3.0, 33, 15, 3_003, 0, 0)),
        flat.map(|s| {
            (
                s.steps,
                s.total_ms,
                s.input_tokens,
                s.output_tokens,
                s.cost_nano_usd,
                s.error_count,
                s.failed_steps,
            )
        }),
    );
    let stats = ok(store.stats(&TraceFilter::new()), "stats");
    assert_answer(
        "C5 stats over all (count, steps, in, out, cost, total_ms, error_count, failed_steps)",
        (3, 11, 233, 35, 4_403, 16.0, 6, 2),
        (
            stats.count,
            stats.steps,
            stats.input_tokens,
            stats.output_tokens,
            stats.cost_nano_usd,
            stats.total_ms,
            stats.error_count,
            stats.failed_steps,
        ),
    );
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
    assert_answer(
        "C5 stats by_model (model, calls, in, out, cost)",
        vec![
            ("gpt-4o-mini", 3, 33, 15, 3_003),
            ("model-a", 2, 120, 12, 800),
            ("model-b", 2, 80, 8, 600),
        ],
        models,
    );
    let by_status: Vec<_> = stats.by_status.iter().map(|(s, n)| (*s, *n)).collect();
    assert_answer(
        "C5 stats by_status",
        vec![(Status::Unset, 1), (Status::Error, 2)],
        by_status,
    );
}
