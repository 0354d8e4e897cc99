//! Ingest benchmark for `trace-store serve` (not a test; prints figures as JSON lines),
//! optionally beside Arize Phoenix fed the very same payloads in the same run.
//!
//! ```sh
//! cargo run --release -p trace-store-server --example ingest_bench
//! cargo run --release -p trace-store-server --example ingest_bench -- --serve-binary target/release/trace-store
//! # Phoenix beside it (scripts/interop-phoenix --bench installs and starts it):
//! cargo run --release -p trace-store-server --example ingest_bench -- \
//!     --phoenix http://127.0.0.1:6006 --phoenix-pid PID
//! ```
//!
//! 1. Throughput: 4 concurrent exporters post protobuf batches of 512 spans (32 traces
//!    of 16 GenAI spans each) as fast as the server answers, into a SQLite file; a
//!    429 or 503 is retried as an OTLP exporter retries it. No new batch starts after
//!    `--budget` seconds (120), so a slow target is measured on part of the payloads.
//!    For Phoenix, which answers before it stores, both the answered rate and the
//!    stored rate (until its span count reaches what it accepted) are reported.
//! 2. Latency: an open-loop sender offers 5,000 spans/s (64-span batches, about 78
//!    requests/s) for 15 s and reports request latency percentiles (a request still
//!    refused after 30 s of retries is dropped, and counts as slowest).
//! 3. Idle resident memory: this program's `--idle-serve` (the same server, release
//!    build, nothing else in the process), the `trace-store` CLI when given, and the
//!    Phoenix process tree before any load.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use trace_store_core::{TraceFilter, TraceStore};
use trace_store_server::{Server, ServerOptions};

mod phoenix;

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

/// Where the payloads go: `trace-store serve` (in this process) or Phoenix.
enum Target {
    TraceStore {
        url: String,
        store: Arc<dyn TraceStore>,
    },
    Phoenix(phoenix::Phoenix),
}

impl Target {
    fn name(&self) -> &'static str {
        match self {
            Target::TraceStore { .. } => "trace-store",
            Target::Phoenix(_) => "phoenix",
        }
    }

    fn url(&self) -> &str {
        match self {
            Target::TraceStore { url, .. } => url,
            Target::Phoenix(phoenix) => &phoenix.traces_url,
        }
    }

    /// Spans stored so far.
    async fn stored_spans(&self, client: &reqwest::Client) -> u64 {
        match self {
            Target::TraceStore { store, .. } => {
                store.count(&TraceFilter::new()).unwrap() * SPANS_PER_TRACE
            }
            Target::Phoenix(phoenix) => phoenix.span_count(client).await,
        }
    }

    /// Waits until `spans` are stored (at most `patience`); the spans stored then.
    async fn wait_stored(&self, client: &reqwest::Client, spans: u64, patience: Duration) -> u64 {
        let deadline = Instant::now() + patience;
        loop {
            let stored = self.stored_spans(client).await;
            if stored >= spans || Instant::now() >= deadline {
                return stored;
            }
            // Gently: counting Phoenix's spans is a query over all of them.
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// Retries made after a 429 or 503 ("at capacity"), as an OTLP exporter makes them.
static RETRIES: AtomicU64 = AtomicU64::new(0);

/// Posts one body until it is accepted, retrying 429 and 503 as an OTLP exporter does
/// (after `Retry-After`, else 100 ms doubling to 2 s); the time until accepted, or
/// `None` if it was not accepted within `give_up`.
async fn post(
    client: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
    give_up: Option<Duration>,
) -> Option<Duration> {
    let body = axum::body::Bytes::from(body);
    let started = Instant::now();
    let mut backoff = Duration::from_millis(100);
    loop {
        let response = client
            .post(url)
            .header("content-type", "application/x-protobuf")
            .body(body.clone())
            .send()
            .await
            .expect("POST");
        let status = response.status().as_u16();
        if status == 200 {
            return Some(started.elapsed());
        }
        assert!(
            status == 429 || status == 503,
            "{status}: {:?}",
            response.text().await
        );
        let wait = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
            .map_or(backoff, Duration::from_secs);
        if give_up.is_some_and(|limit| started.elapsed() + wait > limit) {
            return None;
        }
        RETRIES.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(wait).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

const EXPORTERS: u64 = 4;
const BATCHES_PER_EXPORTER: u64 = 50;
const BATCH: u64 = 512;

/// The throughput phase's bodies, per exporter: the same bytes for every target.
fn throughput_bodies(start: u64) -> Vec<Vec<Vec<u8>>> {
    (0..EXPORTERS)
        .map(|exporter| {
            (0..BATCHES_PER_EXPORTER)
                .map(|b| {
                    let first = (exporter * BATCHES_PER_EXPORTER + b) * (BATCH / SPANS_PER_TRACE);
                    batch(first, BATCH, start)
                })
                .collect()
        })
        .collect()
}

/// Spans per second answered, and stored (the same for trace-store, which answers
/// once the spans are written), and the spans stored. Exporters start no new batch
/// after `budget`, so a slow target is measured on part of the payloads.
async fn throughput(target: &Target, work: Vec<Vec<Vec<u8>>>, budget: Duration) -> (f64, f64, u64) {
    let client = reqwest::Client::new();
    RETRIES.store(0, Ordering::Relaxed);
    let before = target.stored_spans(&client).await;
    let sent = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + budget;
    let mut tasks = Vec::new();
    for bodies in work {
        let client = client.clone();
        let url = target.url().to_owned();
        let sent = Arc::clone(&sent);
        tasks.push(tokio::spawn(async move {
            for body in bodies {
                if Instant::now() >= deadline {
                    break;
                }
                post(&client, &url, body, None).await;
                sent.fetch_add(BATCH, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let answered = started.elapsed().as_secs_f64();
    let spans = sent.load(Ordering::Relaxed);
    let stored = target
        .wait_stored(&client, before + spans, Duration::from_secs(900))
        .await
        - before;
    let all_stored = started.elapsed().as_secs_f64();
    if let Target::TraceStore { .. } = target {
        assert_eq!(stored, spans, "every trace arrived");
    }
    (spans as f64 / answered, stored as f64 / all_stored, stored)
}

struct Latency {
    requests: usize,
    /// Requests still refused after [`GIVE_UP`] of retries.
    dropped: usize,
    p50: f64,
    p99: f64,
    p999: f64,
    max: f64,
}

/// How long the latency phase's exporter keeps retrying one request (an OTLP exporter
/// gives up too); a dropped request counts as slower than any answered one.
const GIVE_UP: Duration = Duration::from_secs(30);

async fn latency(target: &Target, first_trace: u64) -> Latency {
    const RATE: f64 = 5_000.0;
    const BATCH: u64 = 64;
    const SECONDS: f64 = 15.0;
    let requests = (RATE * SECONDS / BATCH as f64) as u64;
    let interval = Duration::from_secs_f64(BATCH as f64 / RATE);
    let start = now_nanos();
    let client = reqwest::Client::new();
    RETRIES.store(0, Ordering::Relaxed);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::new();
    for r in 0..requests {
        let body = batch(first_trace + r * (BATCH / SPANS_PER_TRACE), BATCH, start);
        ticker.tick().await;
        let client = client.clone();
        let url = target.url().to_owned();
        tasks.push(tokio::spawn(async move {
            post(&client, &url, body, Some(GIVE_UP)).await
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.push(task.await.unwrap().unwrap_or(Duration::MAX));
    }
    latencies.sort();
    let ms = |d: Duration| {
        if d == Duration::MAX {
            f64::INFINITY
        } else {
            d.as_secs_f64() * 1000.0
        }
    };
    Latency {
        requests: latencies.len(),
        dropped: latencies.iter().filter(|d| **d == Duration::MAX).count(),
        p50: ms(percentile(&latencies, 0.5)),
        p99: ms(percentile(&latencies, 0.99)),
        p999: ms(percentile(&latencies, 0.999)),
        max: ms(*latencies.last().unwrap()),
    }
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
    let kib = phoenix::rss_kib(child.id()).expect("the server's /proc status");
    let _ = child.kill();
    let _ = child.wait();
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

/// Milliseconds as JSON: `null` for a request never answered.
fn json_ms(ms: f64) -> String {
    if ms.is_finite() {
        format!("{ms:.2}")
    } else {
        "null".to_owned()
    }
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(store) = arg(&args, "--idle-serve") {
        return idle_serve(&store).await;
    }
    if let Some(rounds) = arg(&args, "--decode-only") {
        // For a profiler: decode one 512-span batch N times, nothing else.
        let rounds: u32 = rounds.parse().expect("--decode-only ROUNDS");
        let body = batch(9_000_000, 512, now_nanos());
        for _ in 0..rounds {
            std::hint::black_box(
                trace_store_otlp::decode_traces(&body, trace_store_otlp::Encoding::Protobuf)
                    .unwrap(),
            );
        }
        return;
    }
    // Phoenix's idle memory first, before it has seen a span.
    let phoenix = arg(&args, "--phoenix").map(|base| {
        let pid = arg(&args, "--phoenix-pid").map(|pid| pid.parse::<u32>().expect("a pid"));
        phoenix::Phoenix::new(&base, pid)
    });
    let mut idle = Vec::new();
    if let Some(phoenix) = &phoenix
        && let Some(rss) = phoenix.rss_mib()
    {
        idle.push(("phoenix".to_owned(), rss));
    }
    // The `trace-store` CLI when given, and this program's `--idle-serve` (the same
    // server in release mode, nothing else in the process).
    let own = std::env::current_exe().unwrap().display().to_string();
    for binary in arg(&args, "--serve-binary").into_iter().chain([own]) {
        let rss = idle_rss(&binary);
        idle.push((binary, rss));
    }
    for (what, rss) in &idle {
        println!("{{\"bench\": \"idle_rss\", \"server\": {what:?}, \"rss_mib\": {rss:.1}}}");
    }
    breakdown();

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
    let mut targets = vec![Target::TraceStore { url, store }];
    targets.extend(phoenix.map(Target::Phoenix));

    let budget = Duration::from_secs(
        arg(&args, "--budget").map_or(120, |secs| secs.parse().expect("--budget SECONDS")),
    );
    let start = now_nanos();
    let mut rates = Vec::new();
    for target in &targets {
        let (answered, stored, spans) = throughput(target, throughput_bodies(start), budget).await;
        println!(
            "{{\"bench\": \"ingest_throughput\", \"server\": \"{}\", \"exporters\": {EXPORTERS}, \"batch_spans\": {BATCH}, \"spans_answered_per_second\": {answered:.0}, \"spans_stored_per_second\": {stored:.0}, \"spans_stored\": {spans}, \"retries\": {}}}",
            target.name(),
            RETRIES.load(Ordering::Relaxed)
        );
        rates.push(stored);
    }
    let mut p99s = Vec::new();
    for target in &targets {
        let l = latency(target, 1_000_000).await;
        println!(
            "{{\"bench\": \"latency_at_5000_spans_per_second\", \"server\": \"{}\", \"batch_spans\": 64, \"requests\": {}, \"dropped_after_{}s\": {}, \"p50_ms\": {}, \"p99_ms\": {}, \"p999_ms\": {}, \"max_ms\": {}, \"retries\": {}}}",
            target.name(),
            l.requests,
            GIVE_UP.as_secs(),
            l.dropped,
            json_ms(l.p50),
            json_ms(l.p99),
            json_ms(l.p999),
            json_ms(l.max),
            RETRIES.load(Ordering::Relaxed)
        );
        p99s.push((l.p50, l.p99));
    }
    if targets.len() == 2 {
        let phoenix_rss = idle
            .iter()
            .find(|(what, _)| what == "phoenix")
            .map(|(_, r)| *r);
        let own_rss = idle.last().map(|(_, r)| *r);
        println!(
            "{{\"bench\": \"ratios_trace_store_vs_phoenix\", \"stored_spans_per_second\": {:.2}, \"phoenix_p50_over_ours\": {}, \"phoenix_p99_over_ours\": {}, \"phoenix_idle_rss_over_ours\": {}}}",
            rates[0] / rates[1],
            json_ms(p99s[1].0 / p99s[0].0),
            json_ms(p99s[1].1 / p99s[0].1),
            phoenix_rss
                .zip(own_rss)
                .map_or("null".to_owned(), |(p, o)| format!("{:.1}", p / o))
        );
    }
    let _ = stop.send(());
    running.await.unwrap().unwrap();
}
