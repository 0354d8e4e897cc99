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
//! in WAL mode with `synchronous = NORMAL`; then deletes every other trace from both,
//! alternating. Prints the medians, their ratio, and log pages per commit of each,
//! counted over the last 20 commits from an empty log.

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

/// Frames in the log of the database at `path`: its size, as [`truncate_log`] left
/// it empty. (A checkpoint asks for locks a store's own checkpoint thread may hold,
/// and then answers -1.)
fn log_frames(path: &Path) -> std::io::Result<u64> {
    let mut log = path.as_os_str().to_owned();
    log.push("-wal");
    let bytes = match std::fs::metadata(Path::new(&log)) {
        Ok(metadata) => metadata.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(e),
    };
    // A 32-byte header, then frames of a 24-byte header and a 4 KiB page.
    Ok(bytes.saturating_sub(32) / (24 + 4096))
}

/// Empties the log of the database at `path`, retrying while another connection
/// (the store's checkpoint thread) holds the checkpoint lock.
fn truncate_log(path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let conn = Connection::open(path)?;
    for _ in 0..1000 {
        let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))?;
        if busy == 0 {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Err("the log stayed busy".into())
}

/// Median time and log pages per call of `ours` and `theirs` over `items`, the two
/// alternating; pages over the last `PAGED` calls, from an empty log.
fn compare<T>(
    items: &[T],
    paths: (&Path, &Path),
    mut ours: impl FnMut(&T) -> Result<(), Box<dyn std::error::Error>>,
    mut theirs: impl FnMut(&T) -> Result<(), Box<dyn std::error::Error>>,
) -> Result<[(Duration, f64); 2], Box<dyn std::error::Error>> {
    // Fewer commits than the store's checkpoint thread waits for between checkpoints.
    const PAGED: usize = 20;
    let (mut ours_times, mut theirs_times) = (Vec::new(), Vec::new());
    let paged_from = items.len().saturating_sub(PAGED);
    for (i, item) in items.iter().enumerate() {
        if i == paged_from {
            truncate_log(paths.0)?;
            truncate_log(paths.1)?;
        }
        let start = Instant::now();
        ours(item)?;
        ours_times.push(start.elapsed());
        let start = Instant::now();
        theirs(item)?;
        theirs_times.push(start.elapsed());
    }
    let paged = (items.len() - paged_from) as f64;
    Ok([
        (median(ours_times), log_frames(paths.0)? as f64 / paged),
        (median(theirs_times), log_frames(paths.1)? as f64 / paged),
    ])
}

fn report(what: &str, bare: &str, [ours, theirs]: [(Duration, f64); 2]) {
    println!(
        "{what}: {:.1} µs median, {:.1} log pages; {bare} {:.1} µs, {:.1} pages ({:.2}x the time)",
        ours.0.as_secs_f64() * 1e6,
        ours.1,
        theirs.0.as_secs_f64() * 1e6,
        theirs.1,
        ours.0.as_secs_f64() / theirs.0.as_secs_f64()
    );
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
    let mut delete = bare.prepare_cached("DELETE FROM traces WHERE run_id = ?1")?;
    let mut seed = 0x5EED_u64;
    let traces: Vec<Trace> = (0..saves).map(|i| trace(i, &mut seed)).collect();
    let bytes = traces[0].to_json_vec()?.len();
    let paths = (store_path.as_path(), bare_path.as_path());
    let saved = compare(
        &traces,
        paths,
        |trace| Ok(store.save(trace).map(|_| ())?),
        |trace| {
            let body = trace.to_json_vec()?;
            insert.execute((&trace.run_id, trace.created_at.as_micros(), body))?;
            Ok(())
        },
    )?;
    report(
        &format!("save of a {bytes}-byte trace"),
        "bare insert + JSON encoding",
        saved,
    );
    // Every other trace, spread over the store.
    let doomed: Vec<&Trace> = traces.iter().step_by(2).collect();
    let deleted = compare(
        &doomed,
        paths,
        |trace| {
            assert!(store.delete(&trace.run_id)?);
            Ok(())
        },
        |trace| {
            assert_eq!(delete.execute([&trace.run_id])?, 1);
            Ok(())
        },
    )?;
    report("delete", "bare delete", deleted);
    Ok(())
}
