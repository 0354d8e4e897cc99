//! A JSON Lines store of a million realistic traces: index memory per trace, open time
//! with and without a valid index snapshot, and a few reads at that size.
//!
//! ```sh
//! cargo run --release -p trace-store-jsonl --example scale -- \
//!     --n 1000000 --dir /tmp/jsonl-scale \
//!     --workload ../shared/bench/selectools-workload-10k/traces.jsonl.gz
//! ```
//!
//! The traces are clones of the selectools workload's (about 4 KB each), imported with
//! `trace_store_interop::selectools::trace_from_line`, each clone with a new run_id and
//! its times shifted past the previous clone's. The file is generated once and reused.
//! Index memory is the growth of the process's resident set across `open`, so it
//! includes allocator overhead: an upper bound of what the index holds.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::Instant;

use trace_store_core::{Trace, TraceFilter, TraceStore};
use trace_store_jsonl::{JsonlOptions, JsonlStore};

type Failure = Box<dyn std::error::Error>;

struct Args {
    n: usize,
    dir: PathBuf,
    workload: PathBuf,
    /// Only time opens that use the snapshot left by an earlier run.
    warm: bool,
}

fn args() -> Result<Args, Failure> {
    let mut args = Args {
        n: 1_000_000,
        dir: std::env::temp_dir().join("trace-store-jsonl-scale"),
        workload: PathBuf::from("../shared/bench/selectools-workload-10k/traces.jsonl.gz"),
        warm: false,
    };
    let mut given = std::env::args().skip(1);
    while let Some(flag) = given.next() {
        if flag == "--warm" {
            args.warm = true;
            continue;
        }
        let value = given.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--n" => args.n = value.parse()?,
            "--dir" => args.dir = value.into(),
            "--workload" => args.workload = value.into(),
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    Ok(args)
}

fn workload(path: &Path) -> Result<Vec<Trace>, Failure> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|ext| ext == "gz") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut traces = Vec::new();
    for line in BufReader::new(reader).split(b'\n') {
        let line = line?;
        if !line.iter().all(u8::is_ascii_whitespace) {
            traces.push(trace_store_interop::selectools::trace_from_line(&line)?);
        }
    }
    Ok(traces)
}

/// Clone `round` of `trace`: a new 32-character run_id, times shifted by `shift` µs.
fn clone_of(trace: &Trace, round: usize, shift: i64) -> Trace {
    let mut clone = trace.clone();
    let keep = clone.run_id.len().min(24);
    clone.run_id = format!("{}{round:08x}", &trace.run_id[..keep]);
    clone.created_at = clone.created_at.saturating_add_micros(shift);
    if let Some(ended) = clone.ended_at.as_mut() {
        *ended = ended.saturating_add_micros(shift);
    }
    clone
}

fn generate(path: &Path, n: usize, traces: &[Trace]) -> Result<(), Failure> {
    let first = traces
        .iter()
        .map(|t| t.created_at)
        .min()
        .ok_or("no traces")?;
    let last = traces
        .iter()
        .map(|t| t.created_at)
        .max()
        .ok_or("no traces")?;
    let period = last.as_micros() - first.as_micros() + 1_000_000;
    let _ = std::fs::remove_file(path);
    let store = JsonlStore::open_with(path, JsonlOptions::default().without_auto_compact())?;
    let started = Instant::now();
    let mut batch = Vec::with_capacity(10_000);
    for i in 0..n {
        let round = i / traces.len();
        batch.push(clone_of(
            &traces[i % traces.len()],
            round,
            round as i64 * period,
        ));
        if batch.len() == 10_000 || i + 1 == n {
            store.save_many(&batch)?;
            batch.clear();
            if (i + 1) % 100_000 == 0 {
                eprintln!("generated {} of {n}", i + 1);
            }
        }
    }
    eprintln!("in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The resident set of this process, in bytes (Linux).
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// CPU seconds this process has used (user + system), from /proc (Linux): on a busy
/// machine, wall time says more about the neighbours than about the store.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses: utime is the 12th, stime
    // the 13th; both in clock ticks (100 per second on Linux).
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let cpu = cpu_seconds();
    let out = f();
    println!(
        "{what}: {:.3} s wall, {:.2} s CPU",
        started.elapsed().as_secs_f64(),
        cpu_seconds() - cpu
    );
    out
}

fn main() -> Result<(), Failure> {
    let args = args()?;
    std::fs::create_dir_all(&args.dir)?;
    let path = args.dir.join(format!("scale-{}.jsonl", args.n));
    let options = JsonlOptions::default().without_auto_compact();
    // A marker, not an open, says the file is complete: an open here would leave its
    // freed index in this process's heap and spoil the measurement below.
    let done = path.with_extension("generated");
    let reusable = std::fs::read_to_string(&done).is_ok_and(|n| n.trim() == args.n.to_string());
    if !reusable {
        let traces = workload(&args.workload)?;
        generate(&path, args.n, &traces)?;
        std::fs::write(&done, args.n.to_string())?;
        println!("generated; run again to measure in a fresh process");
        return Ok(());
    }
    let file_bytes = std::fs::metadata(&path)?.len();
    println!(
        "{} traces, {:.2} GB, {:.0} bytes per line",
        args.n,
        file_bytes as f64 / 1e9,
        file_bytes as f64 / args.n as f64
    );
    if args.warm {
        return snapshot_opens(&path, &options, args.n);
    }
    for snapshot in snapshot_files(&path) {
        let _ = std::fs::remove_file(snapshot);
    }

    let before = rss();
    let store = timed("open, no snapshot", || {
        JsonlStore::open_with(&path, options.clone())
    })?;
    let grown = rss().saturating_sub(before);
    println!(
        "index: {:.0} MB resident, {:.0} bytes per trace",
        grown as f64 / 1e6,
        grown as f64 / args.n as f64
    );
    reads(&store)?;
    drop(store);
    snapshot_opens(&path, &options, args.n)
}

fn snapshot_opens(path: &Path, options: &JsonlOptions, n: usize) -> Result<(), Failure> {
    for round in 1..=3 {
        let store = timed(&format!("open #{round}, snapshot beside the file"), || {
            JsonlStore::open_with(path, options.clone())
        })?;
        let health = store.health()?;
        assert_eq!(health.live_records, n as u64);
        assert!(health.index_from_snapshot, "the snapshot was not used");
        if round == 1 {
            // A re-save of a trace from the middle of the list order is the first write
            // out of that order: it turns the order and the trace's postings from the
            // snapshot's vectors into trees. The store keeps its n traces.
            let middle = store.list(1, n / 2)?;
            let trace = store.load(&middle.first().ok_or("empty store")?.run_id)?;
            timed("  first re-save of an older trace", || store.save(&trace))?;
            timed("  second re-save", || store.save(&trace))?;
        }
        drop(store);
    }
    Ok(())
}

/// Files beside the store that are not the store: index snapshots, whatever their name.
fn snapshot_files(path: &Path) -> Vec<PathBuf> {
    let name = path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| entry.path())
                .filter(|p| {
                    let file = p.file_name().unwrap_or_default().to_string_lossy();
                    file.starts_with(&name) && file.len() > name.len()
                })
                .collect()
        })
        .unwrap_or_default()
}

fn reads(store: &JsonlStore) -> Result<(), Failure> {
    let page = timed("list(50)", || store.list(50, 0))?;
    let first = page.first().ok_or("empty store")?.clone();
    let user = first.metadata.get("user_id").cloned();
    if let Some(user) = user {
        let hits = timed("query user_id (all rows)", || {
            store.query(&TraceFilter::new().with_metadata("user_id", user))
        })?;
        println!("  {} rows", hits.len());
    }
    let since = first.created_at.saturating_add_micros(-86_400_000_000);
    let hits = timed("query since a day + min_steps 5", || {
        store.query(&TraceFilter::new().with_since(since).with_min_steps(5))
    })?;
    println!("  {} rows", hits.len());
    timed("count()", || store.count(&TraceFilter::new()))?;
    timed("load x1000", || -> Result<(), Failure> {
        for summary in &page {
            for _ in 0..20 {
                store.load(&summary.run_id)?;
            }
        }
        Ok(())
    })?;
    Ok(())
}
