//! `save` and `load` beside their floors, in one process on the selectools workload:
//! a bare append of the encoded body (one `write(2)` on an `O_APPEND` file) plus the
//! encoding, and a bare positioned read of the body plus its decoding.
//!
//! ```sh
//! cargo run --release -p trace-store-jsonl --example save_load_cost -- \
//!     ../shared/bench/selectools-workload-10k/traces.jsonl.gz
//! ```

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::FileExt;
use std::time::Instant;

use trace_store_core::{Trace, TraceStore};
use trace_store_jsonl::{JsonlOptions, JsonlStore};

type Failure = Box<dyn std::error::Error>;

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn timed(samples: &mut Vec<f64>, f: impl FnOnce()) {
    let started = Instant::now();
    f();
    samples.push(started.elapsed().as_secs_f64() * 1e6);
}

fn main() -> Result<(), Failure> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "../shared/bench/selectools-workload-10k/traces.jsonl.gz".into());
    let file = std::fs::File::open(&path)?;
    let mut traces: Vec<Trace> = Vec::new();
    for line in BufReader::new(flate2::read::GzDecoder::new(file)).split(b'\n') {
        let line = line?;
        if !line.iter().all(u8::is_ascii_whitespace) {
            traces.push(trace_store_interop::selectools::trace_from_line(&line)?);
        }
    }
    let dir = tempfile::tempdir()?;
    let store = JsonlStore::open_with(
        dir.path().join("t.jsonl"),
        JsonlOptions::default().without_auto_compact(),
    )?;
    let mut bare = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(dir.path().join("bare.jsonl"))?;
    let (mut encode, mut append, mut save) = (Vec::new(), Vec::new(), Vec::new());
    let mut places = Vec::new();
    let mut at = 0u64;
    // Trace by trace, taking turns at going first, so both see the same machine and
    // neither always finds the trace warm in the cache.
    for (i, trace) in traces.iter().enumerate() {
        let store_first = i % 2 == 0;
        if store_first {
            timed(&mut save, || store.save(trace).map(drop).unwrap_or(()));
        }
        let mut body = Vec::new();
        timed(&mut encode, || {
            body = trace.to_json_vec().unwrap_or_default()
        });
        body.push(b'\n');
        timed(&mut append, || bare.write_all(&body).unwrap_or(()));
        places.push((at, body.len() - 1));
        at += body.len() as u64;
        if !store_first {
            timed(&mut save, || store.save(trace).map(drop).unwrap_or(()));
        }
    }
    let (mut pread, mut decode, mut load) = (Vec::new(), Vec::new(), Vec::new());
    for (i, trace) in traces.iter().enumerate().step_by(10) {
        let (offset, len) = places[i];
        let mut buf = vec![0; len];
        if i % 20 == 0 {
            timed(&mut load, || drop(store.load(&trace.run_id)));
        }
        timed(&mut pread, || {
            bare.read_exact_at(&mut buf, offset).unwrap_or(())
        });
        timed(&mut decode, || drop(Trace::from_json_slice(&buf)));
        if i % 20 != 0 {
            timed(&mut load, || drop(store.load(&trace.run_id)));
        }
    }
    let (encode, append, save) = (median(encode), median(append), median(save));
    let (pread, decode, load) = (median(pread), median(decode), median(load));
    println!(
        "medians, µs ({} saves, {} loads)",
        traces.len(),
        traces.len() / 10
    );
    println!(
        "save {save:.1}  vs append {append:.1} + encode {encode:.1} = {:.1}: {:.2}x",
        append + encode,
        save / (append + encode)
    );
    println!(
        "load {load:.1}  vs pread {pread:.1} + decode {decode:.1} = {:.1}: {:.2}x",
        pread + decode,
        load / (pread + decode)
    );
    Ok(())
}
