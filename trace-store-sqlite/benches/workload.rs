//! Per-operation timings of `SqliteStore` on the shared selectools workload, beside a
//! bare rusqlite insert of the same bodies. A quick check for this crate's work; the
//! full cross-backend replay is `trace-store-bench`.
//!
//! `cargo bench -p trace-store-sqlite --bench workload [-- DIR]` where DIR holds
//! `traces.jsonl.gz` and `plan.json` (default: `$TRACE_STORE_WORKLOAD`, else
//! `../shared/bench/selectools-workload-10k` next to the repository). Without the
//! workload it generates 10k similar traces (100 users, 1..=15 steps, 30 days).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{Value, json};
use trace_store_core::{Status, Step, Timestamp, Trace, TraceFilter, TraceStore};
use trace_store_sqlite::{SqliteOptions, SqliteStore};

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

struct Plan {
    users: Vec<String>,
    since: Timestamp,
    min_steps: usize,
    load_ids: Vec<String>,
    delete_ids: Vec<String>,
}

fn workload_dir() -> PathBuf {
    if let Some(dir) = std::env::args().skip(1).find(|a| !a.starts_with('-')) {
        return dir.into();
    }
    if let Ok(dir) = std::env::var("TRACE_STORE_WORKLOAD") {
        return dir.into();
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/bench/selectools-workload-10k")
}

fn read_workload(dir: &Path) -> BenchResult<(Vec<Trace>, Plan)> {
    let file = std::fs::File::open(dir.join("traces.jsonl.gz"))?;
    let reader = BufReader::new(flate2::read::GzDecoder::new(file));
    let mut traces = Vec::new();
    for line in reader.split(b'\n') {
        let line = line?;
        if !line.iter().all(u8::is_ascii_whitespace) {
            traces.push(trace_store_interop::selectools::trace_from_line(&line)?);
        }
    }
    let plan: Value = serde_json::from_slice(&std::fs::read(dir.join("plan.json"))?)?;
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
    let plan = Plan {
        users: strings("query_users"),
        since: plan["since"].as_str().ok_or("plan has no since")?.parse()?,
        min_steps: plan["min_steps"].as_u64().ok_or("plan has no min_steps")? as usize,
        load_ids: strings("load_ids"),
        delete_ids: strings("delete_ids"),
    };
    Ok((traces, plan))
}

/// 10k traces shaped like the workload's, from a fixed-seed generator.
fn synthetic() -> (Vec<Trace>, Plan) {
    let mut seed = 42u64;
    let mut next = move |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let base = 1_767_225_600_000_000i64; // 2026-01-01
    let words = "user answer call token stream search query memory node plan cache agent ";
    let traces: Vec<Trace> = (0..10_000)
        .map(|i| {
            let created = base + next(30 * 86_400_000) as i64 * 1_000;
            let mut trace = Trace::new(format!("{:032x}", next(u64::MAX) ^ i))
                .with_created_at(Timestamp::from_micros(created).unwrap_or(Timestamp::UNIX_EPOCH))
                .with_status(if next(10) == 0 {
                    Status::Error
                } else {
                    Status::Ok
                })
                .with_metadata("user_id", format!("user_{:03}", next(100)))
                .with_metadata("env", "prod")
                .with_metadata("model", "gpt-4o-mini");
            for s in 0..1 + next(15) {
                trace.steps.push(if s % 2 == 0 {
                    Step::llm_call("gpt-4o-mini")
                        .with_usage(500 + next(1000), 100 + next(900))
                        .with_cost_nano_usd(next(30_000_000) as i64)
                        .with_duration_us(next(2_000_000))
                        .with_output(words.repeat(2))
                } else {
                    Step::tool_call("search")
                        .with_duration_us(next(2_000_000))
                        .with_input(json!({"q": &words[..40], "n": 3}))
                        .with_output(words.repeat(2))
                });
            }
            trace
        })
        .collect();
    let ids = |n: usize, step: usize| -> Vec<String> {
        (0..n)
            .map(|i| traces[(i * step) % traces.len()].run_id.clone())
            .collect()
    };
    let plan = Plan {
        users: (0..100)
            .map(|i| format!("user_{:03}", (i * 37) % 100))
            .collect(),
        since: Timestamp::from_micros(base + 15 * 86_400_000_000).unwrap_or(Timestamp::UNIX_EPOCH),
        min_steps: 5,
        load_ids: ids(1000, 7),
        delete_ids: ids(100, 97),
    };
    (traces, plan)
}

/// Mean and median of per-operation samples, in ms. On a shared machine the median
/// shows the code's own cost; the mean is what a workload pays.
fn time_each<T>(items: &[T], mut op: impl FnMut(&T) -> BenchResult<()>) -> BenchResult<(f64, f64)> {
    let mut samples = Vec::with_capacity(items.len());
    for item in items {
        let start = Instant::now();
        op(item)?;
        samples.push(start.elapsed().as_secs_f64() * 1e3);
    }
    let mean = samples.iter().sum::<f64>() / samples.len().max(1) as f64;
    samples.sort_by(f64::total_cmp);
    Ok((mean, samples.get(samples.len() / 2).copied().unwrap_or(0.0)))
}

/// One line per operation: mean and median ms per call, and the target for the mean.
fn report(name: &str, (mean, median): (f64, f64), target: Option<f64>) {
    let verdict = match target {
        Some(t) if mean <= t => format!("target {t} ms: met"),
        Some(t) => format!("target {t} ms: MISSED"),
        None => String::new(),
    };
    println!("{name:<26} mean {mean:>9.4} ms  median {median:>9.4} ms   {verdict}");
}

fn main() -> BenchResult<()> {
    // `cargo bench` passes --bench; `cargo test --benches` runs this too, with nothing
    // to prove, so do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return Ok(());
    }
    let dir = workload_dir();
    let (traces, plan) = match read_workload(&dir) {
        Ok(workload) => {
            println!("workload: {} ({} traces)", dir.display(), workload.0.len());
            workload
        }
        Err(e) => {
            println!(
                "workload {} unavailable ({e}); using 10k synthetic traces",
                dir.display()
            );
            synthetic()
        }
    };
    let bodies: Vec<Vec<u8>> = traces
        .iter()
        .map(Trace::to_json_vec)
        .collect::<Result<_, _>>()?;
    let mean_body = bodies.iter().map(Vec::len).sum::<usize>() / bodies.len().max(1);
    println!("mean body {mean_body} bytes");
    let tmp = tempfile::tempdir()?;

    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    println!("best of {rounds} rounds (each on fresh databases)");
    let mut results: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut since_rows = 0;
    let mut user_rows = Vec::new();
    for round in 0..rounds {
        let mut row = Vec::new();
        let file = |name: &str| tmp.path().join(format!("{name}-{round}.db"));

        // Bare rusqlite: the same bodies into a one-table schema, all in one
        // transaction, then one autocommit insert per body.
        let bare_conn = |path: PathBuf| -> rusqlite::Result<rusqlite::Connection> {
            let conn = rusqlite::Connection::open(path)?;
            conn.execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
                 CREATE TABLE traces (run_id TEXT PRIMARY KEY NOT NULL,
                                      created_at INTEGER NOT NULL, body BLOB NOT NULL);",
            )?;
            Ok(conn)
        };
        const INSERT: &str =
            "INSERT OR REPLACE INTO traces (run_id, created_at, body) VALUES (?1, ?2, ?3)";
        // Timed twice: as SQLite does by default (the commit runs the automatic
        // checkpoint, copying the log into the database with two fsyncs), and without
        // checkpoints, as the store defers them to its background thread.
        let mut bare_tx = [0.0; 2];
        for (i, autocheckpoint) in [1000, 0].into_iter().enumerate() {
            let mut conn = bare_conn(file(&format!("bare-tx{i}")))?;
            conn.pragma_update(None, "wal_autocheckpoint", autocheckpoint)?;
            let start = Instant::now();
            let tx = conn.transaction()?;
            {
                let mut insert = tx.prepare_cached(INSERT)?;
                for (trace, body) in traces.iter().zip(&bodies) {
                    insert.execute((&trace.run_id, trace.created_at.as_micros(), body))?;
                }
            }
            tx.commit()?;
            bare_tx[i] = start.elapsed().as_secs_f64() * 1e3;
        }

        let many = SqliteStore::open_with(file("many"), SqliteOptions::default())?;
        let start = Instant::now();
        many.save_many(&traces)?;
        let save_many = start.elapsed().as_secs_f64() * 1e3;
        drop(many);
        row.push((save_many, bare_tx[0]));
        row.push((save_many, bare_tx[1]));

        let conn = bare_conn(file("bare-rows"))?;
        let mut insert = conn.prepare_cached(INSERT)?;
        let pairs: Vec<(&Trace, &Vec<u8>)> = traces.iter().zip(&bodies).collect();
        row.push(time_each(&pairs, |(trace, body)| {
            insert.execute((&trace.run_id, trace.created_at.as_micros(), body))?;
            Ok(())
        })?);
        drop(insert);
        drop(conn);

        let store = SqliteStore::open_with(file("one"), SqliteOptions::default())?;
        row.push(time_each(&traces, |trace| {
            store.save(trace)?;
            Ok(())
        })?);
        let wal = std::fs::metadata(tmp.path().join(format!("one-{round}.db-wal")))
            .map(|m| m.len())
            .unwrap_or(0);
        println!(
            "round {round}: write-ahead log after the saves: {:.1} MiB",
            wal as f64 / 1048576.0
        );
        let list_reps: Vec<usize> = (0..1000).collect();
        row.push(time_each(&list_reps, |_| {
            assert_eq!(store.list(50, 0)?.len(), 50.min(traces.len()));
            Ok(())
        })?);
        user_rows.clear();
        row.push(time_each(&plan.users, |user| {
            let filter = TraceFilter::new().with_metadata("user_id", user.as_str());
            user_rows.push(store.query(&filter)?.len());
            Ok(())
        })?);
        let filter = TraceFilter::new()
            .with_since(plan.since)
            .with_min_steps(plan.min_steps);
        let reps: Vec<usize> = (0..40).collect();
        row.push(time_each(&reps, |_| {
            since_rows = store.query(&filter)?.len();
            Ok(())
        })?);
        row.push(time_each(&reps, |_| {
            assert_eq!(store.count(&filter)?, since_rows as u64);
            Ok(())
        })?);
        row.push(time_each(&reps[..10], |_| {
            store.stats(&TraceFilter::new())?;
            Ok(())
        })?);
        row.push(time_each(&plan.load_ids, |id| {
            store.load(id)?;
            Ok(())
        })?);
        row.push(time_each(&plan.delete_ids, |id| {
            store.delete(id)?;
            Ok(())
        })?);
        results.push(row);
    }
    let best = |i: usize| {
        results
            .iter()
            .map(|row| row[i])
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .unwrap_or((f64::NAN, f64::NAN))
    };
    let (save_many, bare_tx) = best(0);
    let (_, bare_tx_no_checkpoint) = best(1);
    println!(
        "save_many(all): {save_many:.1} ms; bare rusqlite insert of the bodies in one transaction: \
         {bare_tx:.1} ms with SQLite's automatic checkpoint (ratio {:.2}, target <= 2), \
         {bare_tx_no_checkpoint:.1} ms without (ratio {:.2})",
        save_many / bare_tx,
        save_many / bare_tx_no_checkpoint
    );
    report("bare autocommit insert", best(2), None);
    report("save (Flush)", best(3), Some(0.15));
    report("list(50)", best(4), Some(0.1));
    report("query by user_id", best(5), Some(1.5));
    println!(
        "  first five user queries: {:?} rows",
        &user_rows[..user_rows.len().min(5)]
    );
    report("since + min_steps query", best(6), Some(15.0));
    println!("  rows: {since_rows}");
    report("count(since + min_steps)", best(7), None);
    report("stats(all)", best(8), None);
    report("load", best(9), Some(0.05));
    report("delete", best(10), Some(0.15));

    // Durability::Sync fsyncs every commit: the disk's fsync time sets the pace.
    let store = SqliteStore::open_with(
        tmp.path().join("sync.db"),
        SqliteOptions::default().with_durability(trace_store_sqlite::Durability::Sync),
    )?;
    report(
        "save (Sync), 200 traces",
        time_each(&traces[..200.min(traces.len())], |trace| {
            store.save(trace)?;
            Ok(())
        })?,
        None,
    );
    Ok(())
}
