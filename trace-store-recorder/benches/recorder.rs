//! The recorder's speed: agent-side cost per span with `TraceLayer` installed against a
//! no-op layer, writer throughput into SQLite, and end-to-end visibility.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group};
use parking_lot::Mutex;
use trace_store_core::{
    GroupBy, GroupKey, Result, Step, Trace, TraceFilter, TraceStats, TraceStore, TraceSummary,
};
use trace_store_memory::MemoryStore;
use trace_store_recorder::{Recorder, RecorderOptions, TraceLayer};
use trace_store_sqlite::SqliteStore;
use tracing_subscriber::layer::SubscriberExt;

struct NoopLayer;
impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for NoopLayer {}

fn one_span() {
    let span = tracing::info_span!(
        "chat",
        gen_ai.operation.name = "chat",
        gen_ai.request.model = "gpt-4o-mini",
        gen_ai.usage.input_tokens = tracing::field::Empty,
        gen_ai.usage.output_tokens = tracing::field::Empty
    );
    span.record("gen_ai.usage.input_tokens", 120_u64);
    span.record("gen_ai.usage.output_tokens", 30_u64);
    drop(span);
}

/// Times the child spans of runs of 50 under the current dispatcher (a run's steps stay
/// in memory until its root closes, so only children are timed, as in an agent run).
/// With `drain`, each run is flushed to the store before the next starts, outside the
/// timing: the writer then works between runs, as it does beside a real agent whose
/// model calls take far longer than recording them.
fn time_child_spans(iters: u64, drain: Option<&Recorder>) -> Duration {
    let mut timed = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let chunk = left.min(50);
        let root = tracing::info_span!("agent", gen_ai.operation.name = "invoke_agent");
        let entered = root.enter();
        let start = Instant::now();
        for _ in 0..chunk {
            one_span();
        }
        timed += start.elapsed();
        drop(entered);
        drop(root);
        if let Some(recorder) = drain {
            recorder.flush().expect("flush");
        }
        left -= chunk;
    }
    timed
}

fn per_span(c: &mut Criterion) {
    let mut group = c.benchmark_group("per_span");
    let noop = tracing::Dispatch::new(tracing_subscriber::registry().with(NoopLayer));
    // A store that keeps the latest 1,000 runs: a bench records millions, and an
    // unbounded store would measure page faults instead of the layer.
    let recorder = Recorder::spawn(
        Arc::new(MemoryStore::new(1_000).expect("capacity")),
        RecorderOptions::new(),
    );
    let layer = tracing::Dispatch::new(
        tracing_subscriber::registry().with(TraceLayer::new(recorder.clone())),
    );
    // The same span shape on both sides: a child of an entered root, so the registry
    // looks up and clones the parent in both.
    tracing::dispatcher::with_default(&noop, || {
        group.bench_function("noop_layer_child_span", |b| {
            b.iter_custom(|iters| time_child_spans(iters, None));
        });
    });
    tracing::dispatcher::with_default(&layer, || {
        group.bench_function("trace_layer_child_span", |b| {
            b.iter_custom(|iters| time_child_spans(iters, Some(&recorder)));
        });
        // Spans as fast as the loop makes them: the writer falls behind, works flat out
        // beside the agent (on a 2-core machine, on the agent's cores), and the default
        // queue of 10,000 runs drops and counts what does not fit.
        group.bench_function("trace_layer_child_span_busy_writer", |b| {
            b.iter_custom(|iters| time_child_spans(iters, None));
        });
    });
    group.finish();
    let health = recorder.health();
    println!(
        "trace_layer: {} runs written, {} dropped while the writer was behind",
        health.written, health.dropped
    );
    alternating_ratio(&noop, &layer, &recorder);
}

/// The no-op layer and `TraceLayer` measured in alternating short rounds of one
/// process, so that both see the same machine load: prints the median per-span time of
/// each and their ratio. On a loaded machine this is the ratio to trust: criterion's
/// no-op loop never sleeps, so the scheduler preempts it inside timed stretches, while
/// the `TraceLayer` loop sleeps in the flush between runs and is seldom preempted, so
/// the quotient of their criterion times flatters the layer.
fn alternating_ratio(noop: &tracing::Dispatch, layer: &tracing::Dispatch, recorder: &Recorder) {
    const ROUNDS: usize = 500;
    const SPANS: u64 = 2_000;
    let mut noop_ns = Vec::with_capacity(ROUNDS);
    let mut layer_ns = Vec::with_capacity(ROUNDS);
    let per_span = |timed: Duration| timed.as_nanos() as f64 / SPANS as f64;
    for _ in 0..ROUNDS {
        let timed = tracing::dispatcher::with_default(noop, || time_child_spans(SPANS, None));
        noop_ns.push(per_span(timed));
        let timed =
            tracing::dispatcher::with_default(layer, || time_child_spans(SPANS, Some(recorder)));
        layer_ns.push(per_span(timed));
    }
    let median = |times: &mut Vec<f64>| {
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    };
    let (noop_median, layer_median) = (median(&mut noop_ns), median(&mut layer_ns));
    println!(
        "per span, alternating rounds: no-op layer {noop_median:.0} ns, TraceLayer \
         {layer_median:.0} ns, ratio {:.2} (fastest rounds: {:.0} ns, {:.0} ns, ratio {:.2})",
        layer_median / noop_median,
        noop_ns[0],
        layer_ns[0],
        layer_ns[0] / noop_ns[0],
    );
}

/// Forwards to SQLite and notes when each run became loadable (its write committed).
#[derive(Debug)]
struct CommitClock {
    inner: SqliteStore,
    committed: Mutex<HashMap<String, Instant>>,
}

impl CommitClock {
    fn note(&self, traces: &[Trace]) {
        let now = Instant::now();
        let mut committed = self.committed.lock();
        for trace in traces {
            committed.entry(trace.run_id.clone()).or_insert(now);
        }
    }
}

#[deny(clippy::missing_trait_methods)]
impl TraceStore for CommitClock {
    fn save(&self, trace: &Trace) -> Result<String> {
        let saved = self.inner.save(trace)?;
        self.note(std::slice::from_ref(trace));
        Ok(saved)
    }
    fn load(&self, run_id: &str) -> Result<Trace> {
        self.inner.load(run_id)
    }
    fn list(&self, limit: usize, offset: usize) -> Result<Vec<TraceSummary>> {
        self.inner.list(limit, offset)
    }
    fn query(&self, filter: &TraceFilter) -> Result<Vec<TraceSummary>> {
        self.inner.query(filter)
    }
    fn delete(&self, run_id: &str) -> Result<bool> {
        self.inner.delete(run_id)
    }
    fn save_many(&self, traces: &[Trace]) -> Result<Vec<String>> {
        let saved = self.inner.save_many(traces)?;
        self.note(traces);
        Ok(saved)
    }
    fn count(&self, filter: &TraceFilter) -> Result<u64> {
        self.inner.count(filter)
    }
    fn stats(&self, filter: &TraceFilter) -> Result<TraceStats> {
        self.inner.stats(filter)
    }
    fn merge(&self, part: &Trace) -> Result<Trace> {
        let merged = self.inner.merge(part)?;
        self.note(std::slice::from_ref(part));
        Ok(merged)
    }
    fn merge_many(&self, parts: &[Trace]) -> Result<Vec<String>> {
        let run_ids = self.inner.merge_many(parts)?;
        self.note(parts);
        Ok(run_ids)
    }

    fn stats_by(
        &self,
        filter: &TraceFilter,
        group: GroupBy,
    ) -> Result<Vec<(GroupKey, TraceStats)>> {
        self.inner.stats_by(filter, group)
    }
    fn delete_where(&self, filter: &TraceFilter) -> Result<u64> {
        self.inner.delete_where(filter)
    }
}

/// Writer throughput: traces of 10 steps recorded and flushed into a SQLite file.
fn writer_throughput(c: &mut Criterion) {
    const TRACES: usize = 200;
    const STEPS: usize = 10;
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(SqliteStore::open(dir.path().join("bench.db")).expect("SQLite"));
    let recorder = Recorder::spawn(
        store,
        RecorderOptions::new().with_queue_capacity(TRACES * 2),
    );
    let template: Vec<Step> = (0..STEPS)
        .map(|i| {
            Step::llm_call("gpt-4o-mini")
                .with_id(format!("{i:016x}"))
                .with_usage(120, 30)
                .with_duration_us(1_000)
        })
        .collect();
    let mut round = 0_u64;
    let mut group = c.benchmark_group("writer");
    group.throughput(Throughput::Elements((TRACES * STEPS) as u64));
    group.sample_size(20);
    group.bench_function("sqlite_steps", |b| {
        b.iter(|| {
            round += 1;
            for i in 0..TRACES {
                let mut trace = Trace::new(format!("w-{round}-{i}"));
                trace.steps = template.clone();
                recorder.record(trace);
            }
            recorder.flush().expect("flush");
        });
    });
    group.finish();
    assert_eq!(
        recorder.health().dropped,
        0,
        "the queue was sized to drop nothing"
    );
}

/// End-to-end visibility: root spans closed at 1,000 per second for 5 s; for each, the
/// time from its close to the commit that made it loadable. Prints p50 / p99 / max.
fn visibility() {
    const SPANS: usize = 5_000;
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = Arc::new(CommitClock {
        inner: SqliteStore::open(dir.path().join("visibility.db")).expect("SQLite"),
        committed: Mutex::new(HashMap::new()),
    });
    let recorder = Recorder::spawn(clock.clone(), RecorderOptions::new());
    let dispatch = tracing::Dispatch::new(
        tracing_subscriber::registry().with(TraceLayer::new(recorder.clone())),
    );
    let mut closed = Vec::with_capacity(SPANS);
    let start = Instant::now();
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..SPANS {
            // Sleep, as an agent waiting on its model does: spinning here would keep a
            // core busy, and on a small loaded machine the writer would then wait its
            // turn for the other core behind other processes.
            let due = start + Duration::from_micros(1_000 * i as u64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let run_id = format!("vis-{i}");
            let root = tracing::info_span!(
                "agent",
                trace_store.run_id = run_id.as_str(),
                gen_ai.operation.name = "invoke_agent"
            );
            root.in_scope(one_span);
            drop(root);
            closed.push((run_id, Instant::now()));
        }
    });
    recorder.flush().expect("flush");
    let committed = clock.committed.lock();
    let mut latencies: Vec<Duration> = closed
        .iter()
        .map(|(run_id, at)| committed[run_id].saturating_duration_since(*at))
        .collect();
    latencies.sort();
    let pick = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    println!(
        "visibility at 1000 spans/s over {SPANS} runs: p50 {:?}, p99 {:?}, max {:?}",
        pick(0.5),
        pick(0.99),
        latencies[latencies.len() - 1]
    );
}

criterion_group!(benches, per_span, writer_throughput);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    visibility();
}
