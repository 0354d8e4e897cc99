//! The OTLP collector's write path on SQLite: exporters posting batches of spans that
//! become `merge_many` calls. Run in release mode:
//!
//! ```text
//! cargo run --release -p trace-store-sqlite --example ingest [SECONDS]
//! ```
//!
//! 4 threads each post batches of 512 spans (32 traces of 16 steps) for SECONDS
//! (default 5) per mode, and the example prints spans per second for: `merge_many`
//! of whole traces, `merge_many` of traces split over two batches (half the runs
//! exist), `merge` part by part, and `save_many` of the same traces (no fold).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use trace_store_core::{Step, Timestamp, Trace, TraceStore};
use trace_store_sqlite::SqliteStore;

const EXPORTERS: u64 = 4;
const TRACES_PER_BATCH: u64 = 32;
const SPANS_PER_TRACE: u64 = 16;

/// Steps `range` of trace `n`, as an OTLP batch would carry them.
fn part(n: u64, range: std::ops::Range<u64>) -> Trace {
    let mut trace = Trace::new(format!("{n:016x}ab00000000000000"))
        .with_name("agent")
        .with_created_at(Timestamp::from_micros(1_767_225_600_000_000 + n as i64).unwrap())
        .with_metadata("service.name", "ingest-example");
    for i in range {
        let step = if i % 4 == 3 {
            Step::tool_call("get_weather").with_input(json!({"city": "Paris"}))
        } else {
            Step::llm_call("gpt-4o-mini")
                .with_usage(420, 64)
                .with_input(json!([{"role": "user", "parts": [{"type": "text",
                    "content": "What is the weather in Paris today?"}]}]))
                .with_output(json!([{"role": "assistant", "parts": [{"type": "text",
                    "content": "Sunny, 21 degrees."}]}]))
        };
        trace = trace.with_step(
            step.with_id(format!("{:016x}", n * 100 + i + 1))
                .with_duration_us(120_000),
        );
    }
    trace
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    MergeMany,
    MergeManySplit,
    MergeEach,
    SaveMany,
}

/// Spans per second that `EXPORTERS` threads write in `seconds`.
fn run(store: &Arc<SqliteStore>, mode: Mode, seconds: f64, first: u64) -> f64 {
    let next = Arc::new(AtomicU64::new(first));
    let spans = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let threads: Vec<_> = (0..EXPORTERS)
        .map(|_| {
            let (store, next, spans) = (Arc::clone(store), Arc::clone(&next), Arc::clone(&spans));
            std::thread::spawn(move || {
                while Instant::now() < deadline {
                    let base = next.fetch_add(TRACES_PER_BATCH, Ordering::Relaxed);
                    let runs = base..base + TRACES_PER_BATCH;
                    let batch: Vec<Trace> = match mode {
                        // Each batch: the second half of the previous batch's traces
                        // and the first half of its own.
                        Mode::MergeManySplit => runs
                            .clone()
                            .map(|n| part(n - TRACES_PER_BATCH, 8..SPANS_PER_TRACE))
                            .chain(runs.map(|n| part(n, 0..8)))
                            .collect(),
                        _ => runs.map(|n| part(n, 0..SPANS_PER_TRACE)).collect(),
                    };
                    match mode {
                        Mode::MergeMany | Mode::MergeManySplit => {
                            store.merge_many(&batch).expect("merge_many");
                        }
                        Mode::MergeEach => batch.iter().for_each(|p| {
                            store.merge(p).expect("merge");
                        }),
                        Mode::SaveMany => {
                            store.save_many(&batch).expect("save_many");
                        }
                    }
                    spans.fetch_add(TRACES_PER_BATCH * SPANS_PER_TRACE, Ordering::Relaxed);
                }
            })
        })
        .collect();
    threads
        .into_iter()
        .for_each(|t| t.join().expect("exporter"));
    spans.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: f64 = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(5.0);
    for (name, mode) in [
        ("save_many (no fold)", Mode::SaveMany),
        ("merge_many, whole traces", Mode::MergeMany),
        ("merge_many, traces over two batches", Mode::MergeManySplit),
        ("merge, part by part", Mode::MergeEach),
    ] {
        let dir = tempfile::tempdir()?;
        let store = Arc::new(SqliteStore::open(dir.path().join("traces.db"))?);
        let rate = run(&store, mode, seconds, 1_000_000);
        let stored = store.count(&Default::default())?;
        println!("{name}: {rate:.0} spans/s ({stored} traces stored)");
    }
    Ok(())
}
