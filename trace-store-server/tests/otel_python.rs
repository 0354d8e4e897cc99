//! The Python OpenTelemetry SDK (`opentelemetry-sdk` with the OTLP/HTTP protobuf
//! exporter, from PyPI) sends nested GenAI spans; the trace is checked through `/api/`.
//!
//! The SDK lives in a virtual environment made by `tests/python/setup-venv.sh`
//! (default `target/otel-python`; `TRACE_STORE_OTEL_PYTHON` names another
//! interpreter). Without it the test is skipped with a message, except under
//! `CI=true`, where it fails.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{TestServer, check_agent_trace, segment};

fn python() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("TRACE_STORE_OTEL_PYTHON") {
        return Some(PathBuf::from(path));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let python = target.join("otel-python/bin/python");
    python.exists().then_some(python)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_spans_become_a_trace() {
    let Some(python) = python() else {
        let message = "the Python OpenTelemetry venv is missing: run trace-store-server/tests/python/setup-venv.sh";
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{message}");
        }
        eprintln!("skipping: {message}");
        return;
    };
    let server = TestServer::start().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/send_spans.py");
    let endpoint = server.url("/v1/traces");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python).arg(script).arg(endpoint).output()
    })
    .await
    .unwrap()
    .expect("run python");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "send_spans.py failed: {stderr}");
    let trace_id = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert_eq!(trace_id.len(), 32, "stdout {trace_id:?}, stderr {stderr}");
    let (status, body) = server
        .get(&format!("/api/traces/{}", segment(&trace_id)))
        .await;
    assert_eq!(status, 200, "{body}");
    check_agent_trace(&body);
    let (_, list) = server.get("/api/traces").await;
    assert_eq!(list["traces"].as_array().unwrap().len(), 1, "{list}");
}
