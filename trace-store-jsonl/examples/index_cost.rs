//! The JSON Lines index beside core's `SummaryIndex` (which it replaced) on the
//! selectools workload, in one process: list, metadata and time-range queries, so the
//! price of the compact summaries is measured, not guessed.
//!
//! ```sh
//! cargo run --release -p trace-store-jsonl --example index_cost -- \
//!     ../shared/bench/selectools-workload-10k/traces.jsonl.gz
//! ```

use std::io::{BufRead, BufReader};
use std::time::Instant;

use trace_store_core::{SummaryIndex, Timestamp, TraceFilter, TraceStore, TraceSummary};
use trace_store_jsonl::{JsonlOptions, JsonlStore};

type Failure = Box<dyn std::error::Error>;

fn median_ms(mut run: impl FnMut() -> usize) -> (f64, usize) {
    let mut times = Vec::new();
    let mut rows = 0;
    for _ in 0..21 {
        let started = Instant::now();
        rows = run();
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], rows)
}

fn main() -> Result<(), Failure> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "../shared/bench/selectools-workload-10k/traces.jsonl.gz".into());
    let file = std::fs::File::open(&path)?;
    let mut traces = Vec::new();
    for line in BufReader::new(flate2::read::GzDecoder::new(file)).split(b'\n') {
        let line = line?;
        if !line.iter().all(u8::is_ascii_whitespace) {
            traces.push(trace_store_interop::selectools::trace_from_line(&line)?);
        }
    }
    let dir = tempfile::tempdir()?;
    let store = JsonlStore::open_with(
        dir.path().join("t.jsonl"),
        JsonlOptions::default().without_index_snapshot(),
    )?;
    store.save_many(&traces)?;
    let mut core = SummaryIndex::new();
    for trace in &traces {
        core.insert(TraceSummary::from(trace));
    }
    let since: Timestamp = "2026-01-16T00:00:00+00:00".parse()?;
    let user = traces[0]
        .metadata
        .get("user_id")
        .cloned()
        .unwrap_or_default();
    let filters = [
        ("list(50)", TraceFilter::new().with_limit(50)),
        ("user_id", TraceFilter::new().with_metadata("user_id", user)),
        (
            "since + min_steps",
            TraceFilter::new().with_since(since).with_min_steps(5),
        ),
        ("everything", TraceFilter::new()),
    ];
    println!(
        "{:<18} {:>10} {:>10} {:>7}  rows",
        "query", "jsonl ms", "core ms", "ratio"
    );
    for (name, filter) in filters {
        let (ours, rows) = median_ms(|| store.query(&filter).map_or(0, |page| page.len()));
        let (theirs, expected) = median_ms(|| core.query(&filter).map_or(0, |page| page.len()));
        assert_eq!(rows, expected, "{name}");
        println!(
            "{name:<18} {ours:>10.3} {theirs:>10.3} {:>6.2}x  {rows}",
            ours / theirs
        );
    }
    let (count, _) = median_ms(|| store.count(&TraceFilter::new()).map_or(0, |n| n as usize));
    println!("count(all)         {count:>10.3}");
    Ok(())
}
