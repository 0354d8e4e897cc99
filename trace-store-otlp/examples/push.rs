//! Pushes every trace of a SQLite trace store to an OTLP/HTTP endpoint.
//!
//! ```text
//! cargo run -p trace-store-otlp --example push -- STORE.db http://127.0.0.1:6006/v1/traces \
//!     [--batch-spans N] [--header K=V]... [--expect FILE]
//! ```
//!
//! Prints the push report as JSON. With `--expect FILE`, also writes the spans it sent
//! (trace id, span id, parent span id, name, token counts) for a checker to compare with
//! what the endpoint stored.

use std::process::ExitCode;

use serde_json::json;
use trace_store_core::{Trace, TraceStore};
use trace_store_otlp::{Encoding, PushOptions, decode_request, encode_traces, push_http, semconv};
use trace_store_sqlite::SqliteStore;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("push: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(endpoint)) = (args.next(), args.next()) else {
        return Err(
            "usage: push STORE.db ENDPOINT [--batch-spans N] [--header K=V]... [--expect FILE]"
                .into(),
        );
    };
    let mut options = PushOptions::default();
    let mut headers = Vec::new();
    let mut expect = None;
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--batch-spans" => {
                options = options
                    .with_batch_spans(value.parse().map_err(|e| format!("--batch-spans: {e}"))?)
            }
            "--header" => {
                let (k, v) = value.split_once('=').ok_or("--header wants K=V")?;
                headers.push((k.to_owned(), v.to_owned()));
            }
            "--expect" => expect = Some(value),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    let traces = load_all(&path).map_err(|e| e.to_string())?;
    if let Some(file) = expect {
        std::fs::write(&file, expected_spans(&traces)?.to_string())
            .map_err(|e| format!("{file}: {e}"))?;
    }
    let report = push_http(&endpoint, &traces, &headers, &options).map_err(|e| e.to_string())?;
    println!(
        "{}",
        json!({
            "traces": report.traces, "spans": report.spans, "requests": report.requests,
            "retries": report.retries, "rejected_spans": report.rejected_spans,
            "error_messages": report.error_messages,
        })
    );
    Ok(())
}

fn load_all(path: &str) -> trace_store_core::Result<Vec<Trace>> {
    let store = SqliteStore::open(path)?;
    let mut traces = Vec::new();
    let page = 500;
    loop {
        let summaries = store.list(page, traces.len())?;
        for summary in &summaries {
            traces.push(store.load(&summary.run_id)?);
        }
        if summaries.len() < page {
            return Ok(traces);
        }
    }
}

/// The spans `traces` become, as the checker compares them.
fn expected_spans(traces: &[Trace]) -> Result<serde_json::Value, String> {
    let body = encode_traces(traces, Encoding::Protobuf).map_err(|e| e.to_string())?;
    let request = decode_request(&body, Encoding::Protobuf).map_err(|e| e.to_string())?;
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let mut spans = Vec::new();
    for rs in &request.resource_spans {
        for ss in &rs.scope_spans {
            for span in &ss.spans {
                let int = |key: &str| {
                    span.attributes
                        .iter()
                        .find(|kv| kv.key == key)
                        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                            trace_store_otlp::proto::any_value::Value::IntValue(i) => Some(*i),
                            _ => None,
                        })
                };
                spans.push(json!({
                    "trace_id": hex(&span.trace_id),
                    "span_id": hex(&span.span_id),
                    "parent_id": if span.parent_span_id.is_empty() { None } else { Some(hex(&span.parent_span_id)) },
                    "name": span.name,
                    "input_tokens": int(semconv::GEN_AI_USAGE_INPUT_TOKENS),
                    "output_tokens": int(semconv::GEN_AI_USAGE_OUTPUT_TOKENS),
                }));
            }
        }
    }
    Ok(json!(spans))
}
