//! Timings of the contract-v2 operations on SQLite (issue 11's speed targets), against
//! bare baselines on the same file. Run in release mode:
//!
//! ```text
//! cargo run --release -p trace-store-sqlite --example v2_speed [TRACES]
//! ```
//!
//! TRACES defaults to 100,000; `v2_speed 1000000` is the 1M-trace run of the text
//! search target (several minutes, about 4 GB of disk). Prints one line per
//! measurement: the median of several runs, and the baseline where there is one.

use std::time::{Duration, Instant};

use rusqlite::Connection;
use serde_json::json;
use trace_store_core::{
    GroupBy, RetentionPolicy, Step, Timestamp, Trace, TraceFilter, TraceStore, TraceStoreExt,
};
use trace_store_sqlite::SqliteStore;

/// Ordinary words every trace draws from.
const WORDS: &[&str] = &[
    "the", "user", "asked", "about", "refund", "policy", "search", "results", "found", "document",
    "summary", "answer", "weather", "paris", "order", "status", "shipping", "invoice", "account",
    "password", "reset", "error", "retry", "tool", "call", "model", "response", "context",
    "window", "token", "limit", "cache", "hit", "miss", "résumé", "北京", "天气", "😀",
];

/// In about 10 traces of the store, whatever its size.
const RARE: &str = "zyzzogeton";

const MINUTE: i64 = 60_000_000;

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

fn trace(i: usize, count: usize, seed: &mut u64) -> Trace {
    let start = 1_767_225_600_000_000;
    let mut trace = Trace::new(format!("run-{i:07}"))
        .with_name(["support-bot", "research-agent", "sql-analyst"][i % 3])
        .with_created_at(Timestamp::from_micros(start + (i as i64) * MINUTE / 4).unwrap())
        .with_metadata("user_id", format!("u_{:03}", i % 500));
    let rare = i % (count / 10).max(1) == 7;
    for s in 0..4 {
        let mut prompt = words(seed, 12);
        if rare && s == 2 {
            prompt.push_str(&format!(" {RARE}"));
        }
        trace = trace.with_step(
            Step::llm_call(["gpt-4o", "gpt-4o-mini"][s % 2])
                .with_duration_us(250_000)
                .with_usage(400, 60)
                .with_input(json!([{"role": "user", "content": prompt}]))
                .with_output(json!({"text": words(seed, 20)})),
        );
    }
    trace
}

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut times = Vec::with_capacity(runs);
    let mut out = None;
    for _ in 0..runs {
        let start = Instant::now();
        out = Some(f());
        times.push(start.elapsed());
    }
    (median(times), out.expect("at least one run"))
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let count: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(100_000);
    let dir = tempfile::tempdir()?;
    // To look at the database afterwards: V2_SPEED_DB=/tmp/speed.db (overwritten).
    let path = match std::env::var_os("V2_SPEED_DB") {
        Some(path) => {
            let path = std::path::PathBuf::from(path);
            let _ = std::fs::remove_file(&path);
            path
        }
        None => dir.path().join("traces.db"),
    };
    let store = SqliteStore::open(&path)?;
    let mut seed = 0x5EED_u64;
    let start = Instant::now();
    for chunk in (0..count).collect::<Vec<_>>().chunks(10_000) {
        let traces: Vec<Trace> = chunk.iter().map(|&i| trace(i, count, &mut seed)).collect();
        store.save_many(&traces)?;
    }
    println!(
        "saved {count} traces in {:.1} s",
        start.elapsed().as_secs_f64()
    );

    // Text search: a word in about 10 traces, through the trigram index and core's
    // recheck, against unindexed LIKE scans of the bodies and of the stored text.
    let filter = TraceFilter::new().with_text(RARE);
    let (indexed, hits) = time(21, || store.query(&filter).map(|page| page.len()));
    let hits = hits?;
    let raw = Connection::open(&path)?;
    let pattern = format!("%{RARE}%");
    let (like_bodies, like_hits) = time(5, || {
        raw.query_row(
            "SELECT COUNT(*) FROM trace_bodies WHERE body LIKE ?1",
            [&pattern],
            |row| row.get::<_, i64>(0),
        )
    });
    let (like_text, _) = time(5, || {
        raw.query_row(
            "SELECT COUNT(*) FROM trace_text WHERE text LIKE ?1",
            [&pattern],
            |row| row.get::<_, i64>(0),
        )
    });
    println!(
        "text search {RARE:?} ({hits} hits; LIKE found {}): {} indexed; LIKE scan of bodies {} ({:.0}x), of search text {} ({:.0}x)",
        like_hits?,
        ms(indexed),
        ms(like_bodies),
        like_bodies.as_secs_f64() / indexed.as_secs_f64(),
        ms(like_text),
        like_text.as_secs_f64() / indexed.as_secs_f64(),
    );
    let short = TraceFilter::new().with_text("北京").with_limit(50);
    let (short_scan, _) = time(5, || store.query(&short));
    println!(
        "text search, 2 characters (scan), first 50: {}",
        ms(short_scan)
    );
    let common = TraceFilter::new().with_text("refund").with_limit(50);
    let (common_time, _) = time(5, || store.query(&common));
    println!("text search, a common word, first 50: {}", ms(common_time));

    let (scan, _) = time(5, || {
        raw.query_row(
            "SELECT COUNT(*), SUM(steps), TOTAL(total_ms) FROM traces",
            [],
            |row| row.get::<_, i64>(0),
        )
    });
    println!(
        "baseline: one bare pass over the traces table: {}",
        ms(scan)
    );
    let (by_day, days) = time(11, || store.stats_by(&TraceFilter::new(), GroupBy::Day));
    println!(
        "stats_by(Day) over {count} ({} days): {}",
        days?.len(),
        ms(by_day)
    );
    let (by_model, _) = time(5, || store.stats_by(&TraceFilter::new(), GroupBy::Model));
    println!("stats_by(Model) over {count}: {}", ms(by_model));
    let (stats, _) = time(5, || store.stats(&TraceFilter::new()));
    println!("stats over {count}: {}", ms(stats));

    // Merge of one step into a 50-step trace, against a save of that trace.
    let mut big = Trace::new("fifty").with_name("long-run");
    for s in 0..50 {
        big = big.with_step(
            Step::llm_call("gpt-4o")
                .with_id(format!("s{s}"))
                .with_usage(100, 10)
                .with_input(json!({"q": words(&mut seed, 30)})),
        );
    }
    store.save(&big)?;
    let part = Trace::new("fifty").with_step(
        Step::tool_call("search")
            .with_id("s49")
            .with_input(json!({"q": words(&mut seed, 30)})),
    );
    let (save, _) = time(201, || store.save(&big));
    let (merge, _) = time(201, || store.merge(&part));
    println!(
        "merge of 1 step into 50: {} vs save of the trace {} ({:.2}x)",
        ms(merge),
        ms(save),
        merge.as_secs_f64() / save.as_secs_f64()
    );

    // Where a purge's time goes: each table's delete and the commit, on copies of
    // the database, with and without the FTS index's deletes.
    if std::env::var_os("V2_SPEED_BREAKDOWN").is_some() {
        raw.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        for skip_fts in [false, true] {
            let copy = dir.path().join("copy.db");
            std::fs::copy(&path, &copy)?;
            let mut raw = Connection::open(&copy)?;
            raw.pragma_update(None, "journal_mode", "wal")?;
            raw.pragma_update(None, "synchronous", "normal")?;
            raw.pragma_update(None, "wal_autocheckpoint", 0)?;
            let tx = raw.transaction()?;
            tx.execute_batch(
                "CREATE TEMP TABLE doomed (id INTEGER PRIMARY KEY);
                 INSERT INTO doomed SELECT id FROM traces ORDER BY created_at
                 LIMIT (SELECT COUNT(*) / 2 FROM traces);",
            )?;
            for table in [
                "trace_metadata WHERE trace_id",
                "trace_text WHERE id",
                "trace_trigrams WHERE rowid",
                "trace_bodies WHERE id",
                "traces WHERE id",
            ] {
                if skip_fts && table.starts_with("trace_trigrams") {
                    continue;
                }
                let start = Instant::now();
                let n = tx.execute(
                    &format!("DELETE FROM {table} IN (SELECT id FROM doomed)"),
                    [],
                )?;
                println!("  delete {n} from {table}: {}", ms(start.elapsed()));
            }
            let start = Instant::now();
            tx.commit()?;
            println!(
                "  commit (FTS deletes skipped: {skip_fts}): {}",
                ms(start.elapsed())
            );
            drop(raw);
            std::fs::remove_file(&copy)?;
        }
    }

    // Purge of half the store, by count (V2_SPEED_NO_PURGE=1 keeps the database whole).
    if std::env::var_os("V2_SPEED_NO_PURGE").is_some() {
        return Ok(());
    }
    let keep = (count / 2) as u64;
    let start = Instant::now();
    let report = store.purge(
        &RetentionPolicy::new().with_max_count(keep),
        Timestamp::now(),
    )?;
    println!(
        "purge of {} of {} traces: {}",
        report.deleted(),
        count + 1,
        ms(start.elapsed())
    );
    Ok(())
}
