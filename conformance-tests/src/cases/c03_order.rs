//! C3: newest first by `(created_at DESC, run_id DESC)`.

use trace_store_core::{Timestamp, Trace, TraceFilter, TraceStore};

use crate::fixtures::{assert_answer, at, ids, ok, trace};

/// Traces saved in any order list newest first.
pub fn c3_newest_first(store: &dyn TraceStore) {
    for (run_id, micros) in [("m", 50), ("o", 10), ("n", 99), ("p", 70), ("q", -5)] {
        ok(store.save(&trace(run_id, micros, 1)), "save");
    }
    assert_answer(
        "C3 newest first",
        ["n", "p", "m", "o", "q"],
        ids(&ok(store.list(10, 0), "list")),
    );
    assert_answer(
        "C3 newest first",
        ["n", "p", "m", "o", "q"],
        ids(&ok(store.query(&TraceFilter::new()), "query")),
    );
}

/// Equal `created_at` values are ordered by run_id descending, by bytes, every time.
pub fn c3_equal_created_at_ties(store: &dyn TraceStore) {
    let run_ids = ["a", "B", "é", "aa", "Z", "a a", "a_", "a%", "0", "~"];
    for run_id in run_ids {
        ok(store.save(&trace(run_id, 7, 1)), "save");
    }
    let mut expected: Vec<&str> = run_ids.to_vec();
    expected.sort_unstable_by(|a, b| b.as_bytes().cmp(a.as_bytes()));
    for _ in 0..3 {
        assert_answer(
            "C3 equal created at ties",
            &expected,
            &ids(&ok(store.list(100, 0), "list")),
        );
    }
    let page: Vec<_> = (0..run_ids.len())
        .flat_map(|offset| ok(store.list(1, offset), "list"))
        .collect();
    assert_answer(
        "C3 equal created at ties: pages of one follow the same tie order",
        &expected,
        &ids(&page),
    );
}

/// `query` with criteria keeps list order.
pub fn c3_query_keeps_order(store: &dyn TraceStore) {
    for i in 0..20 {
        ok(
            store.save(&trace(&format!("r{i:02}"), i % 4, (i % 5) as usize)),
            "save",
        );
    }
    let all = ok(store.list(100, 0), "list");
    let filter = TraceFilter::new().with_min_steps(2);
    let expected: Vec<&str> = all
        .iter()
        .filter(|s| s.steps >= 2)
        .map(|s| s.run_id.as_str())
        .collect();
    assert_answer(
        "C3 query keeps order",
        expected,
        ids(&ok(store.query(&filter), "query")),
    );
}

/// Order and time ranges are exact to the microsecond over the whole range of
/// timestamps, where an `f64` of microseconds (a Redis score, a JavaScript number) is
/// not: there, neighbours one microsecond apart must not fall back to the run_id order.
pub fn c3_order_exact_to_the_microsecond(store: &dyn TraceStore) {
    let micros = |t: Timestamp, delta: i64| t.saturating_add_micros(delta);
    // Each pair is one microsecond apart, the later one with the smaller run_id, so a
    // store that loses the microsecond lists the pair the wrong way round.
    let pairs = [
        (Timestamp::MAX, "a-max", micros(Timestamp::MAX, -1), "z-max"),
        (at(1), "a-now", at(0), "z-now"),
        (
            micros(Timestamp::UNIX_EPOCH, 1),
            "a-epoch",
            Timestamp::UNIX_EPOCH,
            "z-epoch",
        ),
        (micros(Timestamp::MIN, 1), "a-min", Timestamp::MIN, "z-min"),
    ];
    for (later, later_id, earlier, earlier_id) in pairs {
        ok(
            store.save(&Trace::new(later_id).with_created_at(later)),
            "save",
        );
        ok(
            store.save(&Trace::new(earlier_id).with_created_at(earlier)),
            "save",
        );
    }
    let expected = [
        "a-max", "z-max", "a-now", "z-now", "a-epoch", "z-epoch", "a-min", "z-min",
    ];
    assert_answer(
        "C3 order exact to the microsecond",
        expected,
        ids(&ok(store.list(100, 0), "list")),
    );
    for (later, later_id, earlier, earlier_id) in pairs {
        let only = |filter: TraceFilter| ids(&ok(store.query(&filter), "query")).join(",");
        assert_answer(
            "C3 order exact to the microsecond",
            later_id,
            only(TraceFilter::new().with_since(later).with_until(later)),
        );
        assert_answer(
            "C3 order exact to the microsecond",
            earlier_id,
            only(TraceFilter::new().with_since(earlier).with_until(earlier)),
        );
        assert_answer(
            "C3 order exact to the microsecond",
            format!("{later_id},{earlier_id}"),
            only(TraceFilter::new().with_since(earlier).with_until(later)),
        );
    }
}

/// Equal `created_at` values come back by run_id descending under every access path a
/// backend may take: metadata, name, status, steps, session, parent, text and score,
/// with and without paging.
pub fn c3_ties_under_every_filter_path(store: &dyn TraceStore) {
    use trace_store_core::{Score, Status};
    // Saved in an order that is neither ascending nor descending.
    let run_ids = ["m", "C", "z", "a", "é", "b", "Z", "0"];
    for run_id in run_ids {
        let t = trace(run_id, 42, 2)
            .with_name("tied")
            .with_status(Status::Ok)
            .with_session_id("s")
            .with_parent_run_id("p")
            .with_metadata("k", "v")
            .with_step(trace_store_core::Step::tool_call("tie-needle"))
            .with_score(Score::new("q").with_value(0.5).with_created_at(at(0)));
        ok(store.save(&t), "save");
    }
    ok(store.save(&trace("older", 41, 1)), "save");
    ok(store.save(&trace("newer", 43, 1)), "save");
    let mut expected: Vec<&str> = run_ids.to_vec();
    expected.sort_unstable_by(|a, b| b.as_bytes().cmp(a.as_bytes()));
    let paths = [
        ("metadata", TraceFilter::new().with_metadata("k", "v")),
        ("name", TraceFilter::new().with_name("tied")),
        ("status", TraceFilter::new().with_status(Status::Ok)),
        (
            "steps",
            TraceFilter::new().with_min_steps(3).with_max_steps(3),
        ),
        ("session", TraceFilter::new().with_session_id("s")),
        ("parent", TraceFilter::new().with_parent_run_id("p")),
        ("text", TraceFilter::new().with_text("TIE-NEEDLE")),
        (
            "score",
            TraceFilter::new().with_score("q", Some(0.5), Some(0.5)),
        ),
        (
            "time",
            TraceFilter::new().with_since(at(42)).with_until(at(42)),
        ),
    ];
    for (path, filter) in paths {
        assert_answer(
            &format!("C3 equal created_at ties by run_id descending under the {path} filter"),
            expected.clone(),
            ids(&ok(store.query(&filter), "query")),
        );
        let paged: Vec<_> = (0..expected.len())
            .flat_map(|offset| {
                ok(
                    store.query(&filter.clone().with_offset(offset).with_limit(1)),
                    "query",
                )
            })
            .collect();
        assert_answer(
            &format!("C3 pages of one keep the tie order under the {path} filter"),
            expected.clone(),
            ids(&paged),
        );
        let first = ok(store.query(&filter.clone().with_limit(3)), "query");
        let rest = ok(
            store.query(&filter.clone().with_after(first[2].cursor())),
            "query",
        );
        assert_answer(
            &format!("C3 a cursor inside a tie keeps the order under the {path} filter"),
            expected[3..].to_vec(),
            ids(&rest),
        );
    }
}
