//! C5: criteria are AND-ed; metadata equality is canonical JSON equality.

use serde_json::{Value, json};
use trace_store_core::{Status, TraceFilter, TraceStats, TraceStore, TraceSummary};

use crate::fixtures::{assert_answer, at, ids, ok, trace, with_meta};

fn hits(store: &dyn TraceStore, key: &str, value: Value) -> Vec<String> {
    let filter = TraceFilter::new().with_metadata(key, value);
    let found = ok(store.query(&filter), "metadata query");
    let count = ok(store.count(&filter), "metadata count");
    assert_eq!(
        count,
        found.len() as u64,
        "count disagrees with query for {key:?}"
    );
    found.into_iter().map(|s| s.run_id).collect()
}

/// Numbers compare by value: `1 == 1.0`, whichever side is stored.
pub fn c5_metadata_numbers_by_value(store: &dyn TraceStore) {
    ok(store.save(&with_meta("int", 1, "n", json!(1))), "save");
    ok(store.save(&with_meta("float", 2, "n", json!(1.0))), "save");
    ok(store.save(&with_meta("other", 3, "n", json!(1.5))), "save");
    ok(
        store.save(&with_meta("big", 4, "n", json!(u64::MAX))),
        "save",
    );
    assert_answer(
        "C5 metadata numbers by value",
        ["float", "int"],
        hits(store, "n", json!(1)),
    );
    assert_answer(
        "C5 metadata numbers by value",
        ["float", "int"],
        hits(store, "n", json!(1.0)),
    );
    assert_answer(
        "C5 metadata numbers by value",
        ["other"],
        hits(store, "n", json!(1.5)),
    );
    assert_answer(
        "C5 metadata numbers by value",
        ["big"],
        hits(store, "n", json!(u64::MAX)),
    );
    assert!(hits(store, "n", json!(2)).is_empty());
}

/// Number equality at the edges of integer and float representations: `-0.0 == 0`,
/// 2^53 vs 2^53 + 1, 2^63 as a float vs as an integer, `i64::MIN`, `u64::MAX`, 1e300.
pub fn c5_metadata_number_edges(store: &dyn TraceStore) {
    let two_63 = 9_223_372_036_854_775_808.0_f64;
    let stored = [
        ("zero", json!(0)),
        ("two53", json!(9_007_199_254_740_992_u64)),
        ("two53+1", json!(9_007_199_254_740_993_u64)),
        ("two63", json!(9_223_372_036_854_775_808_u64)),
        ("i64min", json!(i64::MIN)),
        ("u64max", json!(u64::MAX)),
        ("huge", json!(1e300)),
        ("tiny", json!(5e-324)),
    ];
    for (i, (run_id, value)) in stored.iter().enumerate() {
        ok(
            store.save(&with_meta(run_id, i as i64, "n", value.clone())),
            "save",
        );
    }
    let cases = [
        (json!(-0.0), "zero"),
        (json!(0.0), "zero"),
        (json!(9_007_199_254_740_992.0), "two53"),
        (json!(9_007_199_254_740_993_u64), "two53+1"),
        (json!(two_63), "two63"),
        (json!(-two_63), "i64min"),
        (json!(u64::MAX), "u64max"),
        (json!(1e300), "huge"),
        (json!(5e-324), "tiny"),
    ];
    for (filter, run_id) in cases {
        assert_answer(
            &format!("C5 metadata number edges: filter {filter}"),
            [run_id],
            hits(store, "n", filter.clone()),
        );
    }
    // 2^64 is one more than u64::MAX: a different number.
    assert!(hits(store, "n", json!(18_446_744_073_709_551_616.0)).is_empty());
    assert!(hits(store, "n", json!(1e299)).is_empty());
}

/// A string never equals a number, nor a boolean a number.
pub fn c5_metadata_types_differ(store: &dyn TraceStore) {
    ok(store.save(&with_meta("str", 1, "v", json!("1"))), "save");
    ok(store.save(&with_meta("num", 2, "v", json!(1))), "save");
    ok(store.save(&with_meta("bool", 3, "v", json!(true))), "save");
    ok(
        store.save(&with_meta("strtrue", 4, "v", json!("true"))),
        "save",
    );
    assert_answer(
        "C5 metadata types differ",
        ["str"],
        hits(store, "v", json!("1")),
    );
    assert_answer(
        "C5 metadata types differ",
        ["num"],
        hits(store, "v", json!(1)),
    );
    assert_answer(
        "C5 metadata types differ",
        ["bool"],
        hits(store, "v", json!(true)),
    );
    assert_answer(
        "C5 metadata types differ",
        ["strtrue"],
        hits(store, "v", json!("true")),
    );
    assert!(hits(store, "v", json!(false)).is_empty());
}

/// `null` matches only an explicit `null`, never a missing key.
pub fn c5_metadata_null_is_not_missing(store: &dyn TraceStore) {
    ok(store.save(&with_meta("null", 1, "k", Value::Null)), "save");
    ok(
        store.save(&with_meta("missing", 2, "other", json!(1))),
        "save",
    );
    ok(store.save(&with_meta("empty", 3, "k", json!(""))), "save");
    ok(store.save(&with_meta("zero", 4, "k", json!(0))), "save");
    assert_answer(
        "C5 metadata null is not missing",
        ["null"],
        hits(store, "k", Value::Null),
    );
    assert!(hits(store, "absent", Value::Null).is_empty());
}

/// Objects compare by content whatever their key order; arrays by content and order.
pub fn c5_metadata_objects_and_arrays(store: &dyn TraceStore) {
    ok(
        store.save(&with_meta(
            "obj",
            1,
            "o",
            json!({"a": 1, "b": [1, 2], "c": {"y": null, "x": 1.0}}),
        )),
        "save",
    );
    ok(
        store.save(&with_meta("arr", 2, "o", json!([1, 2, 3]))),
        "save",
    );
    assert_answer(
        "C5 metadata objects and arrays",
        ["obj"],
        hits(
            store,
            "o",
            json!({"c": {"x": 1, "y": null}, "b": [1, 2], "a": 1.0}),
        ),
    );
    assert!(
        hits(
            store,
            "o",
            json!({"a": 1, "b": [2, 1], "c": {"y": null, "x": 1}})
        )
        .is_empty()
    );
    assert!(
        hits(store, "o", json!({"a": 1})).is_empty(),
        "a sub-object is not a match"
    );
    assert_answer(
        "C5 metadata objects and arrays",
        ["arr"],
        hits(store, "o", json!([1.0, 2, 3])),
    );
    assert!(hits(store, "o", json!([3, 2, 1])).is_empty());
    assert!(hits(store, "o", json!([1, 2])).is_empty());
}

/// Keys match at the top level only, by exact name; odd key characters are plain text.
pub fn c5_metadata_keys_are_exact(store: &dyn TraceStore) {
    let odd_keys = [
        "a.b", "a:b", "*", "%", "_", "{k}", "'", "\"", "ключ", "", " ",
    ];
    for (i, key) in odd_keys.iter().enumerate() {
        ok(
            store.save(&with_meta(&format!("r{i}"), i as i64, key, json!("v"))),
            "save",
        );
    }
    ok(
        store.save(&with_meta("nested", 99, "a", json!({"b": "v"}))),
        "save",
    );
    ok(
        store.save(&with_meta("prefix", 98, "a.bc", json!("v"))),
        "save",
    );
    ok(
        store.save(&with_meta("case", 97, "A.B", json!("v"))),
        "save",
    );
    for (i, key) in odd_keys.iter().enumerate() {
        assert_answer(
            &format!("C5 metadata keys are exact: key {key:?}"),
            [format!("r{i}")],
            hits(store, key, json!("v")),
        );
    }
    assert!(
        hits(store, "a%", json!("v")).is_empty(),
        "% is not a wildcard"
    );
    assert!(
        hits(store, "a_b", json!("v")).is_empty(),
        "_ is not a wildcard"
    );
    assert!(hits(store, "v", json!("v")).is_empty());
    assert!(hits(store, "a", json!("v")).is_empty());
}

/// Several metadata keys are AND-ed, and a value of one key never matches another key.
pub fn c5_metadata_keys_anded(store: &dyn TraceStore) {
    let both = trace("both", 1, 1)
        .with_metadata("user", "u1")
        .with_metadata("env", "prod");
    let user = trace("user", 2, 1)
        .with_metadata("user", "u1")
        .with_metadata("env", "dev");
    let swapped = trace("swapped", 3, 1)
        .with_metadata("user", "prod")
        .with_metadata("env", "u1");
    ok(store.save_many(&[both, user, swapped]), "save_many");
    let filter = TraceFilter::new()
        .with_metadata("user", "u1")
        .with_metadata("env", "prod");
    assert_answer(
        "C5 metadata keys anded",
        ["both"],
        ids(&ok(store.query(&filter), "query")),
    );
    assert_answer(
        "C5 metadata keys anded",
        ["user", "both"],
        ids(&ok(
            store.query(&TraceFilter::new().with_metadata("user", "u1")),
            "query",
        )),
    );
}

/// `since`, `until`, `min_steps` and `max_steps` are inclusive.
pub fn c5_ranges_are_inclusive(store: &dyn TraceStore) {
    for i in 0..10 {
        ok(
            store.save(&trace(&format!("r{i}"), i * 100, i as usize)),
            "save",
        );
    }
    let q = |filter: TraceFilter| ids(&ok(store.query(&filter), "query")).join(",");
    assert_answer(
        "C5 ranges are inclusive",
        "r5,r4,r3",
        q(TraceFilter::new().with_since(at(300)).with_until(at(500))),
    );
    assert_answer(
        "C5 ranges are inclusive",
        "r4",
        q(TraceFilter::new().with_since(at(301)).with_until(at(499))),
    );
    assert_answer(
        "C5 ranges are inclusive",
        "r9",
        q(TraceFilter::new().with_since(at(900))),
    );
    assert_answer(
        "C5 ranges are inclusive",
        "r0",
        q(TraceFilter::new().with_until(at(0))),
    );
    assert_answer(
        "C5 ranges are inclusive",
        "r5",
        q(TraceFilter::new().with_since(at(500)).with_until(at(500))),
    );
    assert_answer(
        "C5 ranges are inclusive",
        "r9,r8,r7",
        q(TraceFilter::new().with_min_steps(7)),
    );
    assert_answer(
        "C5 ranges are inclusive",
        "r1,r0",
        q(TraceFilter::new().with_max_steps(1)),
    );
    assert_answer(
        "C5 ranges are inclusive",
        "r4",
        q(TraceFilter::new().with_min_steps(4).with_max_steps(4)),
    );
    assert_answer(
        "C5 ranges are inclusive",
        "",
        q(TraceFilter::new().with_min_steps(11)),
    );
}

/// `status` and `name` match exactly: no case folding, no prefixes, no wildcards.
pub fn c5_status_and_name_exact(store: &dyn TraceStore) {
    let named = |run_id: &str, micros, name: &str, status| {
        trace(run_id, micros, 1).with_name(name).with_status(status)
    };
    ok(store.save(&named("a", 1, "bot", Status::Ok)), "save");
    ok(store.save(&named("b", 2, "Bot", Status::Error)), "save");
    ok(store.save(&named("c", 3, "bot-2", Status::Running)), "save");
    ok(store.save(&named("d", 4, "b%", Status::Ok)), "save");
    ok(store.save(&trace("e", 5, 1)), "save");
    let q = |filter: TraceFilter| ids(&ok(store.query(&filter), "query")).join(",");
    assert_answer(
        "C5 status and name exact",
        "a",
        q(TraceFilter::new().with_name("bot")),
    );
    assert_answer(
        "C5 status and name exact",
        "d",
        q(TraceFilter::new().with_name("b%")),
    );
    assert_answer(
        "C5 status and name exact",
        "",
        q(TraceFilter::new().with_name("b_t")),
    );
    assert_answer(
        "C5 status and name exact",
        "d,a",
        q(TraceFilter::new().with_status(Status::Ok)),
    );
    assert_answer(
        "C5 status and name exact",
        "e",
        q(TraceFilter::new().with_status(Status::Unset)),
    );
    assert_answer(
        "C5 status and name exact",
        "a",
        q(TraceFilter::new().with_status(Status::Ok).with_name("bot")),
    );
}

/// Every criterion at once, AND-ed, then paged.
pub fn c5_all_criteria_together(store: &dyn TraceStore) {
    for i in 0..60i64 {
        let status = if i % 3 == 0 {
            Status::Error
        } else {
            Status::Ok
        };
        let t = trace(&format!("r{i:02}"), i, (i % 6) as usize)
            .with_name(if i % 2 == 0 { "even" } else { "odd" })
            .with_status(status)
            .with_metadata("user", format!("u{}", i % 4))
            .with_metadata("tier", i % 5);
        ok(store.save(&t), "save");
    }
    let filter = TraceFilter::new()
        .with_metadata("user", "u2")
        .with_since(at(5))
        .with_until(at(55))
        .with_min_steps(1)
        .with_max_steps(4)
        .with_name("even")
        .with_status(Status::Ok);
    let all = ok(store.list(100, 0), "list");
    let expected: Vec<&str> = all
        .iter()
        .filter(|s| filter.matches(s))
        .map(|s| s.run_id.as_str())
        .collect();
    assert!(expected.len() >= 3, "fixture selects several traces");
    assert_answer(
        "C5 all criteria together",
        &expected,
        &ids(&ok(store.query(&filter), "query")),
    );
    let paged = ok(
        store.query(&filter.clone().with_offset(1).with_limit(2)),
        "query",
    );
    assert_answer(
        "C5 all criteria together",
        expected[1..3].to_vec(),
        ids(&paged),
    );
    assert_answer(
        "C5 all criteria together",
        expected.len() as u64,
        ok(store.count(&filter), "count"),
    );
}

/// Summaries, `count` and `stats` agree with core's derivation over the same selection.
pub fn c5_summaries_count_and_stats(store: &dyn TraceStore) {
    let traces: Vec<_> = (0..12)
        .map(|i| {
            let status = [Status::Ok, Status::Error, Status::Unset][i % 3];
            trace(&format!("r{i:02}"), i as i64, i % 4)
                .with_status(status)
                .with_metadata("g", i % 2)
        })
        .chain([crate::fixtures::everything("all")])
        .collect();
    ok(store.save_many(&traces), "save_many");
    let mut expected: Vec<TraceSummary> = traces.iter().map(TraceSummary::from).collect();
    expected.sort_by_key(|s| std::cmp::Reverse(s.cursor()));
    assert_answer(
        "C5 summaries count and stats",
        expected,
        ok(store.query(&TraceFilter::new()), "query"),
    );
    for filter in [
        TraceFilter::new(),
        TraceFilter::new().with_metadata("g", 1),
        TraceFilter::new().with_status(Status::Error).with_limit(2),
        TraceFilter::new().with_min_steps(2).with_offset(1),
        TraceFilter::new().with_metadata("g", "nothing"),
    ] {
        let selected = ok(store.query(&filter), "query");
        let stats = ok(store.stats(&filter), "stats");
        let want: TraceStats = selected.iter().collect();
        assert_answer(
            &format!("C5 summaries count and stats: count({filter:?})"),
            selected.len() as u64,
            ok(store.count(&filter), "count"),
        );
        assert_answer(
            &format!("C5 summaries count and stats: stats.count for {filter:?}"),
            want.count,
            stats.count,
        );
        assert_answer(
            &format!("C5 summaries count and stats: stats.steps for {filter:?}"),
            want.steps,
            stats.steps,
        );
        assert_answer(
            &format!("C5 summaries count and stats: stats.input_tokens for {filter:?}"),
            want.input_tokens,
            stats.input_tokens,
        );
        assert_answer(
            &format!("C5 summaries count and stats: stats.output_tokens for {filter:?}"),
            want.output_tokens,
            stats.output_tokens,
        );
        assert_answer(
            &format!("C5 summaries count and stats: stats.cost for {filter:?}"),
            want.cost_nano_usd,
            stats.cost_nano_usd,
        );
        assert_answer(
            &format!("C5 summaries count and stats: stats.error_count for {filter:?}"),
            want.error_count,
            stats.error_count,
        );
        assert_answer(
            &format!("C5 summaries count and stats: stats.by_status for {filter:?}"),
            want.by_status,
            stats.by_status,
        );
        assert_answer(
            &format!("C5 summaries count and stats: stats.by_model for {filter:?}"),
            want.by_model,
            stats.by_model,
        );
        assert!(
            (stats.total_ms - want.total_ms).abs() < 1e-6,
            "stats.total_ms for {filter:?}"
        );
    }
}
