//! Per-operation timings of `JsonlStore` on a 10k-trace file.
//!
//! By default the file is generated: 10,000 traces over 30 days, `metadata.user_id`
//! among 100 users, 1..=15 steps, 2-3 KB bodies. Set `TRACE_STORE_JSONL_BENCH_FILE` to a
//! trace-store JSON Lines file (for example the shared selectools workload imported with
//! `trace-store import`) to measure on it instead; it is copied, never changed.
//!
//! ```text
//! cargo bench -p trace-store-jsonl
//! ```

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use trace_store_core::{Step, Timestamp, Trace, TraceFilter, TraceStore};
use trace_store_jsonl::{Durability, JsonlOptions, JsonlStore};

const TRACES: u64 = 10_000;
const USERS: u64 = 100;
const DAY_US: i64 = 86_400_000_000;

/// A small deterministic generator, so every run measures the same file.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

const WORDS: &[&str] = &[
    "agent", "token", "query", "vector", "prompt", "tool", "cache", "json", "stream", "policy",
    "answer", "chunk", "memory", "latency", "guard", "node",
];

fn text(rng: &mut Lcg, bytes: usize) -> String {
    let mut out = String::with_capacity(bytes + 10);
    while out.len() < bytes {
        out.push_str(WORDS[rng.next(WORDS.len() as u64) as usize]);
        out.push(' ');
    }
    out
}

fn trace(rng: &mut Lcg, i: u64) -> Trace {
    let start = Timestamp::from_micros(1_767_225_600_000_000 + rng.next(30 * DAY_US as u64) as i64)
        .unwrap_or(Timestamp::UNIX_EPOCH);
    let steps = 1 + rng.next(15) as usize;
    let budget = 2_000 + rng.next(1_000) as usize;
    let mut trace = Trace::new(format!("{:032x}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15)))
        .with_created_at(start)
        .with_metadata("user_id", format!("user_{:03}", rng.next(USERS)))
        .with_metadata("env", "prod");
    for s in 0..steps {
        let step = if s % 3 == 1 {
            Step::tool_call("search").with_input(json!({"q": text(rng, 30)}))
        } else {
            Step::llm_call("gpt-4o-mini").with_usage(rng.next(3000), rng.next(600))
        };
        trace = trace.with_step(
            step.with_duration_us(rng.next(2_000_000))
                .with_output(text(rng, budget / steps)),
        );
    }
    trace
}

/// The benchmark's file, generated or copied, in a directory that outlives the run.
fn prepare(dir: &Path) -> PathBuf {
    let path = dir.join("traces.jsonl");
    if let Ok(source) = std::env::var("TRACE_STORE_JSONL_BENCH_FILE") {
        std::fs::copy(&source, &path).unwrap_or_else(|e| panic!("cannot copy {source}: {e}"));
        return path;
    }
    let store = JsonlStore::open(&path).expect("open");
    let mut rng = Lcg(42);
    let traces: Vec<Trace> = (0..TRACES).map(|i| trace(&mut rng, i)).collect();
    for chunk in traces.chunks(500) {
        store.save_many(chunk).expect("save_many");
    }
    path
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = prepare(dir.path());
    let bytes = std::fs::metadata(&path).expect("stat").len();
    let options = JsonlOptions::default().without_auto_compact();
    let store = JsonlStore::open_with(&path, options.clone()).expect("open");
    let all = store.list(usize::MAX, 0).expect("list");
    eprintln!("file: {} traces, {:.1} MB", all.len(), bytes as f64 / 1e6);
    let users: Vec<serde_json::Value> = {
        let mut users: Vec<_> = all
            .iter()
            .filter_map(|s| s.metadata.get("user_id").cloned())
            .collect();
        users.sort_by_key(|v| v.to_string());
        users.dedup();
        users
    };
    let newest = all.first().map_or(Timestamp::UNIX_EPOCH, |s| s.created_at);
    let ids: Vec<String> = all.iter().map(|s| s.run_id.clone()).collect();

    let mut group = c.benchmark_group("jsonl");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(4));
    group.bench_function("open_index_10k", |b| {
        b.iter(|| black_box(JsonlStore::open_with(&path, options.clone()).expect("open")))
    });
    group.bench_function("compact_10k", |b| {
        b.iter(|| black_box(store.compact().expect("compact")))
    });
    drop(group);

    let mut group = c.benchmark_group("jsonl");
    group.measurement_time(Duration::from_secs(3));
    let mut n = 0usize;
    group.bench_function("load", |b| {
        b.iter(|| {
            n += 7919;
            black_box(store.load(&ids[n % ids.len()]).expect("load"))
        })
    });
    group.bench_function("list_50", |b| {
        b.iter(|| black_box(store.list(50, 0).expect("list")))
    });
    let mut u = 0usize;
    group.bench_function("query_user_id", |b| {
        b.iter(|| {
            u += 1;
            let filter =
                TraceFilter::new().with_metadata("user_id", users[u % users.len()].clone());
            black_box(store.query(&filter).expect("query"))
        })
    });
    group.bench_function("query_since_15d_min_5_steps", |b| {
        let filter = TraceFilter::new()
            .with_since(newest.saturating_add_micros(-15 * DAY_US))
            .with_min_steps(5);
        b.iter(|| black_box(store.query(&filter).expect("query")))
    });
    let mut rng = Lcg(7);
    let mut next_id = TRACES;
    group.bench_function("save", |b| {
        b.iter_custom(|iters| {
            let traces: Vec<Trace> = (0..iters)
                .map(|_| {
                    next_id += 1;
                    trace(&mut rng, next_id)
                })
                .collect();
            let started = Instant::now();
            for trace in &traces {
                store.save(trace).expect("save");
            }
            started.elapsed()
        })
    });
    let synced = JsonlStore::open_with(
        dir.path().join("synced.jsonl"),
        options.clone().with_durability(Durability::Sync),
    )
    .expect("open");
    group.bench_function("save_sync", |b| {
        b.iter_custom(|iters| {
            let traces: Vec<Trace> = (0..iters)
                .map(|_| {
                    next_id += 1;
                    trace(&mut rng, next_id)
                })
                .collect();
            let started = Instant::now();
            for trace in &traces {
                synced.save(trace).expect("save");
            }
            started.elapsed()
        })
    });
    group.bench_function("delete", |b| {
        b.iter_custom(|iters| {
            let traces: Vec<Trace> = (0..iters)
                .map(|_| {
                    next_id += 1;
                    trace(&mut rng, next_id)
                })
                .collect();
            store.save_many(&traces).expect("save_many");
            let started = Instant::now();
            for trace in &traces {
                assert!(store.delete(&trace.run_id).expect("delete"));
            }
            started.elapsed()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
