//! What the memory store costs on real traces: resident memory per trace against the
//! trace's JSON bytes, `save` and `load` against the copy the contract requires
//! (`Trace::validate` + `Trace::clone`), and the since + min_steps query of the
//! selectools replay.
//!
//! ```sh
//! cargo run --release -p trace-store-memory --example memory_cost -- \
//!     [--n 100000] [../shared/bench/selectools-workload-10k/traces.jsonl.gz]
//! ```
//!
//! The workload's traces are saved `--n` times in all, cloned with new run_ids, and the
//! process's resident set is read before and after (`/proc/self/statm`), so the figure
//! is what the allocator really holds, fragmentation and bookkeeping included.

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use trace_store_core::{Timestamp, Trace, TraceFilter, TraceStore};
use trace_store_memory::MemoryStore;

type Failure = Box<dyn std::error::Error>;

fn resident_bytes() -> Result<u64, Failure> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .ok_or("no resident field in /proc/self/statm")?
        .parse()?;
    Ok(pages * 4096)
}

/// Page faults of this process so far (minor and major, `/proc/self/stat`).
fn faults() -> Result<u64, Failure> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the parenthesised command name; minflt and majflt are 10th and 12th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .ok_or("no command in /proc/self/stat")?
        .1
        .split_whitespace()
        .collect();
    Ok(fields[7].parse::<u64>()? + fields[9].parse::<u64>()?)
}

fn median(mut samples: Vec<Duration>) -> f64 {
    samples.sort_unstable();
    samples[samples.len() / 2].as_secs_f64() * 1e6
}

fn read_traces(path: &str) -> Result<Vec<Trace>, Failure> {
    let file = std::fs::File::open(path)?;
    let mut traces = Vec::new();
    for line in BufReader::new(flate2::read::GzDecoder::new(file)).split(b'\n') {
        let line = line?;
        if !line.iter().all(u8::is_ascii_whitespace) {
            traces.push(trace_store_interop::selectools::trace_from_line(&line)?);
        }
    }
    Ok(traces)
}

fn main() -> Result<(), Failure> {
    let mut n = 100_000;
    let mut queries = 21;
    let mut path = "../shared/bench/selectools-workload-10k/traces.jsonl.gz".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--n" => n = args.next().ok_or("--n needs a number")?.parse()?,
            "--queries" => queries = args.next().ok_or("--queries needs a number")?.parse()?,
            _ => path = arg,
        }
    }
    let traces = read_traces(&path)?;
    if traces.is_empty() {
        return Err("no traces in the workload".into());
    }

    // Resident memory per trace: n saves of clones with new run_ids.
    let store = MemoryStore::unbounded();
    let mut json_bytes = 0u64;
    let before = resident_bytes()?;
    for i in 0..n {
        let mut trace = traces[i % traces.len()].clone();
        trace.run_id = format!("{}-{}", trace.run_id, i / traces.len());
        json_bytes += trace.to_json_vec()?.len() as u64;
        store.save(&trace)?;
    }
    let grown = resident_bytes()?.saturating_sub(before);
    let per_trace = grown as f64 / n as f64;
    let json = json_bytes as f64 / n as f64;
    println!(
        "{n} traces: {per_trace:.0} B resident per trace, {json:.0} B of JSON per trace: {:.2}x",
        per_trace / json
    );
    drop(store);

    // Save and load against the required copy, alternating per trace so that both see
    // the same caches and the same load on the machine.
    let store = MemoryStore::unbounded();
    let (mut saves, mut copies, mut loads, mut load_copies) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // Whichever of two timed calls first touches a trace pays its cache misses, so
    // each pair runs in alternating order.
    let copy_of = |trace: &Trace, samples: &mut Vec<Duration>| -> Result<(), Failure> {
        let started = Instant::now();
        let copy = trace.validate().map(|()| trace.clone())?;
        samples.push(started.elapsed());
        drop(copy);
        Ok(())
    };
    for (i, trace) in traces.iter().enumerate() {
        if i % 2 == 0 {
            copy_of(trace, &mut copies)?;
        }
        let started = Instant::now();
        store.save(trace)?;
        saves.push(started.elapsed());
        if i % 2 == 1 {
            copy_of(trace, &mut copies)?;
        }
    }
    for (i, trace) in traces.iter().step_by(7).enumerate() {
        if i % 2 == 0 {
            copy_of(trace, &mut load_copies)?;
        }
        let started = Instant::now();
        let loaded = store.load(&trace.run_id)?;
        loads.push(started.elapsed());
        if i % 2 == 1 {
            copy_of(trace, &mut load_copies)?;
        }
        if loaded != *trace {
            return Err(format!("{} did not load back equal", trace.run_id).into());
        }
    }
    let (save, copy) = (median(saves), median(copies));
    let (load, load_copy) = (median(loads), median(load_copies));
    println!(
        "save {save:.2} us, validate + clone {copy:.2} us: {:.2}x",
        save / copy
    );
    println!(
        "load {load:.2} us, validate + clone {load_copy:.2} us: {:.2}x",
        load / load_copy
    );

    let since: Timestamp = "2026-01-16T00:00:00+00:00".parse()?;
    let filter = TraceFilter::new().with_since(since).with_min_steps(5);
    // The floor of an answer: a copy of the same rows from a plain vector, which
    // allocates what the answer must. Query and copy alternate.
    let answer = store.query(&filter)?;
    let (mut times, mut copies) = (Vec::new(), Vec::new());
    let (mut query_faults, mut copy_faults) = (0, 0);
    for _ in 0..queries {
        let before = faults()?;
        let started = Instant::now();
        let page = store.query(&filter)?;
        times.push(started.elapsed());
        query_faults += faults()? - before;
        if page != answer {
            return Err("the since query changed its answer".into());
        }
        drop(page);
        let before = faults()?;
        let started = Instant::now();
        let copy = answer.clone();
        copies.push(started.elapsed());
        copy_faults += faults()? - before;
        drop(copy);
    }
    let per = |faults: u64| faults / queries.max(1) as u64;
    let (query, copy) = (median(times) / 1e3, median(copies) / 1e3);
    println!(
        "since + min_steps over {}: {query:.3} ms median ({} faults), a copy of its {} rows {copy:.3} ms ({} faults): {:.2}x",
        traces.len(),
        per(query_faults),
        answer.len(),
        per(copy_faults),
        query / copy
    );
    Ok(())
}
