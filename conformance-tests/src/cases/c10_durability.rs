//! C10: a save that returned Ok survives SIGKILL; reopening never fails on the remains.

use trace_store_core::{TraceFilter, TraceStore};

use crate::Durable;
use crate::child::child_trace;
use crate::fixtures::{assert_answer, ok, trace};

/// What a dropped handle saved is there after reopening.
pub fn c10_reopen_after_drop(location: &Durable<'_>) {
    let store = location.open();
    let saved = crate::fixtures::everything("durable");
    ok(store.save(&saved), "save");
    ok(store.save(&trace("gone", 2, 1)), "save");
    assert!(ok(store.delete("gone"), "delete"));
    drop(store);
    let reopened = location.open();
    assert_answer(
        "C10 reopen after drop",
        saved,
        ok(reopened.load("durable"), "load after reopen"),
    );
    assert!(
        reopened.load("gone").is_err(),
        "a delete survives reopening"
    );
    assert_answer(
        "C10 reopen after drop",
        1,
        ok(reopened.count(&TraceFilter::new()), "count"),
    );
}

/// A writer killed with SIGKILL at random moments loses none of its acknowledged saves,
/// and every reopen works, round after round on the same location.
pub fn c10_acknowledged_saves_survive_sigkill(location: &Durable<'_>) {
    // Kill after a varying number of acknowledgements; the writer is usually in the
    // middle of its next save when the signal lands.
    let mut seed = location.dir().as_os_str().len() as u64 * 7919 + 17;
    let mut total = 0;
    for round in 0..4 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let kill_after = 5 + (seed >> 33) as usize % 60;
        let prefix = format!("crash{round}");
        let mut writer = location.spawn_writer(&prefix, 0);
        assert!(
            writer.wait_for_acks(kill_after),
            "writer {prefix} died before it was killed"
        );
        let acked = writer.kill();
        let store = location.open();
        for (i, run_id) in acked.iter().enumerate() {
            let expected = child_trace(&prefix, i as u64);
            assert_answer(
                "C10 acknowledged saves survive sigkill",
                &expected.run_id,
                run_id,
            );
            match store.load(run_id) {
                Ok(loaded) => assert!(loaded == expected, "{run_id} differs after the crash"),
                Err(error) => panic!("acknowledged {run_id} lost after SIGKILL: {error}"),
            }
        }
        total += acked.len() as u64;
        let listed = ok(store.count(&TraceFilter::new()), "count after crash");
        assert!(
            listed >= total,
            "{listed} traces listed, {total} acknowledged"
        );
        ok(
            store.save(&trace(&format!("after{round}"), 0, 1)),
            "save after the crash",
        );
        total += 1;
    }
}
