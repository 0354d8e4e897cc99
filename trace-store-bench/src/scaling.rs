//! How cost grows with store size: stores of increasing size made of clones of the
//! workload's own traces (see [`crate::clones`]), filled with `save_many`, the same
//! reads and writes timed at each size and every answer checked.

use std::time::Instant;

use serde::Serialize;
use serde_json::Value;
use trace_store::{Timestamp, TraceFilter, TraceStore};

use crate::BenchResult;
use crate::backends::{Backend, Env};
use crate::clones::{self, Clones, NEEDLE_USER, SplitMix64};
use crate::timing::{OpStats, Samples};

/// Traces per `save_many` call while filling a store (bounds the memory of cloning).
const CHUNK: usize = 10_000;

/// Repetitions per size.
const LIST_REPS: usize = 100;
const QUERY_REPS: usize = 20;
const LOAD_REPS: usize = 200;
const SAVE_REPS: usize = 200;
const DELETE_REPS: usize = 200;
const OPEN_REPS: usize = 3;
/// The since query selects about this many of the newest traces at every size.
const SINCE_ROWS: usize = 100;
/// A size is skipped when its estimated memory passes this share of what is available,
/// or its estimated disk this share of what is free (the machine is shared).
const RESOURCE_SHARE: f64 = 0.7;

/// One operation measured at every size, and how it grew.
#[derive(Debug, Serialize)]
pub(crate) struct ScalingOp {
    pub(crate) backend: Backend,
    pub(crate) op: String,
    pub(crate) points: Vec<ScalingPoint>,
    /// `log(t_last / t_first) / log(n_last / n_first)` on medians: 0 is flat, 1 linear.
    pub(crate) exponent: f64,
    pub(crate) verdict: String,
}

/// One size.
#[derive(Debug, Serialize)]
pub(crate) struct ScalingPoint {
    pub(crate) n: usize,
    #[serde(flatten)]
    pub(crate) stats: OpStats,
}

/// Fill times and footprints, for context; or why a size was skipped.
#[derive(Debug, Serialize)]
pub(crate) struct FillTime {
    pub(crate) backend: Backend,
    pub(crate) n: usize,
    /// Wall time of all the `save_many` calls that filled the store.
    pub(crate) seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) disk_bytes: Option<u64>,
    /// Growth of the process's resident memory across the fill, per trace (memory: the
    /// store; JSONL: its index; SQLite: mostly page cache). Freed memory of a smaller
    /// size may be reused, so it can read low after the first size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) rss_bytes_per_trace: Option<u64>,
    /// Set when the size was not run, with the reason (the other fields are zero).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) skipped: Option<String>,
}

/// Measures every backend at every size; returns the per-op growth and the fills.
pub(crate) fn run(
    env: &Env,
    backends: &[Backend],
    sizes: &[usize],
    base: &[trace_store::Trace],
    progress: &dyn Fn(&str),
) -> BenchResult<(Vec<ScalingOp>, Vec<FillTime>)> {
    let clones = Clones::new(base)?;
    let mut ops: Vec<ScalingOp> = Vec::new();
    let mut fills = Vec::new();
    for &backend in backends {
        let mut per_op: Vec<(String, Vec<ScalingPoint>)> = Vec::new();
        let (mut rss_per_trace, mut disk_per_trace) = (0u64, 0u64);
        for &n in sizes {
            if let Some(reason) = too_big(env, n, rss_per_trace, disk_per_trace) {
                progress(&format!("scaling: {backend} n={n} skipped: {reason}"));
                fills.push(FillTime {
                    backend,
                    n,
                    seconds: 0.0,
                    disk_bytes: None,
                    rss_bytes_per_trace: None,
                    skipped: Some(reason),
                });
                continue;
            }
            progress(&format!("scaling: {backend} n={n}"));
            let name = format!("scale-{n}");
            env.remove(backend, &name)?;
            let result = measure(env, backend, &name, &clones, n);
            let disk_bytes = env.disk_bytes(backend, &name);
            env.remove(backend, &name)?;
            let (stats, fill) = result.map_err(|e| format!("{backend} scaling n={n}: {e}"))?;
            rss_per_trace = rss_per_trace.max(fill.rss_per_trace.unwrap_or(0));
            disk_per_trace = disk_per_trace.max(disk_bytes.unwrap_or(0) / n.max(1) as u64);
            fills.push(FillTime {
                backend,
                n,
                seconds: fill.seconds,
                disk_bytes,
                rss_bytes_per_trace: fill.rss_per_trace,
                skipped: None,
            });
            for s in stats {
                let point = ScalingPoint { n, stats: s };
                match per_op.iter_mut().find(|(op, _)| *op == point.stats.op) {
                    Some((_, points)) => points.push(point),
                    None => per_op.push((point.stats.op.clone(), vec![point])),
                }
            }
        }
        for (op, points) in per_op {
            let (exponent, verdict) = growth(&points);
            ops.push(ScalingOp {
                backend,
                op,
                points,
                exponent,
                verdict,
            });
        }
    }
    Ok((ops, fills))
}

/// Why a store of `n` would not fit, judged from the per-trace footprint of the sizes
/// already run (none: the first size always runs).
fn too_big(env: &Env, n: usize, rss_per_trace: u64, disk_per_trace: u64) -> Option<String> {
    let gib = |b: f64| b / f64::from(1u32 << 30);
    let need_ram = (rss_per_trace * n as u64) as f64;
    if let Some(avail) = clones::available_memory_bytes()
        && need_ram > avail as f64 * RESOURCE_SHARE
    {
        return Some(format!(
            "needs about {:.1} GiB of memory ({rss_per_trace} B/trace measured at a smaller size), {:.1} GiB available",
            gib(need_ram),
            gib(avail as f64)
        ));
    }
    let need_disk = (disk_per_trace * n as u64) as f64;
    if let Some(free) = clones::free_disk_bytes(&env.path(""))
        && need_disk > free as f64 * RESOURCE_SHARE
    {
        return Some(format!(
            "needs about {:.1} GiB of disk, {:.1} GiB free",
            gib(need_disk),
            gib(free as f64)
        ));
    }
    None
}

fn growth(points: &[ScalingPoint]) -> (f64, String) {
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return (0.0, "no data".into());
    };
    if last.n <= first.n || first.stats.median_ms <= 0.0 || last.stats.median_ms <= 0.0 {
        return (0.0, "one size only".into());
    }
    let exponent =
        (last.stats.median_ms / first.stats.median_ms).ln() / (last.n as f64 / first.n as f64).ln();
    let shape = if exponent < 0.2 {
        "flat (index)"
    } else if exponent > 0.7 {
        "linear (scan)"
    } else {
        "sublinear"
    };
    (exponent, shape.to_string())
}

struct Fill {
    seconds: f64,
    rss_per_trace: Option<u64>,
}

/// What the store holds, for computing every expected answer by brute force.
struct Truth {
    /// `(created_at micros, index)` of every live trace, newest first.
    newest: Vec<(i64, usize)>,
}

/// Fills a store of `n` and times reads and writes on it.
fn measure(
    env: &Env,
    backend: Backend,
    name: &str,
    clones: &Clones<'_>,
    n: usize,
) -> BenchResult<(Vec<OpStats>, Fill)> {
    let rss_before = clones::rss_bytes();
    let mut handle = env.open(backend, name)?;
    let mut fill_ms = 0.0;
    let mut start = 0;
    while start < n {
        let end = (start + CHUNK).min(n);
        let chunk = (start..end)
            .map(|i| clones.trace(i, n))
            .collect::<BenchResult<Vec<_>>>()?;
        let began = Instant::now();
        handle.store().save_many(&chunk)?;
        fill_ms += began.elapsed().as_secs_f64() * 1e3;
        start = end;
    }
    let rss_per_trace = rss_before
        .zip(clones::rss_bytes())
        .map(|(a, b)| b.saturating_sub(a) / n.max(1) as u64);
    let mut newest: Vec<(i64, usize)> = (0..n).map(|i| (clones.created_us(i), i)).collect();
    newest.sort_unstable_by(|a, b| b.cmp(a));
    let truth = Truth { newest };
    let mut stats = Vec::new();

    if backend.reopens() {
        let mut samples = Samples::with_capacity(OPEN_REPS);
        for _ in 0..OPEN_REPS {
            drop(handle);
            handle = samples.time(|| env.open(backend, name))?;
        }
        stats.push(samples.stats("open"));
    }
    let store = handle.store();
    reads(store, clones, n, &truth, &mut stats)?;
    writes(store, clones, n, &mut stats)?;
    Ok((
        stats,
        Fill {
            seconds: fill_ms / 1e3,
            rss_per_trace,
        },
    ))
}

fn reads(
    store: &dyn TraceStore,
    clones: &Clones<'_>,
    n: usize,
    truth: &Truth,
    stats: &mut Vec<OpStats>,
) -> BenchResult<()> {
    let top: Vec<i64> = truth.newest.iter().take(50).map(|&(c, _)| c).collect();
    let mut samples = Samples::with_capacity(LIST_REPS);
    for _ in 0..LIST_REPS {
        let rows = samples.time(|| store.list(50, 0))?;
        check_order(&rows)?;
        let got: Vec<i64> = rows.iter().map(|r| r.created_at.as_micros()).collect();
        if got != top {
            return Err("list(50) is not the 50 newest traces".into());
        }
    }
    stats.push(samples.stats("list_50").with_rows(top.len()));

    let mut needles: Vec<String> = (0..n)
        .filter(|&i| clones::is_needle(i, n))
        .map(|i| clones.run_id(i))
        .collect();
    needles.sort();
    let filter = TraceFilter::new().with_metadata("user_id", NEEDLE_USER);
    let mut samples = Samples::with_capacity(QUERY_REPS);
    for _ in 0..QUERY_REPS {
        let rows = samples.time(|| store.query(&filter))?;
        check_order(&rows)?;
        let mut ids: Vec<String> = rows.iter().map(|s| s.run_id.clone()).collect();
        ids.sort();
        if ids != needles {
            return Err(format!(
                "needle query returned {} rows, not the {} needles",
                ids.len(),
                needles.len()
            )
            .into());
        }
    }
    stats.push(samples.stats("query_meta_needle").with_rows(needles.len()));

    // The newest SINCE_ROWS traces (more if the cut falls on a tie).
    let since_us = truth.newest[SINCE_ROWS.min(n) - 1].0;
    let want = truth.newest.iter().filter(|&&(c, _)| c >= since_us).count();
    let filter = TraceFilter::new().with_since(Timestamp::from_micros(since_us)?);
    let mut samples = Samples::with_capacity(QUERY_REPS);
    for _ in 0..QUERY_REPS {
        let rows = samples.time(|| store.query(&filter))?;
        check_rows("query since", rows.len(), want)?;
        check_order(&rows)?;
    }
    stats.push(samples.stats("query_since").with_rows(want));

    // One workload user within the newest workload-sized window: about as many rows
    // as the 10k replay's user query at every size, while the user's rows and the
    // window both grow with n.
    let user: Value = clones
        .user(0, n)
        .cloned()
        .ok_or("the first workload trace has no user_id")?;
    let window_us = truth.newest[clones.base_len().min(n) - 1].0;
    let want = truth
        .newest
        .iter()
        .filter(|&&(c, i)| c >= window_us && clones.user(i, n) == Some(&user))
        .count();
    let filter = TraceFilter::new()
        .with_metadata("user_id", user.clone())
        .with_since(Timestamp::from_micros(window_us)?);
    let mut samples = Samples::with_capacity(QUERY_REPS);
    for _ in 0..QUERY_REPS {
        let rows = samples.time(|| store.query(&filter))?;
        check_rows("query user_id + since", rows.len(), want)?;
        check_order(&rows)?;
    }
    stats.push(samples.stats("query_user_since").with_rows(want));

    let mut rng = SplitMix64(n as u64);
    let picks: Vec<usize> = (0..LOAD_REPS).map(|_| rng.below(n)).collect();
    // The same loads twice: the first pass finds what the store left in memory after
    // the fill, the second what it costs once the pages are cached. A store bigger
    // than the page cache shows the difference at 1M.
    for op in ["load", "load_again"] {
        let mut samples = Samples::with_capacity(LOAD_REPS);
        for &i in &picks {
            let id = clones.run_id(i);
            let trace = samples.time(|| store.load(&id))?;
            if trace != clones.trace(i, n)? {
                return Err(format!(
                    "load({id:?}) returned a trace that differs from the one saved"
                )
                .into());
            }
        }
        stats.push(samples.stats(op));
    }
    Ok(())
}

/// One-by-one saves of new clones, then deletes of existing traces, on the full store.
fn writes(
    store: &dyn TraceStore,
    clones: &Clones<'_>,
    n: usize,
    stats: &mut Vec<OpStats>,
) -> BenchResult<()> {
    let mut samples = Samples::with_capacity(SAVE_REPS);
    for i in n..n + SAVE_REPS {
        let trace = clones.trace(i, n)?;
        let id = samples.time(|| store.save(&trace))?;
        if id != trace.run_id {
            return Err(format!("save returned {id:?} for {:?}", trace.run_id).into());
        }
    }
    stats.push(samples.stats("save"));

    let mut rng = SplitMix64(!(n as u64));
    let mut victims = std::collections::BTreeSet::new();
    while victims.len() < DELETE_REPS.min(n) {
        victims.insert(rng.below(n));
    }
    let mut order: Vec<usize> = victims.into_iter().collect();
    // Deterministic shuffle, so deletes do not walk the store in id order.
    for k in (1..order.len()).rev() {
        order.swap(k, rng.below(k + 1));
    }
    let mut samples = Samples::with_capacity(order.len());
    for &i in &order {
        let id = clones.run_id(i);
        if !samples.time(|| store.delete(&id))? {
            return Err(format!("delete({id:?}) found nothing").into());
        }
    }
    stats.push(samples.stats("delete"));
    for &i in order.iter().take(10) {
        match store.load(&clones.run_id(i)) {
            Err(e) if e.is_not_found() => {}
            other => return Err(format!("a deleted trace still loads: {other:?}").into()),
        }
    }
    let live = store.count(&TraceFilter::new())?;
    check_rows(
        "count after saves and deletes",
        live as usize,
        n + SAVE_REPS - order.len(),
    )
}

fn check_rows(what: &str, got: usize, want: usize) -> BenchResult<()> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what} returned {got} rows, expected {want}").into())
    }
}

fn check_order(rows: &[trace_store::TraceSummary]) -> BenchResult<()> {
    let sorted = rows
        .windows(2)
        .all(|w| (w[0].created_at, &w[0].run_id) > (w[1].created_at, &w[1].run_id));
    if sorted {
        Ok(())
    } else {
        Err("rows are not in list order (created_at, run_id descending)".into())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::workload::Workload;

    #[test]
    fn a_small_clone_store_passes_every_check() {
        let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata");
        let wl = Workload::from_files(
            &testdata.join("selectools-200.jsonl"),
            &testdata.join("selectools-200-plan.json"),
            None,
        )
        .expect("the committed sample imports");
        let env = Env::new(None, trace_store::Durability::Flush, false, false).expect("env");
        let (ops, fills) = run(&env, &[Backend::Memory], &[300, 900], &wl.traces, &|_| {})
            .expect("the memory store answers every check");
        let names: Vec<&str> = ops.iter().map(|o| o.op.as_str()).collect();
        assert_eq!(
            names,
            [
                "list_50",
                "query_meta_needle",
                "query_since",
                "query_user_since",
                "load",
                "load_again",
                "save",
                "delete"
            ]
        );
        assert!(ops.iter().all(|o| o.points.len() == 2));
        assert_eq!(fills.len(), 2);
        assert!(fills.iter().all(|f| f.skipped.is_none()));
    }

    #[test]
    fn growth_verdicts() {
        let point = |n, ms| ScalingPoint {
            n,
            stats: OpStats {
                op: "x".into(),
                count: 1,
                median_ms: ms,
                p95_ms: ms,
                mean_ms: ms,
                total_ms: ms,
                rows: None,
            },
        };
        let (e, v) = growth(&[point(10_000, 1.0), point(1_000_000, 1.2)]);
        assert!(e < 0.2 && v.starts_with("flat"), "{e} {v}");
        let (e, v) = growth(&[point(10_000, 1.0), point(1_000_000, 100.0)]);
        assert!((e - 1.0).abs() < 1e-9 && v.starts_with("linear"), "{e} {v}");
    }
}
