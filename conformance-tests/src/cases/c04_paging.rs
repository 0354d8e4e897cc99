//! C4: filter, then order, then cursor, then offset, then limit.

use std::collections::{BTreeSet, HashSet};

use trace_store_core::{Cursor, TraceFilter, TraceStore};

use crate::fixtures::{assert_answer, at, ids, ok, trace};

fn fill(store: &dyn TraceStore, n: usize) {
    let traces: Vec<_> = (0..n)
        .map(|i| trace(&format!("r{i:04}"), (i / 3) as i64, i % 7))
        .collect();
    ok(store.save_many(&traces), "save_many");
}

/// `list(l, o)` equals `query` with only limit and offset set, for many (l, o).
pub fn c4_list_equals_query(store: &dyn TraceStore) {
    fill(store, 25);
    for limit in [0, 1, 2, 7, 25, 26, 1000] {
        for offset in [0, 1, 5, 24, 25, 26, 1000] {
            let listed = ok(store.list(limit, offset), "list");
            let filter = TraceFilter::new().with_limit(limit).with_offset(offset);
            let queried = ok(store.query(&filter), "query");
            assert_answer(
                &format!("C4 list equals query: list({limit}, {offset}) differs from query"),
                &queried,
                &listed,
            );
            assert_answer(
                "C4 list equals query",
                limit.min(25usize.saturating_sub(offset)),
                listed.len(),
            );
        }
    }
}

/// An offset past the end and a limit of 0 give empty pages, not errors.
pub fn c4_empty_pages(store: &dyn TraceStore) {
    assert!(ok(store.list(10, 0), "list on empty store").is_empty());
    fill(store, 5);
    assert!(ok(store.list(10, 5), "list").is_empty());
    assert!(ok(store.list(10, usize::MAX), "list").is_empty());
    assert!(ok(store.list(0, 0), "list").is_empty());
    assert!(ok(store.query(&TraceFilter::new().with_limit(0)), "query").is_empty());
    assert_answer(
        "C4 empty pages",
        5,
        ok(store.list(usize::MAX, 0), "list").len(),
    );
}

/// `query` without a limit returns every match, however many.
pub fn c4_query_without_limit_returns_all(store: &dyn TraceStore) {
    fill(store, 300);
    assert_answer(
        "C4 query without limit returns all",
        300,
        ok(store.query(&TraceFilter::new()), "query").len(),
    );
    let with_steps = ok(store.query(&TraceFilter::new().with_min_steps(6)), "query");
    assert_answer(
        "C4 query without limit returns all",
        (0..300).filter(|i| i % 7 >= 6).count(),
        with_steps.len(),
    );
    assert_answer(
        "C4 query without limit returns all",
        300,
        ok(store.count(&TraceFilter::new()), "count"),
    );
}

/// The filter runs before the limit: a limit never hides matches behind non-matches.
pub fn c4_filter_before_limit(store: &dyn TraceStore) {
    for i in 0..20 {
        let steps = if i % 5 == 0 { 3 } else { 0 };
        ok(store.save(&trace(&format!("r{i:02}"), i, steps)), "save");
    }
    let filter = TraceFilter::new().with_min_steps(1).with_limit(2);
    assert_answer(
        "C4 filter before limit",
        ["r15", "r10"],
        ids(&ok(store.query(&filter), "query")),
    );
    let filter = TraceFilter::new()
        .with_min_steps(1)
        .with_offset(2)
        .with_limit(5);
    assert_answer(
        "C4 filter before limit",
        ["r05", "r00"],
        ids(&ok(store.query(&filter), "query")),
    );
}

/// The cursor is strict, ties are broken by run_id, and offset and limit apply after it.
pub fn c4_cursor_is_strict(store: &dyn TraceStore) {
    for run_id in ["a", "b", "c", "d"] {
        ok(store.save(&trace(run_id, 5, 1)), "save");
    }
    ok(store.save(&trace("later", 6, 1)), "save");
    ok(store.save(&trace("earlier", 4, 1)), "save");
    let after =
        |run_id: &str, micros| TraceFilter::new().with_after(Cursor::new(at(micros), run_id));
    assert_answer(
        "C4 cursor is strict",
        ["b", "a", "earlier"],
        ids(&ok(store.query(&after("c", 5)), "query")),
    );
    assert_answer(
        "C4 cursor is strict",
        ["d", "c", "b", "a", "earlier"],
        ids(&ok(store.query(&after("later", 6)), "query")),
    );
    assert_answer(
        "C4 cursor is strict",
        ["d", "c", "b", "a", "earlier"],
        ids(&ok(store.query(&after("zzz", 5)), "query")),
    );
    assert_answer(
        "C4 cursor is strict",
        ["a"],
        ids(&ok(
            store.query(&after("c", 5).with_offset(1).with_limit(1)),
            "query",
        )),
    );
    assert!(ok(store.query(&after("earlier", 4)), "query").is_empty());
}

/// Paging by cursor while other writes happen neither skips nor repeats an unchanged trace.
pub fn c4_keyset_paging_during_writes(store: &dyn TraceStore) {
    let original: Vec<_> = (0..40)
        .map(|i| trace(&format!("o{i:02}"), i * 10, 1))
        .collect();
    ok(store.save_many(&original), "save_many");
    let mut seen: Vec<String> = Vec::new();
    let mut deleted: HashSet<String> = HashSet::new();
    let mut after: Option<Cursor> = None;
    let mut round = 0i64;
    loop {
        let mut filter = TraceFilter::new().with_limit(6);
        filter.after = after.clone();
        let page = ok(store.query(&filter), "query page");
        if page.is_empty() {
            break;
        }
        after = page.last().map(|s| s.cursor());
        seen.extend(page.iter().map(|s| s.run_id.clone()));
        // Between pages: a newer trace, one in the middle of the unseen range, a tie
        // with an unseen trace, and a delete of an unseen trace.
        round += 1;
        ok(
            store.save(&trace(&format!("new{round}"), 1_000 + round, 1)),
            "save newer",
        );
        ok(
            store.save(&trace(&format!("mid{round}"), 205 - round, 1)),
            "save middle",
        );
        ok(
            store.save(&trace(&format!("o05-tie{round}"), 50, 1)),
            "save tie",
        );
        if let Some(victim) = original
            .iter()
            .map(|t| &t.run_id)
            .find(|id| !seen.contains(id) && !deleted.contains(*id))
            .filter(|_| round % 2 == 0)
        {
            assert!(ok(store.delete(victim), "delete"));
            deleted.insert(victim.clone());
        }
        assert!(round < 100, "paging does not terminate");
    }
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_answer(
        &format!("C4 keyset paging during writes: a trace was returned twice: {seen:?}"),
        seen.len(),
        unique.len(),
    );
    for t in &original {
        if !deleted.contains(&t.run_id) {
            assert!(
                seen.contains(&t.run_id),
                "unchanged trace {} was skipped",
                t.run_id
            );
        }
    }
}
