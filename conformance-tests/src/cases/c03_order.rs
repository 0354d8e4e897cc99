//! C3: newest first by `(created_at DESC, run_id DESC)`.

use trace_store_core::{Timestamp, Trace, TraceFilter, TraceStore};

use crate::fixtures::{at, ids, ok, trace};

/// Traces saved in any order list newest first.
pub fn c3_newest_first(store: &dyn TraceStore) {
    for (run_id, micros) in [("m", 50), ("o", 10), ("n", 99), ("p", 70), ("q", -5)] {
        ok(store.save(&trace(run_id, micros, 1)), "save");
    }
    assert_eq!(
        ids(&ok(store.list(10, 0), "list")),
        ["n", "p", "m", "o", "q"]
    );
    assert_eq!(
        ids(&ok(store.query(&TraceFilter::new()), "query")),
        ["n", "p", "m", "o", "q"]
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
        assert_eq!(ids(&ok(store.list(100, 0), "list")), expected);
    }
    let page: Vec<_> = (0..run_ids.len())
        .flat_map(|offset| ok(store.list(1, offset), "list"))
        .collect();
    assert_eq!(
        ids(&page),
        expected,
        "pages of one follow the same tie order"
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
    assert_eq!(ids(&ok(store.query(&filter), "query")), expected);
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
    assert_eq!(ids(&ok(store.list(100, 0), "list")), expected);
    for (later, later_id, earlier, earlier_id) in pairs {
        let only = |filter: TraceFilter| ids(&ok(store.query(&filter), "query")).join(",");
        assert_eq!(
            only(TraceFilter::new().with_since(later).with_until(later)),
            later_id
        );
        assert_eq!(
            only(TraceFilter::new().with_since(earlier).with_until(earlier)),
            earlier_id
        );
        assert_eq!(
            only(TraceFilter::new().with_since(earlier).with_until(later)),
            format!("{later_id},{earlier_id}")
        );
    }
}
