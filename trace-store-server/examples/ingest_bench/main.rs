//! Ingest benchmark for `trace-store serve` (not a test; prints figures as JSON).
//!
//! ```sh
//! cargo run --release -p trace-store-server --example ingest_bench
//! cargo run --release -p trace-store-server --example ingest_bench -- --serve-binary target/release/trace-store
//! ```
//!
//! 1. Throughput: 4 concurrent exporters post protobuf batches of 512 spans (32 traces
//!    of 16 GenAI spans each) as fast as the server answers, into a SQLite file.
//! 2. Latency: an open-loop sender offers 5,000 spans/s (64-span batches, about 78
//!    requests/s) for 15 s and reports request latency percentiles.
//! 3. With `--serve-binary PATH`: the resident memory of an idle `trace-store serve`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use trace_store_core::{TraceFilter, TraceStore};
use trace_store_server::{Server, ServerOptions};

const SPANS_PER_TRACE: u64 = 16;

fn attribute(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

/// A batch of `spans` spans forming complete traces, numbered from `first_trace`.
fn batch(first_trace: u64, spans: u64, start_nanos: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(spans as usize);
    for n in 0..spans {
        let trace = first_trace + n / SPANS_PER_TRACE;
        let index = n % SPANS_PER_TRACE;
        let mut trace_id = [0u8; 16];
        trace_id[..8].copy_from_slice(&trace.to_be_bytes());
        trace_id[8] = 0xab;
        let span_id = |i: u64| (trace * 100 + i + 1).to_be_bytes().to_vec();
        let (operation, model) = if index % 4 == 3 {
            ("execute_tool", None)
        } else {
            ("chat", Some("gpt-4o-mini"))
        };
        let mut attributes = vec![
            attribute("gen_ai.operation.name", any_value::Value::StringValue(operation.into())),
            attribute("gen_ai.usage.input_tokens", any_value::Value::IntValue(420)),
            attribute("gen_ai.usage.output_tokens", any_value::Value::IntValue(64)),
            attribute(
                "gen_ai.input.messages",
                any_value::Value::StringValue(
                    r#"[{"role":"user","parts":[{"type":"text","content":"What is the weather in Paris today?"}]}]"#.into(),
                ),
            ),
        ];
        if let Some(model) = model {
            attributes.push(attribute(
                "gen_ai.request.model",
                any_value::Value::StringValue(model.into()),
            ));
        } else {
            attributes.push(attribute(
                "gen_ai.tool.name",
                any_value::Value::StringValue("web_search".into()),
            ));
        }
        out.push(Span {
            trace_id: trace_id.to_vec(),
            span_id: span_id(index),
            parent_span_id: if index == 0 { Vec::new() } else { span_id(0) },
            name: format!("{operation} {index}"),
            kind: 1,
            start_time_unix_nano: start_nanos + index * 1_000_000,
            end_time_unix_nano: start_nanos + index * 1_000_000 + 800_000,
            attributes,
            ..Default::default()
        });
    }
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![attribute(
                    "service.name",
                    any_value::Value::StringValue("bench".into()),
                )],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: out,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

async fn post(client: &reqwest::Client, url: &str, body: Vec<u8>) -> Duration {
    let started = Instant::now();
    let response = client
        .post(url)
        .header("content-type", "application/x-protobuf")
        .body(body)
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    started.elapsed()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

async fn throughput(url: &str, store: &dyn TraceStore) -> f64 {
    const EXPORTERS: u64 = 4;
    const BATCHES_PER_EXPORTER: u64 = 50;
    const BATCH: u64 = 512;
    let start = now_nanos();
    let mut work = Vec::new();
    for exporter in 0..EXPORTERS {
        let bodies: Vec<Vec<u8>> = (0..BATCHES_PER_EXPORTER)
            .map(|b| {
                let first = (exporter * BATCHES_PER_EXPORTER + b) * (BATCH / SPANS_PER_TRACE);
                batch(first, BATCH, start)
            })
            .collect();
        work.push(bodies);
    }
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for bodies in work {
        let client = client.clone();
        let url = url.to_owned();
        tasks.push(tokio::spawn(async move {
            for body in bodies {
                post(&client, &url, body).await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let spans = EXPORTERS * BATCHES_PER_EXPORTER * BATCH;
    let traces = store.count(&TraceFilter::new()).unwrap();
    assert_eq!(traces, spans / SPANS_PER_TRACE, "every trace arrived");
    spans as f64 / elapsed
}

async fn latency(url: &str) -> (usize, f64, f64, f64, f64) {
    const RATE: f64 = 5_000.0;
    const BATCH: u64 = 64;
    const SECONDS: f64 = 15.0;
    let requests = (RATE * SECONDS / BATCH as f64) as u64;
    let interval = Duration::from_secs_f64(BATCH as f64 / RATE);
    let start = now_nanos();
    let first_trace = 1_000_000;
    let client = reqwest::Client::new();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::new();
    for r in 0..requests {
        let body = batch(first_trace + r * (BATCH / SPANS_PER_TRACE), BATCH, start);
        ticker.tick().await;
        let client = client.clone();
        let url = url.to_owned();
        tasks.push(tokio::spawn(async move { post(&client, &url, body).await }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.push(task.await.unwrap());
    }
    latencies.sort();
    (
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 0.999),
        latencies.last().unwrap().as_secs_f64() * 1000.0,
    )
}

/// Resident memory of an idle server, in MiB, from /proc: `binary` is a
/// `trace-store` CLI (`serve`), or this program itself (`--idle-serve`).
fn idle_rss(binary: &str) -> f64 {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("idle.db").display());
    let mut command = std::process::Command::new(binary);
    if binary == std::env::current_exe().unwrap().to_str().unwrap() {
        command.args(["--idle-serve", &store]);
    } else {
        command.args(["--store", &store, "serve", "--listen", "127.0.0.1:0"]);
    }
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start serve");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    kib / 1024.0
}

/// Where one request's time goes, without HTTP: decoding a 512-span batch, and
/// merging its 32 traces into SQLite (one writer, no concurrency).
fn breakdown() {
    let body = batch(9_000_000, 512, now_nanos());
    let rounds = 20;
    let started = Instant::now();
    let mut parts = Vec::new();
    for _ in 0..rounds {
        parts = trace_store_otlp::decode_traces(&body, trace_store_otlp::Encoding::Protobuf)
            .unwrap()
            .parts;
    }
    let decode_ms = started.elapsed().as_secs_f64() * 1000.0 / rounds as f64;
    let dir = tempfile::tempdir().unwrap();
    let store = trace_store_sqlite::SqliteStore::open(dir.path().join("b.db")).unwrap();
    let started = Instant::now();
    for round in 0..rounds {
        for part in &parts {
            let mut part = part.clone();
            part.run_id = format!("{}-{round}", part.run_id);
            store.merge(&part).unwrap();
        }
    }
    let merge_ms = started.elapsed().as_secs_f64() * 1000.0 / (rounds * parts.len()) as f64;
    let started = Instant::now();
    for round in 0..rounds {
        let renamed: Vec<_> = parts
            .iter()
            .map(|part| {
                let mut part = part.clone();
                part.run_id = format!("{}-save-{round}", part.run_id);
                part
            })
            .collect();
        store.save_many(&renamed).unwrap();
    }
    let save_many_ms = started.elapsed().as_secs_f64() * 1000.0 / (rounds * parts.len()) as f64;
    println!(
        "{{\"bench\": \"breakdown\", \"decode_512_spans_ms\": {decode_ms:.2}, \"merge_one_new_trace_ms\": {merge_ms:.3}, \"save_many_per_trace_ms\": {save_many_ms:.3}}}"
    );
}

/// What `trace-store serve` runs, with nothing else in the process: for `idle_rss`.
async fn idle_serve(store_url: &str) {
    let path = store_url.trim_start_matches("sqlite://");
    let store: Arc<dyn TraceStore> = Arc::new(trace_store_sqlite::SqliteStore::open(path).unwrap());
    let options = ServerOptions::new().with_listen("127.0.0.1:0".parse().unwrap());
    let server = Server::bind(store, options).await.unwrap();
    println!("http://{}/", server.local_addr());
    server
        .run_until(trace_store_server::shutdown_signal())
        .await
        .unwrap();
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--idle-serve") {
        return idle_serve(&args[i + 1]).await;
    }
    breakdown();
    let serve_binary = args
        .iter()
        .position(|a| a == "--serve-binary")
        .and_then(|i| args.get(i + 1).cloned());

    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn TraceStore> =
        Arc::new(trace_store_sqlite::SqliteStore::open(dir.path().join("bench.db")).unwrap());
    let options = ServerOptions::new().with_listen("127.0.0.1:0".parse().unwrap());
    let server = Server::bind(Arc::clone(&store), options).await.unwrap();
    let url = format!("http://{}/v1/traces", server.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run_until(async {
        let _ = stopped.await;
    }));

    let spans_per_second = throughput(&url, &*store).await;
    println!(
        "{{\"bench\": \"ingest_throughput\", \"exporters\": 4, \"batch_spans\": 512, \"spans_per_second\": {spans_per_second:.0}}}"
    );
    let (n, p50, p99, p999, max) = latency(&url).await;
    println!(
        "{{\"bench\": \"latency_at_5000_spans_per_second\", \"batch_spans\": 64, \"requests\": {n}, \"p50_ms\": {p50:.2}, \"p99_ms\": {p99:.2}, \"p999_ms\": {p999:.2}, \"max_ms\": {max:.2}}}"
    );
    let _ = stop.send(());
    running.await.unwrap().unwrap();
    // The `trace-store` CLI when given, and this program's `--idle-serve` (the same
    // server in release mode, nothing else in the process).
    let own = std::env::current_exe().unwrap().display().to_string();
    for binary in serve_binary.into_iter().chain([own]) {
        println!(
            "{{\"bench\": \"idle_rss\", \"binary\": {binary:?}, \"rss_mib\": {:.1}}}",
            idle_rss(&binary)
        );
    }
}
