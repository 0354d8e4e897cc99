//! `POST /v1/traces` with hand-built OTLP payloads: assembly across requests, and
//! every kind of bad body answered with the right status and nothing written.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::otlp::{TRACE_ID, hex, now_nanos, protobuf, tree_span};
use common::{TestServer, error_kind};
use prost::Message;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use trace_store_core::{TraceFilter, TraceStore};
use trace_store_server::ServerOptions;

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

async fn post(
    server: &TestServer,
    body: Vec<u8>,
    content_type: Option<&str>,
    gzip: bool,
) -> (u16, String, Vec<u8>) {
    let mut request = server.client.post(server.url("/v1/traces")).body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    if gzip {
        request = request.header("content-encoding", "gzip");
    }
    let response = request.send().await.expect("POST /v1/traces");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (
        status,
        content_type,
        response.bytes().await.unwrap().to_vec(),
    )
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn stored(server: &TestServer) -> u64 {
    server.store.count(&TraceFilter::new()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_shuffled_spans_from_eight_clients_make_one_trace() {
    let server = Arc::new(TestServer::start().await);
    let start = now_nanos();
    let mut spans: Vec<_> = (0..1000).map(|i| tree_span(&TRACE_ID, i, start)).collect();
    spans.shuffle(&mut rand::rngs::StdRng::seed_from_u64(14));
    let bodies: Vec<Vec<u8>> = spans
        .chunks(10)
        .map(|chunk| protobuf(chunk.to_vec()))
        .collect();
    assert_eq!(bodies.len(), 100);
    let queue = Arc::new(Mutex::new(bodies));
    let mut clients = Vec::new();
    for _ in 0..8 {
        let queue = Arc::clone(&queue);
        let server = Arc::clone(&server);
        clients.push(tokio::spawn(async move {
            loop {
                let Some(body) = queue.lock().unwrap().pop() else {
                    return;
                };
                let (status, content_type, response) = post(&server, body, Some(PROTOBUF), false).await;
                assert_eq!(status, 200, "{}", String::from_utf8_lossy(&response));
                assert_eq!(content_type, PROTOBUF);
                let decoded = opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse::decode(&response[..])
                    .expect("an ExportTraceServiceResponse");
                assert!(decoded.partial_success.is_none_or(|p| p.rejected_spans == 0));
            }
        }));
    }
    for client in clients {
        client.await.unwrap();
    }
    let (status, body) = server.get("/api/traces").await;
    assert_eq!(status, 200);
    let traces = body["traces"].as_array().unwrap();
    assert_eq!(traces.len(), 1, "{body}");
    assert_eq!(traces[0]["steps"], 1000);
    assert_eq!(traces[0]["input_tokens"].as_u64().unwrap() % 10, 0);
    let run_id = hex(&TRACE_ID);
    let trace = server.store.load(&run_id).unwrap();
    assert_eq!(trace.steps.len(), 1000);
    let mut ids: Vec<_> = trace.steps.iter().map(|s| s.id.clone().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 1000, "every span once");
    let parents = trace.steps.iter().filter(|s| s.parent_id.is_some()).count();
    assert_eq!(parents, 999, "only the root has no parent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_and_gzip_bodies_are_accepted_and_answered_in_kind() {
    let server = TestServer::start().await;
    let trace_id = hex(&TRACE_ID);
    let json = serde_json::json!({"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": trace_id, "spanId": "0102030405060708", "name": "chat",
        "startTimeUnixNano": "1765000000000000000", "endTimeUnixNano": "1765000001000000000",
        "attributes": [
            {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
            {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
            {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "7"}}
        ]
    }]}]}]});
    let body = serde_json::to_vec(&json).unwrap();
    let (status, content_type, response) = post(
        &server,
        gzip(&body),
        Some("application/json; charset=utf-8"),
        true,
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&response));
    assert_eq!(content_type, JSON);
    let answer: serde_json::Value = serde_json::from_slice(&response).expect("a JSON response");
    assert!(answer.is_object(), "{answer}");
    let trace = server.store.load(&trace_id).unwrap();
    assert_eq!(trace.steps[0].model.as_deref(), Some("gpt-4o"));
    assert_eq!(trace.steps[0].usage.input_tokens, 7);

    let start = now_nanos();
    let spans = (0..3).map(|i| tree_span(&[7; 16], i, start)).collect();
    let (status, content_type, _) =
        post(&server, gzip(&protobuf(spans)), Some(PROTOBUF), true).await;
    assert_eq!((status, content_type.as_str()), (200, PROTOBUF));
    assert_eq!(server.store.load(&hex(&[7; 16])).unwrap().steps.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_get_the_right_status_and_write_nothing() {
    let max_body = 64 * 1024;
    let server = TestServer::start_with(ServerOptions::new().with_max_body(max_body)).await;
    let start = now_nanos();
    let valid = protobuf((0..5).map(|i| tree_span(&TRACE_ID, i, start)).collect());

    // Over the limit as sent.
    let mut big_span = tree_span(&TRACE_ID, 0, start);
    big_span.name = "x".repeat(max_body + 1);
    let (status, _, body) = post(
        &server,
        protobuf(vec![big_span.clone()]),
        Some(PROTOBUF),
        false,
    )
    .await;
    assert_eq!(status, 413, "{}", String::from_utf8_lossy(&body));

    // Truncated protobuf.
    let (status, content_type, body) = post(
        &server,
        valid[..valid.len() - 3].to_vec(),
        Some(PROTOBUF),
        false,
    )
    .await;
    assert_eq!((status, content_type.as_str()), (400, PROTOBUF));
    assert!(!body.is_empty(), "a google.rpc.Status body");

    // Wrong or missing content type.
    for content_type in [Some("text/plain"), Some("application/grpc"), None] {
        let (status, _, body) = post(&server, valid.clone(), content_type, false).await;
        assert_eq!(status, 415, "{content_type:?}");
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(error_kind(&body).0, "unsupported_media_type");
    }

    // A gzip bomb: 20 MiB of zeros in about 20 KiB, over the limit once expanded.
    let bomb = gzip(&vec![0u8; 20 << 20]);
    assert!(bomb.len() < max_body);
    let (status, _, _) = post(&server, bomb, Some(PROTOBUF), true).await;
    assert_eq!(status, 413);
    // A body that claims gzip but is not.
    let (status, _, _) = post(&server, valid.clone(), Some(PROTOBUF), true).await;
    assert_eq!(status, 400);

    // Deeply nested JSON inside an attribute value.
    let depth = 2_000; // far past any sane nesting, still under the body limit
    let mut deep = String::from(
        r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efaf19e2a4c3d8a1b2c3d4e5f6071","spanId":"0102030405060708","name":"x","attributes":[{"key":"k","value":"#,
    );
    deep.push_str(&r#"{"arrayValue":{"values":["#.repeat(depth));
    deep.push_str(&"]}}".repeat(depth));
    deep.push_str("}]}]}]}]}");
    let (status, _, _) = post(&server, deep.into_bytes(), Some(JSON), false).await;
    assert_eq!(status, 400);
    let brackets = "[".repeat(60_000).into_bytes();
    let (status, _, _) = post(&server, brackets, Some(JSON), false).await;
    assert_eq!(status, 400);

    // Invalid UTF-8, in JSON and in a protobuf string field.
    let mut bad_json = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efaf19e2a4c3d8a1b2c3d4e5f6071","spanId":"0102030405060708","name":""#.to_vec();
    bad_json.extend_from_slice(&[0xff, 0xfe]);
    bad_json.extend_from_slice(br#""}]}]}]}"#);
    let (status, _, _) = post(&server, bad_json, Some(JSON), false).await;
    assert_eq!(status, 400);
    let marker = b"chat step-0";
    let mut bad_proto = protobuf(vec![tree_span(&TRACE_ID, 0, start)]);
    let at = bad_proto
        .windows(marker.len())
        .position(|w| w == marker)
        .unwrap();
    bad_proto[at] = 0xff;
    let (status, _, _) = post(&server, bad_proto, Some(PROTOBUF), false).await;
    assert_eq!(status, 400);

    // Not JSON at all.
    let (status, _, _) = post(
        &server,
        b"{\"resourceSpans\": [".to_vec(),
        Some(JSON),
        false,
    )
    .await;
    assert_eq!(status, 400);

    assert_eq!(stored(&server), 0, "no bad request wrote anything");
    // And the server still works.
    let (status, _, _) = post(&server, valid, Some(PROTOBUF), false).await;
    assert_eq!(status, 200);
    assert_eq!(stored(&server), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_requests_in_flight() {
    let mut server = TestServer::start().await;
    let start = now_nanos();
    let url = server.url("/v1/traces");
    let first_answer = Arc::new(tokio::sync::Notify::new());
    let mut sends = Vec::new();
    for batch in 0..40u8 {
        let request = server
            .client
            .post(&url)
            .header("content-type", PROTOBUF)
            .body(protobuf(
                (0..50)
                    .map(|i| tree_span(&[batch + 1; 16], i, start))
                    .collect(),
            ));
        let first_answer = first_answer.clone();
        sends.push(tokio::spawn(async move {
            let status = match request.send().await {
                Ok(response) => response.status().as_u16(),
                Err(_) => 0,
            };
            first_answer.notify_one();
            (batch, status)
        }));
    }
    // Stop once the first request is answered, while the others are in flight.
    first_answer.notified().await;
    let store = Arc::clone(&server.store);
    server.stop().await.unwrap();
    let mut accepted = Vec::new();
    for send in sends {
        let (batch, status) = send.await.unwrap();
        if status == 200 {
            accepted.push(batch);
        }
    }
    assert!(!accepted.is_empty());
    for batch in &accepted {
        let trace = store
            .load(&hex(&[batch + 1; 16]))
            .expect("an answered request was stored");
        assert_eq!(trace.steps.len(), 50, "merges finished before exit");
    }
    assert!(store.count(&TraceFilter::new()).unwrap() >= accepted.len() as u64);
}
