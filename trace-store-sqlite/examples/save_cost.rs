//! What one `save` costs on SQLite beside a bare one-table insert of the same trace
//! (its JSON encoding included), in time and in write-ahead log pages. Run in release
//! mode:
//!
//! ```text
//! cargo run --release -p trace-store-sqlite --example save_cost [SAVES]
//! ```
//!
//! SAVES (default 3,000) traces of about 4 KB, saved one per transaction into a new
//! store and, alternating, into a bare table `(run_id PRIMARY KEY, created_at, body)`
//! in WAL mode with `synchronous = NORMAL`. Prints the medians, their ratio, and log
//! pages per commit of each, counted over 20 commits from an empty log.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use serde_json::json;
use trace_store_core::{Step, Timestamp, Trace, TraceStore};
use trace_store_sqlite::SqliteStore;

const WORDS: &[&str] = &[
    "the", "user", "asked", "about", "refund", "policy", "search", "results", "found", "document",
    "summary", "answer", "weather", "paris", "order", "status", "shipping", "invoice", "account",
    "password", "reset", "error", "retry", "tool", "call", "model", "response", "context",
];

fn words(seed: &mut u64, n: usize) -> String {
    (0..n)
        .map(|_| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            WORDS[(*seed % WORDS.len() as u64) as usize]
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A trace of about 4 KB of JSON: 6 steps with prompts and answers.
fn trace(i: usize, seed: &mut u64) -> Trace {
    let mut trace = Trace::new(format!("run-{i:07}"))
        .with_name("support-bot")
        .with_created_at(Timestamp::from_micros(1_767_225_600_000_000 + i as i64 * 1000).unwrap())
        .with_metadata("user_id", format!("u_{:03}", i % 100));
    for s in 0..6 {
        trace = trace.with_step(
            Step::llm_call(["gpt-4o", "gpt-4o-mini"][s % 2])
                .with_duration_us(250_000)
                .with_usage(400, 60)
                .with_input(json!([{"role": "user", "content": words(seed, 40)}]))
                .with_output(json!({"text": words(seed, 50)})),
        );
    }
    trace
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Frames in the log of the database at `path`, from a passive checkpoint.
fn log_frames(path: &Path) -> rusqlite::Result<i64> {
    Connection::open(path)?.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))
}

/// Empties the log of the database at `path`.
fn truncate_log(path: &Path) -> rusqlite::Result<()> {
    Connection::open(path)?.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let saves: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(3_000);
    let dir = tempfile::tempdir()?;
    let store_path = dir.path().join("store.db");
    let bare_path = dir.path().join("bare.db");
    let store = SqliteStore::open(&store_path)?;
    let bare = Connection::open(&bare_path)?;
    bare.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         CREATE TABLE traces (run_id TEXT PRIMARY KEY NOT NULL, created_at INTEGER NOT NULL,
                              body BLOB NOT NULL);",
    )?;
    let mut insert = bare.prepare_cached(
        "INSERT OR REPLACE INTO traces (run_id, created_at, body) VALUES (?1, ?2, ?3)",
    )?;
    let mut seed = 0x5EED_u64;
    let traces: Vec<Trace> = (0..saves).map(|i| trace(i, &mut seed)).collect();
    let bytes = traces[0].to_json_vec()?.len();
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for trace in &traces {
        let start = Instant::now();
        store.save(trace)?;
        ours.push(start.elapsed());
        let start = Instant::now();
        let body = trace.to_json_vec()?;
        insert.execute((&trace.run_id, trace.created_at.as_micros(), body))?;
        theirs.push(start.elapsed());
    }
    let (ours, theirs) = (median(ours), median(theirs));
    println!(
        "save of a {bytes}-byte trace: {:.1} µs median; bare insert + encoding {:.1} µs ({:.2}x)",
        ours.as_secs_f64() * 1e6,
        theirs.as_secs_f64() * 1e6,
        ours.as_secs_f64() / theirs.as_secs_f64()
    );

    // Log pages per commit: 20 commits from an empty log (fewer than the commits
    // between two of the store's background checkpoints).
    const COMMITS: usize = 20;
    let mut seed = 0xFACE_u64;
    let more: Vec<Trace> = (saves..saves + COMMITS)
        .map(|i| trace(i, &mut seed))
        .collect();
    truncate_log(&store_path)?;
    more.iter().try_for_each(|t| store.save(t).map(|_| ()))?;
    let store_frames = log_frames(&store_path)?;
    truncate_log(&bare_path)?;
    for trace in &more {
        insert.execute((
            &trace.run_id,
            trace.created_at.as_micros(),
            trace.to_json_vec()?,
        ))?;
    }
    let bare_frames = log_frames(&bare_path)?;
    println!(
        "log pages per save: {:.1}; bare insert {:.1}",
        store_frames as f64 / COMMITS as f64,
        bare_frames as f64 / COMMITS as f64
    );
    Ok(())
}
