//! C8: threads sharing one store lose nothing.

use std::collections::HashSet;

use trace_store_core::{TraceFilter, TraceStore};

use crate::fixtures::{assert_answer, ids, ok, trace};

const THREADS: usize = 8;
const PER_THREAD: usize = 20;

/// 8 threads saving, loading, querying and deleting their own ids.
pub fn c8_threads_distinct_ids(store: &dyn TraceStore) {
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            scope.spawn(move || {
                for i in 0..PER_THREAD {
                    let run_id = format!("t{t}-{i:02}");
                    let saved = trace(&run_id, (i * THREADS + t) as i64, 1 + i % 3)
                        .with_metadata("thread", t);
                    ok(store.save(&saved), "save");
                    assert_answer(
                        "C8 threads distinct ids: own save is visible",
                        saved,
                        ok(store.load(&run_id), "load"),
                    );
                    let mine = ok(
                        store.query(&TraceFilter::new().with_metadata("thread", t)),
                        "query",
                    );
                    assert!(
                        ids(&mine).contains(&run_id.as_str()),
                        "own save is queryable"
                    );
                    if i % 4 == 3 {
                        assert!(ok(store.delete(&run_id), "delete"));
                    }
                }
            });
        }
    });
    let listed = ok(store.list(usize::MAX, 0), "list");
    let expected = THREADS * (PER_THREAD - PER_THREAD / 4);
    assert_answer(
        "C8 threads distinct ids: lost or resurrected traces",
        expected,
        listed.len(),
    );
    let unique: HashSet<&str> = ids(&listed).into_iter().collect();
    assert_answer(
        "C8 threads distinct ids: a run_id is listed twice",
        expected,
        unique.len(),
    );
    for t in 0..THREADS {
        let mine = ok(
            store.count(&TraceFilter::new().with_metadata("thread", t)),
            "count",
        );
        assert_answer(
            &format!("C8 threads distinct ids: thread {t}"),
            (PER_THREAD - PER_THREAD / 4) as u64,
            mine,
        );
    }
}

/// Racing saves of one run_id leave exactly one of them, consistently in every index.
pub fn c8_racing_saves_of_one_id(store: &dyn TraceStore) {
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            scope.spawn(move || {
                for round in 0..10 {
                    let version = trace("contested", (t * 10 + round) as i64, t + 1)
                        .with_metadata("writer", t);
                    ok(store.save(&version), "save");
                }
            });
        }
    });
    let winner = ok(store.load("contested"), "load");
    let Some(writer) = winner.metadata.get("writer").and_then(|w| w.as_u64()) else {
        panic!("the stored trace lost its metadata: {winner:?}");
    };
    assert_answer(
        "C8 racing saves of one id: body mixes two saves",
        writer + 1,
        winner.steps.len() as u64,
    );
    let listed = ok(store.list(100, 0), "list");
    assert_answer(
        "C8 racing saves of one id: one run_id, listed once",
        ["contested"],
        ids(&listed),
    );
    assert_answer(
        "C8 racing saves of one id: summary and body disagree",
        winner.created_at,
        listed[0].created_at,
    );
    for t in 0..THREADS {
        let hits = ok(
            store.count(&TraceFilter::new().with_metadata("writer", t)),
            "count",
        );
        assert_answer(
            &format!("C8 racing saves of one id: metadata index of writer {t}"),
            u64::from(t as u64 == writer),
            hits,
        );
    }
    let by_steps = ok(
        store.count(
            &TraceFilter::new()
                .with_min_steps(winner.steps.len())
                .with_max_steps(winner.steps.len()),
        ),
        "count",
    );
    assert_answer(
        "C8 racing saves of one id: steps index disagrees with the body",
        1,
        by_steps,
    );
}
