//! C9: handles on the same location, in one process or two, see each other's writes.

use std::collections::HashSet;

use trace_store_core::{TraceFilter, TraceStore};

use crate::Durable;
use crate::child::child_trace;
use crate::fixtures::{assert_answer, assert_not_found, ids, ok, trace};

/// Two handles in one process: saves, upserts and deletes of one are seen by the other.
pub fn c9_two_handles_one_process(location: &Durable<'_>) {
    let a = location.open();
    let b = location.open();
    let first = trace("shared", 1, 1).with_metadata("v", 1);
    ok(a.save(&first), "save through a");
    assert_answer(
        "C9 two handles one process",
        first,
        ok(b.load("shared"), "load through b"),
    );
    assert_answer(
        "C9 two handles one process",
        ["shared"],
        ids(&ok(b.list(10, 0), "list through b")),
    );
    let second = trace("shared", 2, 3).with_metadata("v", 2);
    ok(b.save(&second), "upsert through b");
    assert_answer(
        "C9 two handles one process",
        second,
        ok(a.load("shared"), "load through a"),
    );
    assert_answer(
        "C9 two handles one process",
        1,
        ok(
            a.count(&TraceFilter::new().with_metadata("v", 2)),
            "count through a",
        ),
    );
    assert_answer(
        "C9 two handles one process",
        0,
        ok(
            a.count(&TraceFilter::new().with_metadata("v", 1)),
            "count through a",
        ),
    );
    ok(
        a.save_many(&[trace("x", 3, 1), trace("y", 4, 1)]),
        "save_many through a",
    );
    assert_answer(
        "C9 two handles one process",
        ["y", "x", "shared"],
        ids(&ok(b.list(10, 0), "list through b")),
    );
    assert!(ok(b.delete("shared"), "delete through b"));
    assert_not_found(a.load("shared"), "shared");
    assert_answer(
        "C9 two handles one process",
        ["y", "x"],
        ids(&ok(a.list(10, 0), "list through a")),
    );
    drop(a);
    let c = location.open();
    assert_answer(
        "C9 two handles one process",
        ["y", "x"],
        ids(&ok(c.list(10, 0), "list after reopen")),
    );
}

/// Two processes writing to the same location at the same time lose nothing, and a
/// handle opened before they wrote sees their traces.
pub fn c9_two_processes_concurrent_writes(location: &Durable<'_>) {
    const EACH: u64 = 40;
    let early = location.open();
    ok(
        early.save(&trace("before", 0, 1)),
        "save before the children",
    );
    let first = location.spawn_writer("p1", EACH);
    let second = location.spawn_writer("p2", EACH);
    let mut acked = first.finish();
    acked.extend(second.finish());
    assert_answer(
        "C9 two processes concurrent writes: every child save was acknowledged",
        2 * EACH,
        acked.len() as u64,
    );
    for store in [early, location.open()] {
        let listed = ok(store.list(usize::MAX, 0), "list");
        let listed: HashSet<&str> = ids(&listed).into_iter().collect();
        for run_id in &acked {
            assert!(
                listed.contains(run_id.as_str()),
                "acknowledged {run_id} is missing"
            );
        }
        assert!(listed.contains("before"));
        assert_answer(
            "C9 two processes concurrent writes",
            2 * EACH + 1,
            listed.len() as u64,
        );
        for (prefix, i) in [("p1", 0), ("p2", EACH - 1)] {
            let expected = child_trace(prefix, i);
            assert_answer(
                "C9 two processes concurrent writes",
                &expected,
                &ok(store.load(&expected.run_id), "load"),
            );
        }
        assert_answer(
            "C9 two processes concurrent writes",
            EACH,
            ok(
                store.count(&TraceFilter::new().with_metadata("writer", "p2")),
                "count",
            ),
        );
    }
}
