//! How cost grows with store size: synthetic stores of increasing size (generated
//! deterministically, loaded with `save_many`), the same reads timed at each size.

use serde::Serialize;
use serde_json::json;
use trace_store::{Step, Timestamp, Trace, TraceFilter};

use crate::BenchResult;
use crate::backends::{Backend, Env};
use crate::replay::elapsed_ms;
use crate::timing::{OpStats, Samples};

/// Traces per `save_many` call while filling a store (bounds the memory of generation).
const CHUNK: usize = 10_000;
/// 2026-01-01T00:00:00Z.
const BASE_MICROS: i64 = 1_767_225_600_000_000;
const MODELS: [&str; 3] = ["gpt-4o-mini", "claude-sonnet-4", "gemini-2.5-pro"];

/// Repetitions per size.
const LIST_REPS: usize = 100;
const QUERY_REPS: usize = 20;
const LOAD_REPS: usize = 200;
const OPEN_REPS: usize = 3;
/// The since query selects about this many of the newest traces at every size.
const SINCE_ROWS: usize = 100;
/// The needle query matches exactly this many traces at every size.
const NEEDLE_ROWS: usize = 10;

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

/// Fill times, for context.
#[derive(Debug, Serialize)]
pub(crate) struct FillTime {
    pub(crate) backend: Backend,
    pub(crate) n: usize,
    /// Wall time of all the `save_many` calls that filled the store.
    pub(crate) seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) disk_bytes: Option<u64>,
}

/// The deterministic synthetic trace number `i` of a store of `n`.
///
/// Metadata: `user_id` (100 users), `tenant` (1000 tenants, so one tenant is 0.1% of the
/// store), and `needle` on exactly [`NEEDLE_ROWS`] traces whatever `n` is. `created_at`
/// advances one second per trace with up to three seconds of jitter, so saves do not
/// arrive in perfect time order.
pub(crate) fn synthetic(i: usize, n: usize) -> Trace {
    let mut rng = SplitMix64(i as u64 ^ 0x5eed_7ace);
    let created = BASE_MICROS + i as i64 * 1_000_000 + (rng.next() % 3_000_000) as i64;
    let mut trace = Trace::new(format!("syn-{i:08}"))
        .with_name("synthetic-agent")
        .with_created_at(Timestamp::from_micros(created).unwrap_or_default())
        .with_metadata("user_id", format!("user_{:03}", i % 100))
        .with_metadata("tenant", format!("t{:03}", i % 1000))
        .with_metadata("env", if i.is_multiple_of(3) { "prod" } else { "dev" });
    if is_needle(i, n) {
        trace = trace.with_metadata("needle", true);
    }
    let steps = 2 + (rng.next() % 5) as usize;
    for s in 0..steps {
        let step = if s % 2 == 0 {
            let model = MODELS[(rng.next() % 3) as usize];
            Step::llm_call(model)
                .with_usage(200 + rng.next() % 3000, 10 + rng.next() % 900)
                .with_cost_nano_usd((rng.next() % 40_000_000) as i64)
                .with_output("the answer, with a few words of reasoning about the request")
        } else {
            Step::tool_call("search")
                .with_input(json!({"q": format!("query {}", rng.next() % 10_000), "n": 3}))
                .with_output("three results: a title, a url and a snippet for each of them")
        };
        trace = trace.with_step(step.with_duration_us(1_000 + rng.next() % 2_000_000));
    }
    trace
}

fn is_needle(i: usize, n: usize) -> bool {
    let stride = (n / NEEDLE_ROWS).max(1);
    i % stride == stride / 2 && i / stride < NEEDLE_ROWS
}

/// Deterministic, dependency-free generator (splitmix64).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Measures every backend at every size; returns the per-op growth and the fill times.
pub(crate) fn run(
    env: &Env,
    backends: &[Backend],
    sizes: &[usize],
    progress: &dyn Fn(&str),
) -> BenchResult<(Vec<ScalingOp>, Vec<FillTime>)> {
    let mut ops: Vec<ScalingOp> = Vec::new();
    let mut fills = Vec::new();
    for &backend in backends {
        let mut per_op: Vec<(String, Vec<ScalingPoint>)> = Vec::new();
        for &n in sizes {
            progress(&format!("scaling: {backend} n={n}"));
            let name = format!("scale-{n}");
            env.remove(backend, &name)?;
            let result = measure(env, backend, &name, n);
            let disk_bytes = env.disk_bytes(backend, &name);
            env.remove(backend, &name)?;
            let (stats, fill_seconds) =
                result.map_err(|e| format!("{backend} scaling n={n}: {e}"))?;
            fills.push(FillTime {
                backend,
                n,
                seconds: fill_seconds,
                disk_bytes,
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
            let (exponent, verdict) = growth(&op, &points);
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

fn growth(op: &str, points: &[ScalingPoint]) -> (f64, String) {
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
    let verdict = if op == "query_meta_0.1pct" {
        format!("{shape} (its result is 0.1% of the store: rows grow with n)")
    } else {
        shape.to_string()
    };
    (exponent, verdict)
}

/// Fills a store of `n` and times the reads. Returns the stats and the fill time (s).
fn measure(env: &Env, backend: Backend, name: &str, n: usize) -> BenchResult<(Vec<OpStats>, f64)> {
    let mut handle = env.open(backend, name)?;
    let mut created = Vec::with_capacity(n);
    let mut fill_ms = 0.0;
    let mut start = 0;
    while start < n {
        let end = (start + CHUNK).min(n);
        let chunk: Vec<Trace> = (start..end).map(|i| synthetic(i, n)).collect();
        created.extend(chunk.iter().map(|t| t.created_at));
        let (saved, ms) = elapsed_ms(|| handle.store().save_many(&chunk));
        saved?;
        fill_ms += ms;
        start = end;
    }
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

    let mut samples = Samples::with_capacity(LIST_REPS);
    for _ in 0..LIST_REPS {
        let rows = samples.time(|| store.list(50, 0))?;
        check_rows("list(50)", rows.len(), 50.min(n))?;
        check_order(&rows)?;
    }
    stats.push(samples.stats("list_50").with_rows(50.min(n)));

    let per_tenant = (0..n).filter(|i| i % 1000 == 0).count();
    let mut samples = Samples::with_capacity(QUERY_REPS);
    for rep in 0..QUERY_REPS {
        // Tenants 0.. each hold the same share of the store when n is a multiple of 1000.
        let tenant = rep % 1000;
        let want = (0..n).filter(|i| i % 1000 == tenant).count();
        let filter = TraceFilter::new().with_metadata("tenant", format!("t{tenant:03}"));
        let rows = samples.time(|| store.query(&filter))?;
        check_rows("query tenant", rows.len(), want)?;
        check_order(&rows)?;
    }
    stats.push(samples.stats("query_meta_0.1pct").with_rows(per_tenant));

    let needles: Vec<String> = (0..n)
        .filter(|&i| is_needle(i, n))
        .map(|i| format!("syn-{i:08}"))
        .collect();
    let filter = TraceFilter::new().with_metadata("needle", true);
    let mut samples = Samples::with_capacity(QUERY_REPS);
    for _ in 0..QUERY_REPS {
        let rows = samples.time(|| store.query(&filter))?;
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

    let mut sorted = created;
    sorted.sort_unstable();
    let since = sorted[sorted.len().saturating_sub(SINCE_ROWS)];
    let want = sorted.iter().filter(|&&c| c >= since).count();
    let filter = TraceFilter::new().with_since(since);
    let mut samples = Samples::with_capacity(QUERY_REPS);
    for _ in 0..QUERY_REPS {
        let rows = samples.time(|| store.query(&filter))?;
        check_rows("query since", rows.len(), want)?;
        check_order(&rows)?;
    }
    stats.push(samples.stats("query_since").with_rows(want));

    let mut rng = SplitMix64(n as u64);
    let mut samples = Samples::with_capacity(LOAD_REPS);
    for _ in 0..LOAD_REPS {
        let i = (rng.next() % n as u64) as usize;
        let id = format!("syn-{i:08}");
        let trace = samples.time(|| store.load(&id))?;
        if trace.run_id != id {
            return Err(format!("load({id:?}) returned {:?}", trace.run_id).into());
        }
    }
    stats.push(samples.stats("load"));
    Ok((stats, fill_ms / 1e3))
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
    use super::*;

    #[test]
    fn generation_is_deterministic_and_valid() {
        let a = synthetic(12_345, 100_000);
        let b = synthetic(12_345, 100_000);
        assert_eq!(a, b);
        assert!(a.validate().is_ok());
        assert!((2..=6).contains(&a.steps.len()));
        assert_ne!(synthetic(1, 10).run_id, synthetic(2, 10).run_id);
    }

    #[test]
    fn exactly_ten_needles_at_every_size() {
        for n in [10, 500, 2_000, 10_000, 123_457] {
            assert_eq!(
                (0..n).filter(|&i| is_needle(i, n)).count(),
                NEEDLE_ROWS,
                "n={n}"
            );
        }
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
        let (e, v) = growth("x", &[point(10_000, 1.0), point(1_000_000, 1.2)]);
        assert!(e < 0.2 && v.starts_with("flat"), "{e} {v}");
        let (e, v) = growth("x", &[point(10_000, 1.0), point(1_000_000, 100.0)]);
        assert!((e - 1.0).abs() < 1e-9 && v.starts_with("linear"), "{e} {v}");
    }
}
