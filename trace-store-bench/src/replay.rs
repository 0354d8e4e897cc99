//! Replays the plan on one backend, timing every call and checking every answer
//! against the brute-force reference (outside the timed region).

use std::time::Instant;

use serde::Serialize;
use trace_store::{Trace, TraceFilter, TraceStore};

use crate::BenchResult;
use crate::backends::{Backend, Env, StoreHandle};
use crate::reference::{Reference, same_rows};
use crate::timing::{OpStats, Samples};
use crate::workload::{EXPECTED_10K_SINCE_ROWS, EXPECTED_10K_USER_ROWS, Workload};

/// Times a durable store is reopened to time `open` (index build for JSONL).
const REOPENS: usize = 3;

/// One backend's replay.
#[derive(Debug, Serialize)]
pub(crate) struct ReplayRun {
    pub(crate) backend: Backend,
    pub(crate) ops: Vec<OpStats>,
    /// Size on disk after the one-by-one saves (durable backends).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) disk_bytes: Option<u64>,
    /// What was verified, in words.
    pub(crate) checked: Vec<String>,
}

impl ReplayRun {
    pub(crate) fn op(&self, name: &str) -> Option<&OpStats> {
        self.ops.iter().find(|o| o.op == name)
    }
}

fn context(backend: Backend, what: &str) -> impl Fn(crate::BenchError) -> crate::BenchError {
    move |e| format!("{backend}: {what}: {e}").into()
}

/// Runs the whole plan on a fresh store of `backend`.
pub(crate) fn replay(
    env: &Env,
    backend: Backend,
    wl: &Workload,
    reference: &Reference,
) -> BenchResult<ReplayRun> {
    let name = "replay";
    env.remove(backend, name)?;
    let mut run = ReplayRun {
        backend,
        ops: Vec::new(),
        disk_bytes: None,
        checked: Vec::new(),
    };
    let result = replay_into(env, backend, name, wl, reference, &mut run);
    let cleanup = env.remove(backend, name);
    result?;
    cleanup?;

    let many = "replay-many";
    env.remove(backend, many)?;
    let result = save_many(env, backend, many, wl, reference, &mut run);
    let cleanup = env.remove(backend, many);
    result?;
    cleanup?;
    Ok(run)
}

fn replay_into(
    env: &Env,
    backend: Backend,
    name: &str,
    wl: &Workload,
    reference: &Reference,
    run: &mut ReplayRun,
) -> BenchResult<()> {
    let mut handle = env.open(backend, name).map_err(context(backend, "open"))?;

    // 1. Save each trace, one call per trace, in file order.
    let mut samples = Samples::with_capacity(wl.traces.len());
    for trace in &wl.traces {
        let id = samples
            .time(|| handle.store().save(trace))
            .map_err(|e| context(backend, "save")(e.into()))?;
        if id != trace.run_id {
            return Err(format!("{backend}: save returned {id:?} for {:?}", trace.run_id).into());
        }
    }
    run.ops.push(samples.stats("save"));
    run.disk_bytes = env.disk_bytes(backend, name);

    // The index a durable store builds (or reads) when it opens a full file.
    if backend.reopens() {
        let mut samples = Samples::with_capacity(REOPENS);
        for _ in 0..REOPENS {
            drop(handle);
            handle = samples
                .time(|| env.open(backend, name))
                .map_err(context(backend, "reopen"))?;
        }
        run.ops.push(samples.stats("open"));
    }
    let store = handle.store();
    check_count(store, &TraceFilter::new(), reference.len(), "count(all)")
        .map_err(context(backend, "after the saves"))?;
    run.checked
        .push(format!("count() = {} after the saves", reference.len()));

    // 2. list(50).
    let want = reference.list(50, 0);
    let mut samples = Samples::with_capacity(wl.plan.reps.list_50);
    for _ in 0..wl.plan.reps.list_50 {
        let rows = samples
            .time(|| store.list(50, 0))
            .map_err(|e| context(backend, "list(50)")(e.into()))?;
        same_rows(&format!("{backend}: list(50)"), &rows, &want)?;
    }
    run.ops.push(samples.stats("list_50").with_rows(want.len()));
    run.checked
        .push("every list(50) equals the reference page".into());

    // 3. One metadata query per planned user.
    let users = &wl.plan.query_users[..wl.plan.reps.query_user.min(wl.plan.query_users.len())];
    let mut samples = Samples::with_capacity(users.len());
    let mut total_rows = 0;
    for (i, user) in users.iter().enumerate() {
        let filter = TraceFilter::new().with_metadata("user_id", user.as_str());
        let want = reference.by_user(user);
        let rows = samples
            .time(|| store.query(&filter))
            .map_err(|e| context(backend, "query(user_id)")(e.into()))?;
        same_rows(&format!("{backend}: query user_id={user}"), &rows, &want)?;
        if wl.is_full_10k()
            && i < EXPECTED_10K_USER_ROWS.len()
            && rows.len() != EXPECTED_10K_USER_ROWS[i]
        {
            return Err(format!(
                "{backend}: user query {i} ({user}) returned {} rows; selectools' workload expects {}",
                rows.len(),
                EXPECTED_10K_USER_ROWS[i]
            )
            .into());
        }
        if i < 5 {
            check_count(
                store,
                &filter,
                want.len(),
                &format!("count(user_id={user})"),
            )
            .map_err(context(backend, "count"))?;
        }
        total_rows += rows.len();
    }
    let mean_rows = total_rows / users.len().max(1);
    run.ops
        .push(samples.stats("query_user").with_rows(mean_rows));
    run.checked.push(format!(
        "{} user_id queries equal the reference (mean {mean_rows} rows){}",
        users.len(),
        if wl.is_full_10k() {
            ", first five 119/102/99/107/115 rows"
        } else {
            ""
        }
    ));

    // 4. since + min_steps.
    let filter = TraceFilter::new()
        .with_since(wl.since)
        .with_min_steps(wl.plan.min_steps);
    let want = reference.since_min_steps(wl.since, wl.plan.min_steps);
    let mut samples = Samples::with_capacity(wl.plan.reps.query_since_minsteps);
    for _ in 0..wl.plan.reps.query_since_minsteps {
        let rows = samples
            .time(|| store.query(&filter))
            .map_err(|e| context(backend, "query(since, min_steps)")(e.into()))?;
        same_rows(&format!("{backend}: query since+min_steps"), &rows, &want)?;
    }
    if wl.is_full_10k() && want.len() != EXPECTED_10K_SINCE_ROWS {
        return Err(format!(
            "{backend}: the since query returned {} rows; selectools' workload expects {EXPECTED_10K_SINCE_ROWS}",
            want.len()
        )
        .into());
    }
    check_count(store, &filter, want.len(), "count(since+min_steps)")
        .map_err(context(backend, "count"))?;
    run.ops
        .push(samples.stats("query_since_minsteps").with_rows(want.len()));
    run.checked.push(format!(
        "since+min_steps query and count = {} rows, equal to the reference",
        want.len()
    ));

    // 5. Loads.
    let mut samples = Samples::with_capacity(wl.load_ids.len());
    for id in &wl.load_ids {
        let loaded = samples
            .time(|| store.load(id))
            .map_err(|e| context(backend, &format!("load({id})"))(e.into()))?;
        let want = reference
            .index_of(id)
            .map(|i| &wl.traces[i])
            .ok_or_else(|| format!("load id {id:?} is not in the workload"))?;
        same_trace(backend, &loaded, want)?;
    }
    run.ops.push(samples.stats("load"));
    run.checked.push(format!(
        "{} loads return the saved trace exactly",
        wl.load_ids.len()
    ));

    // 6. Deletes.
    let mut after = Reference::new(&wl.traces);
    let mut samples = Samples::with_capacity(wl.delete_ids.len());
    for id in &wl.delete_ids {
        let existed = samples
            .time(|| store.delete(id))
            .map_err(|e| context(backend, &format!("delete({id})"))(e.into()))?;
        let expected = after.remove(id);
        if existed != expected {
            return Err(format!(
                "{backend}: delete({id:?}) returned {existed}, expected {expected}"
            )
            .into());
        }
    }
    run.ops.push(samples.stats("delete"));
    check_after_deletes(store, wl, &after).map_err(context(backend, "after the deletes"))?;
    run.checked.push(format!(
        "{} deletes: gone from load, list and count",
        wl.delete_ids.len()
    ));

    // 7. JSONL only: rewrite the file without the dead records.
    if let StoreHandle::Jsonl(jsonl) = &handle {
        let mut samples = Samples::with_capacity(1);
        samples
            .time(|| jsonl.compact())
            .map_err(|e| context(backend, "compact")(e.into()))?;
        run.ops.push(samples.stats("compact"));
        check_after_deletes(jsonl, wl, &after).map_err(context(backend, "after compact"))?;
        drop(handle);
        let reopened = env.open(backend, name)?;
        check_after_deletes(reopened.store(), wl, &after)
            .map_err(context(backend, "reopened after compact"))?;
        run.checked
            .push("compact keeps every live trace (also after reopening)".into());
    }
    Ok(())
}

/// `save_many` of every trace into an empty store: one call, timed as a whole.
fn save_many(
    env: &Env,
    backend: Backend,
    name: &str,
    wl: &Workload,
    reference: &Reference,
    run: &mut ReplayRun,
) -> BenchResult<()> {
    let handle = env.open(backend, name).map_err(context(backend, "open"))?;
    let store = handle.store();
    let mut samples = Samples::with_capacity(1);
    let ids = samples
        .time(|| store.save_many(&wl.traces))
        .map_err(|e| context(backend, "save_many")(e.into()))?;
    run.ops.push(samples.stats("save_many"));
    if ids.len() != wl.traces.len() || ids.iter().zip(&wl.traces).any(|(id, t)| *id != t.run_id) {
        return Err(format!("{backend}: save_many did not return the run_ids in order").into());
    }
    check_count(store, &TraceFilter::new(), reference.len(), "count(all)")
        .map_err(context(backend, "after save_many"))?;
    same_rows(
        &format!("{backend}: list(50) after save_many"),
        &store.list(50, 0)?,
        &reference.list(50, 0),
    )?;
    run.checked
        .push("save_many of all: count and list(50) equal the reference".into());
    Ok(())
}

fn check_count(
    store: &dyn TraceStore,
    filter: &TraceFilter,
    want: usize,
    what: &str,
) -> BenchResult<()> {
    let got = store.count(filter)?;
    if got != want as u64 {
        return Err(format!("{what} is {got}, the reference has {want}").into());
    }
    Ok(())
}

fn check_after_deletes(
    store: &dyn TraceStore,
    wl: &Workload,
    after: &Reference,
) -> BenchResult<()> {
    for id in &wl.delete_ids {
        match store.load(id) {
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(format!("load({id:?}) of a deleted trace failed: {e}").into()),
            Ok(_) => return Err(format!("load({id:?}) still finds a deleted trace").into()),
        }
    }
    check_count(store, &TraceFilter::new(), after.len(), "count(all)")?;
    same_rows("list(50)", &store.list(50, 0)?, &after.list(50, 0))?;
    let all = store.query(&TraceFilter::new())?;
    same_rows("query(all)", &all, &after.list(usize::MAX, 0))
}

fn same_trace(backend: Backend, got: &Trace, want: &Trace) -> BenchResult<()> {
    if got == want {
        Ok(())
    } else {
        Err(format!(
            "{backend}: load({:?}) returned a trace that differs from the one saved",
            want.run_id
        )
        .into())
    }
}

/// Wall time of a closure, for one-off phases (imports, generation).
pub(crate) fn elapsed_ms<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed().as_secs_f64() * 1e3)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use trace_store::{MemoryStore, TraceSummary};

    use super::*;
    use crate::workload::Workload;

    fn sample() -> Workload {
        let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata");
        Workload::from_files(
            &testdata.join("selectools-200.jsonl"),
            &testdata.join("selectools-200-plan.json"),
            None,
        )
        .expect("the committed sample imports")
    }

    /// A memory store with one deliberate bug, to prove the replay catches it.
    #[derive(Debug, Default)]
    struct Faulty<const BUG: u8>(MemoryStore);

    const DROPS_LAST_ROW: u8 = 1;
    const ASCENDING_LIST: u8 = 2;
    const DELETE_KEEPS: u8 = 3;
    const LOSSY_LOAD: u8 = 4;
    const STALE_COUNT: u8 = 5;

    impl<const BUG: u8> TraceStore for Faulty<BUG> {
        fn save(&self, trace: &Trace) -> trace_store::Result<String> {
            self.0.save(trace)
        }
        fn load(&self, run_id: &str) -> trace_store::Result<Trace> {
            let mut trace = self.0.load(run_id)?;
            if BUG == LOSSY_LOAD && run_id.starts_with('a') {
                trace.steps.pop();
            }
            Ok(trace)
        }
        fn list(&self, limit: usize, offset: usize) -> trace_store::Result<Vec<TraceSummary>> {
            let mut rows = self.0.list(limit, offset)?;
            if BUG == ASCENDING_LIST {
                rows.reverse();
            }
            Ok(rows)
        }
        fn query(&self, filter: &TraceFilter) -> trace_store::Result<Vec<TraceSummary>> {
            let mut rows = self.0.query(filter)?;
            if BUG == DROPS_LAST_ROW && rows.len() > 1 && filter.since.is_some() {
                rows.pop();
            }
            Ok(rows)
        }
        fn delete(&self, run_id: &str) -> trace_store::Result<bool> {
            if BUG == DELETE_KEEPS {
                return Ok(self.0.load(run_id).is_ok());
            }
            self.0.delete(run_id)
        }
        fn count(&self, filter: &TraceFilter) -> trace_store::Result<u64> {
            let n = self.0.count(filter)?;
            Ok(if BUG == STALE_COUNT && !filter.metadata_match.is_empty() {
                n + 1
            } else {
                n
            })
        }
    }

    type Factory = fn() -> Box<dyn TraceStore>;

    fn run_with(factory: Factory) -> BenchResult<ReplayRun> {
        let wl = sample();
        let reference = Reference::new(&wl.traces);
        let mut env = Env::new(None, trace_store::Durability::Flush, false, false)?;
        env.memory_factory = Some(factory);
        replay(&env, Backend::Memory, &wl, &reference)
    }

    #[test]
    fn a_correct_store_passes_every_check() {
        let run = run_with(|| Box::new(MemoryStore::unbounded())).expect("memory store is correct");
        let names: Vec<&str> = run.ops.iter().map(|o| o.op.as_str()).collect();
        assert_eq!(
            names,
            [
                "save",
                "list_50",
                "query_user",
                "query_since_minsteps",
                "load",
                "delete",
                "save_many"
            ]
        );
        assert_eq!(run.op("save").map(|o| o.count), Some(200));
        assert_eq!(run.op("load").map(|o| o.count), Some(1000));
        assert_eq!(
            run.op("query_since_minsteps").and_then(|o| o.rows),
            Some(101)
        );
    }

    #[test]
    fn every_kind_of_wrong_answer_fails_the_replay() {
        let cases: [(Factory, &str); 5] = [
            (
                || Box::new(Faulty::<DROPS_LAST_ROW>::default()),
                "since+min_steps",
            ),
            (|| Box::new(Faulty::<ASCENDING_LIST>::default()), "list(50)"),
            (
                || Box::new(Faulty::<DELETE_KEEPS>::default()),
                "deleted trace",
            ),
            (
                || Box::new(Faulty::<LOSSY_LOAD>::default()),
                "differs from the one saved",
            ),
            (
                || Box::new(Faulty::<STALE_COUNT>::default()),
                "count(user_id",
            ),
        ];
        for (factory, expected) in cases {
            let err = run_with(factory)
                .expect_err("a wrong store must fail")
                .to_string();
            assert!(err.contains(expected), "{expected:?} not in {err}");
        }
    }
}
