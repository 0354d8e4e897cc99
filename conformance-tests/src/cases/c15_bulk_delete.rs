//! C15: `delete_where` deletes exactly what `query` returns; retention is built on it.

use std::time::Duration;

use serde_json::json;
use trace_store_core::{
    GroupBy, RetentionPolicy, Score, Status, Step, Trace, TraceFilter, TraceStore, TraceStoreExt,
};

use crate::fixtures::{assert_answer, assert_invalid, assert_not_found, at, ids, ok, query_ids};

/// Trace `i` of 24: created at `i / 2` (pairs tie), user `u{i % 3}`, session `s{i % 2}`,
/// status error when `i % 4 == 0`, `i % 3` steps, score `q` = `i / 10` for `i < 20`,
/// and "needle" in its text when `i % 5 == 0`.
fn fixture(i: i64) -> Trace {
    let mut t = Trace::new(format!("r{i:02}"))
        .with_created_at(at(i / 2))
        .with_session_id(format!("s{}", i % 2))
        .with_status(if i % 4 == 0 {
            Status::Error
        } else {
            Status::Ok
        })
        .with_metadata("user", format!("u{}", i % 3));
    for k in 0..i % 3 {
        t = t.with_step(
            Step::llm_call("m")
                .with_usage(1, 1)
                .with_id(format!("k{k}")),
        );
    }
    if i < 20 {
        t = t.with_score(
            Score::new("q")
                .with_value((i / 10) as f64)
                .with_created_at(at(0)),
        );
    }
    if i % 5 == 0 {
        t = t.with_name("needle-run");
    }
    t
}

const N: i64 = 24;

/// run_ids in list order: `created_at` descending, then run_id descending.
fn list_order(mut picked: Vec<i64>) -> Vec<String> {
    picked.sort_by_key(|i| std::cmp::Reverse((i / 2, *i)));
    picked.into_iter().map(|i| format!("r{i:02}")).collect()
}

fn save_fixture(store: &dyn TraceStore) {
    let traces: Vec<Trace> = (0..N).map(fixture).collect();
    ok(store.save_many(&traces), "save_many");
}

/// Deletes by `filter` on a fresh fixture and checks the count, the deleted set (which
/// must be `expected`, what `query` returned) and the survivors.
#[track_caller]
fn check_delete(store: &dyn TraceStore, filter: &TraceFilter, expected: &[String]) {
    for run_id in ids(&ok(store.list(usize::MAX, 0), "list")) {
        ok(store.delete(run_id), "delete");
    }
    save_fixture(store);
    assert_answer(
        &format!("C15 fixture: query({filter:?})"),
        expected.to_vec(),
        query_ids(store, filter),
    );
    let deleted = ok(store.delete_where(filter), "delete_where");
    assert_answer(
        &format!("C15 delete_where({filter:?}) returns how many it deleted"),
        expected.len() as u64,
        deleted,
    );
    let survivors: Vec<String> = list_order((0..N).collect())
        .into_iter()
        .filter(|id| !expected.contains(id))
        .collect();
    assert_answer(
        &format!("C15 delete_where({filter:?}) deletes exactly what query returned"),
        survivors,
        query_ids(store, &TraceFilter::new()),
    );
}

/// One criterion at a time: the deleted set is the query's, computed here plainly.
pub fn c15_delete_where_equals_query(store: &dyn TraceStore) {
    let pick = |keep: &dyn Fn(i64) -> bool| list_order((0..N).filter(|i| keep(*i)).collect());
    let cases: Vec<(TraceFilter, Vec<String>)> = vec![
        (
            TraceFilter::new().with_metadata("user", "u1"),
            pick(&|i| i % 3 == 1),
        ),
        (
            TraceFilter::new().with_status(Status::Error),
            pick(&|i| i % 4 == 0),
        ),
        (
            TraceFilter::new().with_session_id("s1"),
            pick(&|i| i % 2 == 1),
        ),
        (TraceFilter::new().with_min_steps(2), pick(&|i| i % 3 == 2)),
        (
            TraceFilter::new().with_since(at(3)).with_until(at(5)),
            pick(&|i| (3..=5).contains(&(i / 2))),
        ),
        (
            TraceFilter::new().with_text("NEEDLE"),
            pick(&|i| i % 5 == 0),
        ),
        (
            TraceFilter::new().with_score("q", Some(1.0), None),
            pick(&|i| (10..20).contains(&i)),
        ),
        (
            TraceFilter::new()
                .with_metadata("user", "u0")
                .with_session_id("s0"),
            pick(&|i| i % 6 == 0),
        ),
        (TraceFilter::new().with_name("nobody"), Vec::new()),
    ];
    for (filter, expected) in cases {
        check_delete(store, &filter, &expected);
    }
}

/// Paging belongs to the selection: offset, limit and the cursor limit what is deleted.
pub fn c15_delete_where_honours_paging(store: &dyn TraceStore) {
    let u1 = list_order((0..N).filter(|i| i % 3 == 1).collect());
    let all = list_order((0..N).collect());
    check_delete(
        store,
        &TraceFilter::new()
            .with_metadata("user", "u1")
            .with_offset(1)
            .with_limit(3),
        &u1[1..4],
    );
    check_delete(store, &TraceFilter::new().with_limit(5), &all[..5]);
    check_delete(store, &TraceFilter::new().with_offset(20), &all[20..]);
    check_delete(store, &TraceFilter::new().with_limit(0), &[]);
    // r07 and r06 tie at created_at 3: the cursor on r07 keeps r07 and deletes r06.
    let after_r07 = TraceFilter::new().with_after(trace_store_core::Cursor::new(at(3), "r07"));
    let after: Vec<String> = all
        .iter()
        .skip_while(|id| id.as_str() != "r07")
        .skip(1)
        .cloned()
        .collect();
    check_delete(store, &after_r07, &after);
    check_delete(
        store,
        &after_r07.clone().with_status(Status::Error).with_limit(2),
        &list_order(vec![4, 0]),
    );
}

/// After `delete_where`, no load, list, query, count, stats, text search or grouped
/// stats sees a deleted trace.
pub fn c15_deleted_are_gone_from_every_view(store: &dyn TraceStore) {
    save_fixture(store);
    let needles = TraceFilter::new().with_text("needle");
    assert_answer(
        "C15 delete_where of the needle runs",
        5,
        ok(store.delete_where(&needles), "delete_where"),
    );
    for i in [0, 5, 10, 15, 20] {
        assert_not_found(store.load(&format!("r{i:02}")), &format!("r{i:02}"));
    }
    assert_answer(
        "C15 text search after delete_where",
        Vec::<String>::new(),
        query_ids(store, &needles),
    );
    assert_answer(
        "C15 name query after delete_where",
        Vec::<String>::new(),
        query_ids(store, &TraceFilter::new().with_name("needle-run")),
    );
    let errors = list_order(vec![4, 8, 12, 16]);
    assert_answer(
        "C15 status query after delete_where (r00 and r20 were needles)",
        errors,
        query_ids(store, &TraceFilter::new().with_status(Status::Error)),
    );
    let stats = ok(store.stats(&TraceFilter::new()), "stats");
    // Survivors: 19 traces; steps i % 3 summed over them.
    let steps: u64 = (0..N).filter(|i| i % 5 != 0).map(|i| (i % 3) as u64).sum();
    assert_answer(
        "C15 stats after delete_where (count, steps, errors)",
        (19, steps, 4),
        (
            stats.count,
            stats.steps,
            stats.by_status.get(&Status::Error).copied().unwrap_or(0),
        ),
    );
    let groups = ok(
        store.stats_by(&TraceFilter::new(), GroupBy::Name),
        "stats_by",
    );
    let names: Vec<(String, u64)> = groups
        .iter()
        .map(|(k, s)| (k.to_string(), s.count))
        .collect();
    assert_answer(
        "C15 grouped stats after delete_where",
        vec![("(none)".to_owned(), 19)],
        names,
    );
    assert_answer(
        "C15 a second delete_where finds nothing",
        0,
        ok(store.delete_where(&needles), "delete_where"),
    );
    let again = fixture(5);
    ok(store.save(&again), "save after delete_where");
    assert_answer(
        "C15 a trace saved again after delete_where is back",
        vec!["r05".to_owned()],
        query_ids(store, &needles),
    );
}

fn ages(store: &dyn TraceStore, micros: &[(&str, i64)]) {
    let traces: Vec<Trace> = micros
        .iter()
        .map(|(id, m)| {
            Trace::new(*id)
                .with_created_at(at(*m))
                .with_metadata("k", json!(1))
        })
        .collect();
    ok(store.save_many(&traces), "save_many");
}

fn remaining(store: &dyn TraceStore) -> Vec<String> {
    query_ids(store, &TraceFilter::new())
}

/// `purge` by age keeps everything created at or after `now - max_age`.
pub fn c15_purge_by_age(store: &dyn TraceStore) {
    ages(
        store,
        &[
            ("old", 0),
            ("just-older", 499_999),
            ("at-cutoff", 500_000),
            ("newer", 500_001),
            ("newest", 999_999),
        ],
    );
    let policy = RetentionPolicy::new().with_max_age(Duration::from_millis(500));
    let report = ok(store.purge(&policy, at(1_000_000)), "purge");
    assert_answer(
        "C15 purge by age reports (by age, by count)",
        (2, 0),
        (report.deleted_by_age, report.deleted_by_count),
    );
    assert_answer(
        "C15 purge by age keeps created_at >= now - max_age",
        vec!["newest", "newer", "at-cutoff"],
        remaining(store),
    );
    let report = ok(store.purge(&policy, at(1_000_000)), "purge");
    assert_answer("C15 a second purge deletes nothing", 0, report.deleted());
}

/// `purge` by count keeps the newest `max_count`, ties broken by run_id like `list`.
pub fn c15_purge_by_count(store: &dyn TraceStore) {
    ages(
        store,
        &[("a", 1), ("b", 2), ("c", 2), ("d", 2), ("e", 3), ("f", 0)],
    );
    let report = ok(
        store.purge(&RetentionPolicy::new().with_max_count(3), at(10)),
        "purge",
    );
    assert_answer(
        "C15 purge by count reports (by age, by count)",
        (0, 3),
        (report.deleted_by_age, report.deleted_by_count),
    );
    assert_answer(
        "C15 purge by count keeps the newest 3 in list order",
        vec!["e", "d", "c"],
        remaining(store),
    );
    let report = ok(
        store.purge(&RetentionPolicy::new().with_max_count(10), at(10)),
        "purge",
    );
    assert_answer(
        "C15 purge under the count deletes nothing",
        0,
        report.deleted(),
    );
    let report = ok(
        store.purge(&RetentionPolicy::new().with_max_count(0), at(10)),
        "purge",
    );
    assert_answer(
        "C15 purge to a count of 0 deletes all",
        3,
        report.deleted_by_count,
    );
    assert_answer(
        "C15 nothing is left",
        0,
        ok(store.count(&TraceFilter::new()), "count"),
    );
}

/// Age and count together: age first, then the count of what is left.
pub fn c15_purge_by_age_and_count(store: &dyn TraceStore) {
    ages(
        store,
        &[
            ("a", 100),
            ("b", 200),
            ("c", 300),
            ("d", 400),
            ("e", 500),
            ("f", 600),
        ],
    );
    let policy = RetentionPolicy::new()
        .with_max_age(Duration::from_micros(350))
        .with_max_count(2);
    let report = ok(store.purge(&policy, at(600)), "purge");
    assert_answer(
        "C15 purge by age and count reports (by age, by count)",
        (2, 2),
        (report.deleted_by_age, report.deleted_by_count),
    );
    assert_answer(
        "C15 purge by age and count keeps the newest 2 of those young enough",
        vec!["f", "e"],
        remaining(store),
    );
    assert_answer(
        "C15 purged traces leave the metadata index",
        vec!["f".to_owned(), "e".to_owned()],
        query_ids(store, &TraceFilter::new().with_metadata("k", 1)),
    );
}

/// An invalid filter is `InvalidInput` and deletes nothing.
pub fn c15_invalid_filter_deletes_nothing(store: &dyn TraceStore) {
    save_fixture(store);
    let invalid = [
        TraceFilter::new().with_min_steps(2).with_max_steps(1),
        TraceFilter::new().with_since(at(5)).with_until(at(4)),
        TraceFilter::new().with_text(""),
        TraceFilter::new().with_score("q", Some(1.0), Some(0.0)),
        TraceFilter::new().with_score("q", Some(f64::NAN), None),
    ];
    for filter in invalid {
        assert_invalid(
            store.delete_where(&filter),
            &format!("C15 delete_where({filter:?})"),
        );
    }
    assert_answer(
        "C15 an invalid delete_where deletes nothing",
        N as u64,
        ok(store.count(&TraceFilter::new()), "count"),
    );
}
