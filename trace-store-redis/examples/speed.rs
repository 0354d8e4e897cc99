//! Times the operations of the shared workload on a private redis-server, beside a
//! bare `SET` + `ZADD` pipeline of the same bytes.
//!
//! ```text
//! cargo run --release -p trace-store-redis --example speed [-- PATH/TO/traces.jsonl.gz]
//! ```
//!
//! Without a path it uses `../shared/bench/selectools-workload-10k` when present
//! (selectools' own traces and operation plan) and otherwise 10,000 synthetic traces of
//! the same shape. The full benchmark of every backend is `trace-store-bench`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::Value;
use trace_store_core::{Step, Timestamp, Trace, TraceFilter, TraceStore};
use trace_store_redis::{RedisOptions, RedisStore, server::RedisServer};

struct Workload {
    traces: Vec<Trace>,
    users: Vec<String>,
    since: Timestamp,
    min_steps: usize,
    load_ids: Vec<String>,
    delete_ids: Vec<String>,
    source: String,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let workload = match std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .or_else(default_path)
    {
        Some(path) if path.exists() => real(&path)?,
        _ => synthetic(),
    };
    let server = RedisServer::start()?;
    let store = RedisStore::open_with(&server.url(), RedisOptions::default().with_prefix("speed"))?;
    println!(
        "{} traces ({}), redis-server on port {}",
        workload.traces.len(),
        workload.source,
        server.port()
    );
    println!("{:<44} {:>10} {:>8}", "operation", "ms/op", "rows");

    let bodies: Vec<Vec<u8>> = workload
        .traces
        .iter()
        .map(|t| t.to_json_vec())
        .collect::<Result<_, _>>()?;
    let mut raw = redis::Client::open(server.url())?.get_connection()?;
    time("raw SET + ZADD pipeline (same bytes)", bodies.len(), || {
        for (trace, body) in workload.traces.iter().zip(&bodies) {
            redis::pipe()
                .cmd("SET")
                .arg(format!("raw:{}", trace.run_id))
                .arg(body)
                .ignore()
                .cmd("ZADD")
                .arg("raw:created")
                .arg(trace.created_at.as_micros())
                .arg(&trace.run_id)
                .ignore()
                .query::<()>(&mut raw)
                .map_err(|e| e.to_string())?;
        }
        Ok(0)
    })?;
    time("raw GET", workload.load_ids.len(), || {
        for id in &workload.load_ids {
            let _: Vec<u8> = redis::cmd("GET")
                .arg(format!("raw:{id}"))
                .query(&mut raw)
                .map_err(|e| e.to_string())?;
        }
        Ok(0)
    })?;

    time("save", workload.traces.len(), || {
        for trace in &workload.traces {
            store.save(trace).map_err(|e| e.to_string())?;
        }
        Ok(0)
    })?;
    let batched = RedisStore::open_with(
        &server.url(),
        RedisOptions::default().with_prefix("speed-batched"),
    )?;
    time(
        "save_many (batches of 256), per trace",
        workload.traces.len(),
        || {
            for batch in workload.traces.chunks(256) {
                batched.save_many(batch).map_err(|e| e.to_string())?;
            }
            Ok(0)
        },
    )?;
    batched.clear()?;
    time("list(50)", 100, || {
        let mut rows = 0;
        for _ in 0..100 {
            rows = store.list(50, 0).map_err(|e| e.to_string())?.len();
        }
        Ok(rows)
    })?;
    let mut first_counts = Vec::new();
    time(
        "query metadata user_id (all matches)",
        workload.users.len(),
        || {
            let mut rows = 0;
            for user in &workload.users {
                let hits = store
                    .query(&TraceFilter::new().with_metadata("user_id", user.as_str()))
                    .map_err(|e| e.to_string())?;
                if first_counts.len() < 5 {
                    first_counts.push(hits.len());
                }
                rows += hits.len();
            }
            Ok(rows / workload.users.len().max(1))
        },
    )?;
    println!("  first five user queries: {first_counts:?}");
    time("count metadata user_id", workload.users.len(), || {
        for user in &workload.users {
            store
                .count(&TraceFilter::new().with_metadata("user_id", user.as_str()))
                .map_err(|e| e.to_string())?;
        }
        Ok(0)
    })?;
    let since = TraceFilter::new()
        .with_since(workload.since)
        .with_min_steps(workload.min_steps);
    time("query since + min_steps (all matches)", 20, || {
        let mut rows = 0;
        for _ in 0..20 {
            rows = store.query(&since).map_err(|e| e.to_string())?.len();
        }
        Ok(rows)
    })?;
    time("count since + min_steps", 20, || {
        let mut rows = 0;
        for _ in 0..20 {
            rows = store.count(&since).map_err(|e| e.to_string())? as usize;
        }
        Ok(rows)
    })?;
    time("stats since + min_steps", 20, || {
        let mut rows = 0;
        for _ in 0..20 {
            rows = store.stats(&since).map_err(|e| e.to_string())?.count as usize;
        }
        Ok(rows)
    })?;
    time("load", workload.load_ids.len(), || {
        for id in &workload.load_ids {
            store.load(id).map_err(|e| e.to_string())?;
        }
        Ok(0)
    })?;
    time("delete", workload.delete_ids.len(), || {
        let mut deleted = 0;
        for id in &workload.delete_ids {
            deleted += usize::from(store.delete(id).map_err(|e| e.to_string())?);
        }
        Ok(deleted)
    })?;
    Ok(())
}

fn time(
    name: &str,
    ops: usize,
    mut run: impl FnMut() -> Result<usize, String>,
) -> Result<(), String> {
    let started = Instant::now();
    let rows = run()?;
    let ms = started.elapsed().as_secs_f64() * 1e3 / ops.max(1) as f64;
    println!("{name:<44} {ms:>10.4} {rows:>8}");
    Ok(())
}

fn default_path() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/bench/selectools-workload-10k/traces.jsonl.gz");
    path.exists().then_some(path)
}

fn real(path: &Path) -> Result<Workload, Box<dyn std::error::Error>> {
    let reader = BufReader::new(flate2::read::GzDecoder::new(std::fs::File::open(path)?));
    let mut traces = Vec::new();
    for line in reader.split(b'\n') {
        let line = line?;
        if !line.is_empty() {
            traces.push(trace_store_interop::selectools::trace_from_line(&line)?);
        }
    }
    let plan: Value =
        serde_json::from_reader(std::fs::File::open(path.with_file_name("plan.json"))?)?;
    let strings = |key: &str| -> Vec<String> {
        plan[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(Workload {
        traces,
        users: strings("query_users"),
        since: plan["since"]
            .as_str()
            .unwrap_or("2026-01-16T00:00:00Z")
            .parse()?,
        min_steps: plan["min_steps"].as_u64().unwrap_or(5) as usize,
        load_ids: strings("load_ids"),
        delete_ids: strings("delete_ids"),
        source: path.display().to_string(),
    })
}

fn synthetic() -> Workload {
    let mut seed = 42u64;
    let mut next = move |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 11) % n
    };
    let start = 1_767_225_600_000_000i64; // 2026-01-01
    let traces: Vec<Trace> = (0..10_000)
        .map(|i| {
            let mut trace = Trace::new(format!("{:032x}", i * 7919 + 13))
                .with_created_at(
                    Timestamp::from_micros(start + next(30 * 86_400_000_000) as i64)
                        .unwrap_or_default(),
                )
                .with_metadata("user_id", format!("user_{:03}", next(100)));
            trace.steps = (0..1 + next(15))
                .map(|s| {
                    Step::llm_call("gpt-4o-mini")
                        .with_duration_us(1_000 + s)
                        .with_usage(700, 300)
                        .with_output("token stream search query memory ".repeat(5))
                })
                .collect();
            trace
        })
        .collect();
    let ids: Vec<String> = traces.iter().map(|t| t.run_id.clone()).collect();
    Workload {
        users: (0..100).map(|u| format!("user_{u:03}")).collect(),
        since: Timestamp::from_micros(start + 15 * 86_400_000_000).unwrap_or_default(),
        min_steps: 5,
        load_ids: ids.iter().step_by(10).cloned().collect(),
        delete_ids: ids.iter().step_by(100).cloned().collect(),
        traces,
        source: "synthetic".to_owned(),
    }
}
