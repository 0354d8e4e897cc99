//! C11: bad input is a typed error and writes nothing; lookups of missing ids are typed.

use trace_store_core::{Error, StepKind, TraceFilter, TraceStore};

use crate::fixtures::{
    assert_answer, assert_invalid, assert_not_found, invalid_run_ids, ok, trace,
};

fn assert_unchanged(store: &dyn TraceStore, expected: usize) {
    assert_eq!(
        ok(store.list(100, 0), "list").len(),
        expected,
        "bad input changed the store"
    );
    assert_eq!(
        ok(store.count(&TraceFilter::new()), "count"),
        expected as u64
    );
}

/// Empty, too long and control-character run_ids are rejected by save and save_many.
pub fn c11_invalid_run_ids_rejected(store: &dyn TraceStore) {
    ok(store.save(&trace("existing", 1, 1)), "save");
    for run_id in invalid_run_ids() {
        assert_invalid(
            store.save(&trace(&run_id, 2, 1)),
            &format!("save({run_id:?})"),
        );
        assert_invalid(
            store.save_many(&[trace("fine", 3, 1), trace(&run_id, 2, 1)]),
            &format!("save_many with {run_id:?}"),
        );
    }
    assert_unchanged(store, 1);
}

/// `save_many` validates every trace before writing any.
pub fn c11_save_many_is_validated_first(store: &dyn TraceStore) {
    let mut newer = trace("newer", 3, 1);
    newer.schema_version = 2;
    let batches = [
        vec![trace("a", 1, 1), trace("", 2, 1)],
        vec![trace("a", 1, 1), newer],
        vec![trace("b", 1, 1), trace("c", 1, 1), trace("bad\n", 1, 1)],
    ];
    for batch in &batches {
        assert!(
            store.save_many(batch).is_err(),
            "save_many accepted a bad batch"
        );
        assert_unchanged(store, 0);
    }
    assert_answer(
        "C11 save many is validated first",
        0,
        ok(store.save_many(&[]), "save_many of nothing").len(),
    );
}

/// A trace from a newer schema is `UnsupportedVersion` and is not written.
pub fn c11_newer_schema_rejected(store: &dyn TraceStore) {
    let mut newer = trace("newer", 1, 1);
    newer.schema_version = trace_store_core::SCHEMA_VERSION + 1;
    match store.save(&newer) {
        Err(Error::UnsupportedVersion { found, supported }) => assert_answer(
            "C11 newer schema rejected",
            (newer.schema_version, trace_store_core::SCHEMA_VERSION),
            (found, supported),
        ),
        other => panic!("expected UnsupportedVersion, got {other:?}"),
    }
    assert_unchanged(store, 0);
}

/// A step kind `Other` spelling a known kind is rejected (it would not read back equal).
pub fn c11_ambiguous_step_kind_rejected(store: &dyn TraceStore) {
    let mut t = trace("ambiguous", 1, 2);
    t.steps[1].kind = StepKind::Other("tool_call".into());
    assert_invalid(store.save(&t), "save with Other(\"tool_call\")");
    assert_unchanged(store, 0);
}

/// Loading a missing id is `NotFound` naming it, for any string, valid or not.
pub fn c11_load_missing_is_not_found(store: &dyn TraceStore) {
    ok(store.save(&trace("present", 1, 1)), "save");
    for run_id in [
        "absent",
        "PRESENT",
        "present\0",
        "",
        "*",
        "%",
        "present' OR '1'='1",
    ] {
        assert_not_found(store.load(run_id), run_id);
    }
    let huge = "x".repeat(10_000);
    assert_not_found(store.load(&huge), &huge);
}
