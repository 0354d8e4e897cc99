//! C12: `merge` folds a part into the stored trace by the contract's rules, atomically
//! per run_id.

use std::collections::BTreeSet;

use serde_json::json;
use trace_store_core::{
    ErrorInfo, Score, ScoreSource, Status, Step, StepKind, Trace, TraceFilter, TraceStore,
};

use crate::Durable;
use crate::child::{MERGED_RUN_ID, child_merge_part};
use crate::fixtures::{
    assert_answer, assert_invalid, assert_not_found, at, ids, ok, query_ids, trace,
};

fn step_models(trace: &Trace) -> Vec<&str> {
    trace
        .steps
        .iter()
        .map(|s| s.model.as_deref().unwrap_or("-"))
        .collect()
}

/// Merges, then checks that the answer is what `load` returns afterwards.
#[track_caller]
fn merge(store: &dyn TraceStore, part: &Trace) -> Trace {
    let merged = ok(store.merge(part), "merge");
    let loaded = ok(store.load(&part.run_id), "load after merge");
    assert!(
        loaded == merged,
        "C12 merge returns what is stored: merge returned {merged:?}, load returned {loaded:?}"
    );
    merged
}

/// Merging into a run_id that is not stored saves the part as it is.
pub fn c12_merge_into_absent_is_save(store: &dyn TraceStore) {
    let part = trace("new", 5, 2)
        .with_session_id("s")
        .with_metadata("k", 1);
    let merged = merge(store, &part);
    assert_answer("C12 merge into absent saves the part", &part, &merged);
    assert_answer(
        "C12 merge into absent is listed",
        vec!["new"],
        ids(&ok(store.list(10, 0), "list")),
    );
    assert_answer(
        "C12 merge into absent is indexed",
        vec!["new".to_owned()],
        query_ids(store, &TraceFilter::new().with_metadata("k", 1)),
    );
}

/// Header fields set in the part win, unset ones keep the stored value; `status` wins
/// unless `Unset`; `created_at` is the earlier of the two, and the list order follows it.
pub fn c12_merge_header_rules(store: &dyn TraceStore) {
    let stored = Trace::new("r")
        .with_name("agent")
        .with_session_id("s1")
        .with_parent_run_id("p1")
        .with_created_at(at(100))
        .with_status(Status::Running);
    ok(store.save(&stored), "save");
    ok(store.save(&trace("between", 75, 1)), "save");
    let mut later = Trace::new("r")
        .with_created_at(at(200))
        .with_ended_at(at(900));
    // Set directly: `with_error` also marks the run failed, and the status must stay
    // unset here.
    later.error = Some(ErrorInfo::new("boom"));
    let merged = merge(store, &later);
    let header = |t: &Trace| {
        (
            t.name.clone(),
            t.session_id.clone(),
            t.parent_run_id.clone(),
            t.created_at,
            t.status,
            t.ended_at,
            t.error.as_ref().map(|e| e.message.clone()),
        )
    };
    let some = |s: &str| Some(s.to_owned());
    assert_answer(
        "C12 unset header fields keep the stored values, a later created_at does not move it",
        (
            some("agent"),
            some("s1"),
            some("p1"),
            at(100),
            Status::Running,
            Some(at(900)),
            some("boom"),
        ),
        header(&merged),
    );
    let earlier = Trace::new("r")
        .with_created_at(at(50))
        .with_name("renamed")
        .with_session_id("s2")
        .with_parent_run_id("p2")
        .with_status(Status::Ok);
    let merged = merge(store, &earlier);
    assert_answer(
        "C12 header fields set in the part win, the earlier created_at wins",
        (
            some("renamed"),
            some("s2"),
            some("p2"),
            at(50),
            Status::Ok,
            Some(at(900)),
            some("boom"),
        ),
        header(&merged),
    );
    assert_answer(
        "C12 list order follows the merged created_at",
        vec!["between", "r"],
        ids(&ok(store.list(10, 0), "list")),
    );
    for (filter, expected) in [
        (TraceFilter::new().with_session_id("s2"), vec!["r"]),
        (TraceFilter::new().with_session_id("s1"), vec![]),
        (TraceFilter::new().with_name("agent"), vec![]),
        (TraceFilter::new().with_parent_run_id("p2"), vec!["r"]),
        (TraceFilter::new().with_status(Status::Ok), vec!["r"]),
        (TraceFilter::new().with_status(Status::Running), vec![]),
        (TraceFilter::new().with_since(at(60)), vec!["between"]),
    ] {
        assert_answer(
            &format!("C12 indexes follow the merged header, query {filter:?}"),
            expected,
            query_ids(store, &filter),
        );
    }
}

/// Steps with an id replace the stored step with that id in place; steps without one
/// are appended in the part's order.
pub fn c12_merge_steps_by_id(store: &dyn TraceStore) {
    let stored = Trace::new("r")
        .with_created_at(at(1))
        .with_step(Step::llm_call("a").with_id("1"))
        .with_step(Step::llm_call("anon"))
        .with_step(Step::llm_call("b").with_id("2"));
    ok(store.save(&stored), "save");
    let part = Trace::new("r")
        .with_created_at(at(1))
        .with_step(Step::llm_call("b2").with_id("2").with_usage(7, 1))
        .with_step(Step::llm_call("anon2"))
        .with_step(Step::llm_call("c").with_id("3"));
    let merged = merge(store, &part);
    assert_answer(
        "C12 steps: by id replace in place, without id append",
        vec!["a", "anon", "b2", "anon2", "c"],
        step_models(&merged),
    );
    assert_answer(
        "C12 a replaced step is the part's step",
        &part.steps[0],
        &merged.steps[2],
    );
    let again = Trace::new("r")
        .with_created_at(at(1))
        .with_step(Step::llm_call("c2").with_id("3"))
        .with_step(Step::llm_call("a2").with_id("1"));
    let merged = merge(store, &again);
    assert_answer(
        "C12 steps: a second merge replaces by id again",
        vec!["a2", "anon", "b2", "anon2", "c2"],
        step_models(&merged),
    );
    let filter = TraceFilter::new().with_min_steps(5).with_max_steps(5);
    assert_answer(
        "C12 the steps index follows the merged step count",
        vec!["r".to_owned()],
        query_ids(store, &filter),
    );
}

/// Metadata is the union, the part winning per key; the metadata index follows.
pub fn c12_merge_metadata_union(store: &dyn TraceStore) {
    let stored = trace("r", 1, 1)
        .with_metadata("a", 1)
        .with_metadata("b", 2)
        .with_metadata("keep", json!({"x": [1, 2]}));
    ok(store.save(&stored), "save");
    let part = Trace::new("r")
        .with_created_at(at(1))
        .with_metadata("b", "two")
        .with_metadata("c", json!(null));
    let merged = merge(store, &part);
    assert_answer(
        "C12 metadata is the union, the part winning per key",
        json!({"a": 1, "b": "two", "c": null, "keep": {"x": [1, 2]}}),
        serde_json::to_value(&merged.metadata).unwrap_or_default(),
    );
    for (key, value, expected) in [
        ("b", json!(2), vec![]),
        ("b", json!("two"), vec!["r".to_owned()]),
        ("a", json!(1), vec!["r".to_owned()]),
        ("c", json!(null), vec!["r".to_owned()]),
    ] {
        assert_answer(
            &format!("C12 the metadata index follows the merge, {key} = {value}"),
            expected,
            query_ids(store, &TraceFilter::new().with_metadata(key, value.clone())),
        );
    }
}

/// Scores are identified by `(name, step_id, source)`: the same identity replaces in
/// place, a new one is appended; trace-level values reach the score filter.
pub fn c12_merge_scores_by_identity(store: &dyn TraceStore) {
    let score = |name: &str, source: ScoreSource, value: f64| {
        Score::new(name)
            .with_source(source)
            .with_value(value)
            .with_created_at(at(10))
    };
    let stored = Trace::new("r")
        .with_created_at(at(1))
        .with_score(score("quality", ScoreSource::Human, 0.0))
        .with_score(score("quality", ScoreSource::Llm, 0.3));
    ok(store.save(&stored), "save");
    let part = Trace::new("r")
        .with_created_at(at(1))
        .with_score(score("quality", ScoreSource::Human, 1.0))
        .with_score(score("quality", ScoreSource::Human, 0.5).with_step_id("s1"))
        .with_score(score("other", ScoreSource::Code, 0.9));
    let merged = merge(store, &part);
    let got: Vec<_> = merged
        .scores
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                s.source.as_str(),
                s.step_id.as_deref(),
                s.value,
            )
        })
        .collect();
    assert_answer(
        "C12 scores replace by identity in place and append otherwise",
        vec![
            ("quality", "human", None, Some(1.0)),
            ("quality", "llm", None, Some(0.3)),
            ("quality", "human", Some("s1"), Some(0.5)),
            ("other", "code", None, Some(0.9)),
        ],
        got,
    );
    assert_answer(
        "C12 a merged trace-level score reaches the score filter",
        vec!["r".to_owned()],
        query_ids(
            store,
            &TraceFilter::new().with_score("other", Some(0.9), Some(0.9)),
        ),
    );
}

/// An invalid part is `InvalidInput` and writes nothing, whether a trace is stored or not.
pub fn c12_invalid_part_writes_nothing(store: &dyn TraceStore) {
    let stored = trace("r", 1, 3).with_metadata("v", 1);
    ok(store.save(&stored), "save");
    let nan_score = Trace::new("r")
        .with_created_at(at(0))
        .with_step(Step::llm_call("extra"))
        .with_score(Score::new("q").with_value(f64::NAN));
    assert_invalid(
        store.merge(&nan_score),
        "C12 merge of a part with a NaN score",
    );
    let ambiguous = Trace::new("r")
        .with_created_at(at(0))
        .with_metadata("v", 2)
        .with_step(Step::new(StepKind::Other("llm_call".into())));
    assert_invalid(
        store.merge(&ambiguous),
        "C12 merge of a part with an ambiguous step kind",
    );
    assert_invalid(store.merge(&Trace::new("")), "C12 merge of an empty run_id");
    assert_invalid(
        store.merge(&Trace::new("bad\nid").with_created_at(at(0))),
        "C12 merge of a run_id with a control character",
    );
    let absent = Trace::new("fresh").with_score(Score::new("q").with_value(f64::INFINITY));
    assert_invalid(
        store.merge(&absent),
        "C12 merge of an invalid part into absent",
    );
    assert_answer(
        "C12 a rejected merge leaves the stored trace as it was",
        &stored,
        &ok(store.load("r"), "load"),
    );
    assert_not_found(store.load("fresh"), "fresh");
    assert_answer(
        "C12 a rejected merge changes no index",
        vec!["r".to_owned()],
        query_ids(store, &TraceFilter::new().with_metadata("v", 1)),
    );
    assert_answer(
        "C12 a rejected merge adds no trace",
        1,
        ok(store.count(&TraceFilter::new()), "count"),
    );
}

/// After each of a series of merges, `merge`'s answer, `load`, the summary and `stats`
/// agree, with totals checked as literal numbers.
pub fn c12_merge_result_equals_load(store: &dyn TraceStore) {
    let step = |id: &str, model: &str, tokens: u64| {
        Step::llm_call(model)
            .with_id(id)
            .with_usage(tokens, 1)
            .with_cost_nano_usd(tokens as i64 * 10)
            .with_duration_us(1_000)
    };
    let parts = [
        Trace::new("r")
            .with_created_at(at(5))
            .with_step(step("1", "m", 10)),
        Trace::new("r")
            .with_created_at(at(3))
            .with_step(step("2", "n", 20)),
        Trace::new("r")
            .with_created_at(at(9))
            .with_step(step("1", "n", 30)),
        Trace::new("r")
            .with_created_at(at(9))
            .with_status(Status::Ok)
            .with_step(step("3", "m", 40)),
    ];
    // After each part: (created_at, steps, input tokens, tokens of m, tokens of n).
    let expected = [
        (at(5), 1, 10, Some(10), None),
        (at(3), 2, 30, Some(10), Some(20)),
        (at(3), 2, 50, None, Some(50)),
        (at(3), 3, 90, Some(40), Some(50)),
    ];
    for (part, (created_at, steps, tokens, m, n)) in parts.iter().zip(expected) {
        let merged = merge(store, part);
        let listed = ok(store.list(10, 0), "list");
        assert_answer("C12 merged trace listed once", 1, listed.len());
        let stats = ok(store.stats(&TraceFilter::new()), "stats");
        let model_tokens = |model: &str| stats.by_model.get(model).map(|u| u.input_tokens);
        assert_answer(
            "C12 summary and stats follow each merge (created_at, steps, tokens, by_model m, n)",
            (created_at, steps, tokens, m, n),
            (
                listed[0].created_at,
                listed[0].steps,
                stats.input_tokens,
                model_tokens("m"),
                model_tokens("n"),
            ),
        );
        assert_answer(
            "C12 summary steps equal the merged body",
            merged.steps.len(),
            steps,
        );
    }
}

/// 8 threads merging disjoint steps into one run_id that does not exist yet lose none.
pub fn c12_threads_merge_disjoint_steps(store: &dyn TraceStore) {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 25;
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            scope.spawn(move || {
                for i in 0..PER_THREAD {
                    let part = Trace::new("shared")
                        .with_created_at(at((1 + t * PER_THREAD + i) as i64))
                        .with_metadata(format!("t{t}"), i)
                        .with_step(
                            Step::llm_call("m")
                                .with_id(format!("t{t}-{i:02}"))
                                .with_usage(1, 1),
                        );
                    ok(store.merge(&part), "merge");
                }
            });
        }
    });
    let merged = ok(store.load("shared"), "load");
    let got: BTreeSet<String> = merged.steps.iter().filter_map(|s| s.id.clone()).collect();
    let expected: BTreeSet<String> = (0..THREADS)
        .flat_map(|t| (0..PER_THREAD).map(move |i| format!("t{t}-{i:02}")))
        .collect();
    let lost: Vec<_> = expected.difference(&got).collect();
    assert!(
        lost.is_empty() && merged.steps.len() == THREADS * PER_THREAD,
        "C12 concurrent merges lose nothing: expected {} distinct steps, store has {} steps; lost {lost:?}",
        THREADS * PER_THREAD,
        merged.steps.len()
    );
    for t in 0..THREADS {
        assert_answer(
            &format!("C12 concurrent merges: thread {t}'s last metadata value"),
            Some(json!(PER_THREAD - 1)),
            merged.metadata.get(&format!("t{t}")).cloned(),
        );
    }
    assert_answer(
        "C12 concurrent merges: the earliest created_at",
        at(1),
        merged.created_at,
    );
    let stats = ok(store.stats(&TraceFilter::new()), "stats");
    assert_answer(
        "C12 concurrent merges: one trace, every step counted (count, steps, input tokens)",
        (
            1,
            (THREADS * PER_THREAD) as u64,
            (THREADS * PER_THREAD) as u64,
        ),
        (stats.count, stats.steps, stats.input_tokens),
    );
}

/// Two processes merging disjoint steps into one run_id at the same time lose none.
pub fn c12_two_processes_merge_into_one_run(location: &Durable<'_>) {
    const EACH: u64 = 30;
    let store = location.open();
    ok(
        store.save(&Trace::new(MERGED_RUN_ID).with_created_at(at(5_000))),
        "save the run the children merge into",
    );
    let first = location.spawn_merger("p1", EACH);
    let second = location.spawn_merger("p2", EACH);
    let mut acked = first.finish();
    acked.extend(second.finish());
    assert_answer(
        "C12 every child merge was acknowledged",
        2 * EACH as usize,
        acked.len(),
    );
    for handle in [store, location.open()] {
        let merged = ok(handle.load(MERGED_RUN_ID), "load");
        let got: BTreeSet<&str> = merged
            .steps
            .iter()
            .filter_map(|s| s.id.as_deref())
            .collect();
        let lost: Vec<_> = acked
            .iter()
            .filter(|id| !got.contains(id.as_str()))
            .collect();
        assert!(
            lost.is_empty() && merged.steps.len() == acked.len(),
            "C12 merges from two processes lose nothing: expected {} steps, store has {}; lost {lost:?}",
            acked.len(),
            merged.steps.len()
        );
        for prefix in ["p1", "p2"] {
            assert_answer(
                &format!("C12 two processes: {prefix}'s last metadata value"),
                Some(json!(EACH - 1)),
                merged.metadata.get(prefix).cloned(),
            );
        }
        let expected_first = child_merge_part("p1", 0);
        assert_answer(
            "C12 two processes: created_at is the earliest part's",
            expected_first.created_at,
            merged.created_at,
        );
    }
}

/// `merge_many` folds each part as `merge` would, parts of one run_id in the order given,
/// and answers the run_ids in that order.
pub fn c12_merge_many_folds_in_order(store: &dyn TraceStore) {
    let stored = Trace::new("a")
        .with_created_at(at(2))
        .with_step(Step::llm_call("a1").with_id("1"))
        .with_step(Step::llm_call("a2").with_id("2"));
    ok(store.save(&stored), "save");
    let parts = [
        Trace::new("a")
            .with_created_at(at(3))
            .with_step(Step::llm_call("a1-new").with_id("1")),
        Trace::new("b")
            .with_created_at(at(5))
            .with_step(Step::llm_call("b1").with_id("1")),
        Trace::new("a")
            .with_created_at(at(1))
            .with_metadata("k", "v")
            .with_step(Step::llm_call("a3").with_id("3"))
            .with_step(Step::llm_call("a1-last").with_id("1")),
        Trace::new("b")
            .with_created_at(at(5))
            .with_status(Status::Ok)
            .with_step(Step::llm_call("b2")),
    ];
    assert_answer(
        "C12 merge_many answers the run_ids in the order of the parts",
        vec!["a", "b", "a", "b"],
        ok(store.merge_many(&parts), "merge_many"),
    );
    let a = ok(store.load("a"), "load a");
    assert_answer(
        "C12 merge_many folds parts of one run in order",
        vec!["a1-last", "a2", "a3"],
        step_models(&a),
    );
    assert_answer("C12 merge_many: earliest created_at", at(1), a.created_at);
    assert_answer(
        "C12 merge_many: metadata of a later part",
        Some(json!("v")),
        a.metadata.get("k").cloned(),
    );
    let b = ok(store.load("b"), "load b");
    assert_answer(
        "C12 merge_many into absent, then again",
        vec!["b1", "b2"],
        step_models(&b),
    );
    assert_answer(
        "C12 merge_many: status of the last part",
        Status::Ok,
        b.status,
    );
    assert_answer(
        "C12 merge_many results are indexed",
        vec!["a".to_owned()],
        query_ids(store, &TraceFilter::new().with_metadata("k", "v")),
    );
    assert_answer(
        "C12 merge_many of nothing",
        Vec::<String>::new(),
        ok(store.merge_many(&[]), "merge_many of nothing"),
    );
}

/// One invalid part among valid ones: `InvalidInput`, and no part is written.
pub fn c12_merge_many_invalid_part_writes_nothing(store: &dyn TraceStore) {
    let stored = trace("r", 1, 2).with_metadata("v", 1);
    ok(store.save(&stored), "save");
    let parts = [
        Trace::new("r")
            .with_created_at(at(1))
            .with_metadata("v", 2)
            .with_step(Step::llm_call("extra")),
        Trace::new("fresh").with_created_at(at(2)),
        Trace::new("r")
            .with_created_at(at(1))
            .with_score(Score::new("q").with_value(f64::NAN)),
    ];
    assert_invalid(
        store.merge_many(&parts),
        "C12 merge_many with one invalid part",
    );
    assert_answer(
        "C12 a rejected merge_many leaves the stored trace as it was",
        &stored,
        &ok(store.load("r"), "load"),
    );
    assert_not_found(store.load("fresh"), "fresh");
    assert_answer(
        "C12 a rejected merge_many changes no index",
        vec!["r".to_owned()],
        query_ids(store, &TraceFilter::new().with_metadata("v", 1)),
    );
}
