//! PostgreSQL write throughput with many writer PROCESSES, and save latency paired with a
//! bare tokio-postgres upsert of the same bytes.
//!
//! ```text
//! cargo run --release -p trace-store-bench --example postgres_writers -- \
//!     [--workload PATH] [--n 10000] [--writers 1,8] [--servers launcher,durable] [--paired]
//! ```
//!
//! Each writer count runs as that many child processes (this program again, with
//! `--child`), each saving its share of the workload into ONE store, one `save` per
//! trace; the parent starts them together once all are connected and reports saves per
//! second over the wall time. The same is done with a bare tokio-postgres upsert of
//! `(run_id, created_at, body)` for context. Servers: `launcher` is the test launcher's
//! (`fsync=off`), `durable` adds `fsync=on` and `synchronous_commit=on`, as PostgreSQL is
//! run in production. `--paired` times `save` and the bare upsert in turn, trace by
//! trace, so that both see the same machine load.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use trace_store::{PostgresStore, Trace, TraceStore};
use trace_store_test_support::PostgresServer;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

const WORKSPACE_ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        return child(&args[1..]);
    }
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let workload = value("--workload").map_or_else(default_workload, PathBuf::from);
    let n: usize = value("--n").map_or(Ok(10_000), |v| v.parse())?;
    let writers: Vec<usize> = value("--writers")
        .unwrap_or_else(|| "1,8".into())
        .split(',')
        .map(str::parse)
        .collect::<std::result::Result<_, _>>()?;
    let servers = value("--servers").unwrap_or_else(|| "launcher,durable".into());
    let n = read_traces(&workload, n)?.len();
    println!(
        "workload {} (n = {n}); {} cores; load average {}",
        workload.display(),
        std::thread::available_parallelism().map_or(0, usize::from),
        load_avg()
    );
    if args.iter().any(|a| a == "--paired") {
        paired(&workload, n)?;
    }
    for server_kind in servers.split(',').filter(|s| !s.is_empty()) {
        let server = match server_kind {
            "durable" => {
                PostgresServer::start_with(&[("fsync", "on"), ("synchronous_commit", "on")])?
            }
            _ => PostgresServer::start()?,
        };
        println!("\nserver: {server_kind}");
        println!("| writers | what | saves/s | x one writer |");
        println!("|--:|---|--:|--:|");
        for kind in ["store", "bare"] {
            let mut one = None;
            for &w in &writers {
                let rate = run_writers(&server.url(), kind, w, &workload, n)?;
                let base = *one.get_or_insert(rate);
                println!("| {w} | {kind} | {rate:.0} | {:.2}x |", rate / base);
            }
        }
    }
    println!("load average at the end {}", load_avg());
    Ok(())
}

fn default_workload() -> PathBuf {
    let shared =
        Path::new(WORKSPACE_ROOT).join("../shared/bench/selectools-workload-10k/traces.jsonl.gz");
    if shared.exists() {
        shared
    } else {
        Path::new(WORKSPACE_ROOT).join("testdata/selectools-200.jsonl")
    }
}

/// Starts `writers` children on one store, waits until all are connected, lets them go
/// together and returns saves per second over the wall time.
fn run_writers(url: &str, kind: &str, writers: usize, workload: &Path, n: usize) -> Result<f64> {
    let schema = format!("{kind}_{writers}");
    let store_url = format!("{url}?schema={schema}");
    if kind == "store" {
        PostgresStore::open(&store_url)?; // creates the tables once, before the clock
    } else {
        bare_setup(url, &schema)?;
    }
    let exe = std::env::current_exe()?;
    let mut children = Vec::new();
    for i in 0..writers {
        let (from, to) = (i * n / writers, (i + 1) * n / writers);
        let child = Command::new(&exe)
            .args(["--child", kind, &store_url, url, &schema])
            .arg(workload)
            .args([from.to_string(), to.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        children.push(child);
    }
    let mut outputs = Vec::new();
    for child in &mut children {
        let mut out = BufReader::new(child.stdout.take().ok_or("no child stdout")?);
        let mut line = String::new();
        out.read_line(&mut line)?;
        if line.trim() != "ready" {
            return Err(format!("a writer did not start: {line:?}").into());
        }
        outputs.push(out);
    }
    let started = Instant::now();
    for child in &mut children {
        writeln!(child.stdin.as_mut().ok_or("no child stdin")?, "go")?;
    }
    for (child, mut out) in children.iter_mut().zip(outputs) {
        let mut rest = String::new();
        out.read_to_string(&mut rest)?;
        if !child.wait()?.success() || rest.trim() != "done" {
            return Err(format!("a writer failed: {rest:?}").into());
        }
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// One writer process: `--child KIND STORE_URL SERVER_URL SCHEMA WORKLOAD FROM TO`.
fn child(args: &[String]) -> Result<()> {
    let [kind, store_url, url, schema, workload, from, to] = args else {
        return Err("usage: --child KIND STORE_URL SERVER_URL SCHEMA WORKLOAD FROM TO".into());
    };
    let (from, to): (usize, usize) = (from.parse()?, to.parse()?);
    let traces = read_traces(Path::new(workload), to)?.split_off(from);
    let wait_for_go = || -> Result<()> {
        println!("ready");
        std::io::stdout().flush()?;
        std::io::stdin().read_line(&mut String::new())?;
        Ok(())
    };
    if kind == "store" {
        let store = PostgresStore::open(store_url)?;
        wait_for_go()?;
        for trace in &traces {
            store.save(trace)?;
        }
    } else {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (client, connection) =
            runtime.block_on(tokio_postgres::connect(url, tokio_postgres::NoTls))?;
        runtime.spawn(connection);
        let insert = runtime.block_on(client.prepare(&bare_upsert(schema)))?;
        let bodies: Vec<String> = traces
            .iter()
            .map(Trace::to_json_string)
            .collect::<std::result::Result<_, _>>()?;
        wait_for_go()?;
        for (trace, body) in traces.iter().zip(&bodies) {
            let at = trace.created_at.as_micros();
            runtime.block_on(client.execute(&insert, &[&trace.run_id, &at, body]))?;
        }
    }
    println!("done");
    Ok(())
}

fn bare_setup(url: &str, schema: &str) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema};
                 CREATE TABLE {schema}.bare (run_id TEXT COLLATE \"C\" PRIMARY KEY,
                     created_at BIGINT NOT NULL, body TEXT NOT NULL)"
            ))
            .await
    })?;
    Ok(())
}

fn bare_upsert(schema: &str) -> String {
    format!(
        "INSERT INTO {schema}.bare (run_id, created_at, body) VALUES ($1, $2, $3)
         ON CONFLICT (run_id) DO UPDATE SET created_at = EXCLUDED.created_at, body = EXCLUDED.body"
    )
}

/// `save` and the bare upsert, in turn trace by trace (which goes first rotating), on
/// the launcher's server; then `load` beside the bare select. The bare upsert runs twice:
/// into a column with the server's default compression (`pglz`) and into one with LZ4,
/// which the store's layout uses, so that neither side gains from the setting alone.
fn paired(workload: &Path, n: usize) -> Result<()> {
    let server = PostgresServer::start()?;
    // An existing server instead, e.g. one logging statement durations.
    let url = std::env::var("TRACE_STORE_POSTGRES_URL").unwrap_or_else(|_| server.url());
    let traces = read_traces(workload, n)?;
    let store = PostgresStore::open(&format!("{url}?schema=paired"))?;
    bare_setup(&url, "paired_bare")?;
    bare_setup(&url, "paired_lz4")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (client, connection) =
        runtime.block_on(tokio_postgres::connect(&url, tokio_postgres::NoTls))?;
    runtime.spawn(connection);
    runtime.block_on(
        client.batch_execute("ALTER TABLE paired_lz4.bare ALTER body SET COMPRESSION lz4"),
    )?;
    let insert = runtime.block_on(client.prepare(&bare_upsert("paired_bare")))?;
    let insert_lz4 = runtime.block_on(client.prepare(&bare_upsert("paired_lz4")))?;
    let select =
        runtime.block_on(client.prepare("SELECT body FROM paired_bare.bare WHERE run_id = $1"))?;
    let mut samples = [Vec::new(), Vec::new(), Vec::new()];
    for (i, trace) in traces.iter().enumerate() {
        let body = trace.to_json_string()?;
        let at = trace.created_at.as_micros();
        for arm in (0..3).map(|k| (i + k) % 3) {
            let t = Instant::now();
            match arm {
                0 => drop(store.save(trace)?),
                1 => drop(runtime.block_on(client.execute(&insert, &[&trace.run_id, &at, &body]))?),
                _ => drop(
                    runtime.block_on(client.execute(&insert_lz4, &[&trace.run_id, &at, &body]))?,
                ),
            }
            samples[arm].push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    let (mut loads, mut selects) = (Vec::new(), Vec::new());
    for trace in traces.iter().step_by((traces.len() / 1000).max(1)) {
        let t = Instant::now();
        store.load(&trace.run_id)?;
        loads.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        runtime.block_on(client.query_one(&select, &[&trace.run_id]))?;
        selects.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let [ours, bare, bare_lz4] = samples;
    println!("\npaired, launcher server, ms (median / p95 / mean):");
    for (what, ours, bare) in [
        ("save vs bare upsert (pglz)", &ours, bare),
        ("save vs bare upsert (lz4)", &ours, bare_lz4),
        ("load vs bare select", &loads, selects),
    ] {
        let (om, op, oa) = median_p95_mean(ours.clone());
        let (bm, bp, ba) = median_p95_mean(bare);
        println!(
            "  {what}: {om:.3} / {op:.3} / {oa:.3} vs {bm:.3} / {bp:.3} / {ba:.3}: \
             {:.2}x median, {:.2}x mean",
            om / bm,
            oa / ba
        );
    }
    Ok(())
}

fn median_p95_mean(mut samples: Vec<f64>) -> (f64, f64, f64) {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    let mean = samples.iter().sum::<f64>() / samples.len().max(1) as f64;
    (at(0.5), at(0.95), mean)
}

fn read_traces(path: &Path, limit: usize) -> Result<Vec<Trace>> {
    let file = std::fs::File::open(path)?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut traces = Vec::new();
    for line in BufReader::new(reader).lines() {
        if traces.len() == limit {
            break;
        }
        let line = line?;
        if !line.trim().is_empty() {
            traces.push(trace_store_interop::selectools::trace_from_line(
                line.as_bytes(),
            )?);
        }
    }
    Ok(traces)
}

fn load_avg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
