//! A client that sends its body slowly, or a request that takes too long, is answered
//! with a typed error instead of holding the request open.

mod common;

use std::time::{Duration, Instant};

use common::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use trace_store_core::{TraceFilter, TraceStore};
use trace_store_server::ServerOptions;

/// Sends headers announcing a 1000-byte body, then 10 bytes, then nothing; returns
/// the status line and body of the answer, and how long it took.
async fn trickle(
    server: &TestServer,
    path: &str,
    content_type: &str,
) -> (String, String, Duration) {
    let authority = server.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(authority).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {authority}\r\ncontent-type: {content_type}\r\ncontent-length: 1000\r\n\r\n0123456789"
    );
    let started = Instant::now();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer))
        .await
        .expect("the server answered and closed")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.lines().next().unwrap_or("").to_owned();
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_does_not_arrive_in_time_is_408() {
    let server = TestServer::start_with(
        ServerOptions::new()
            .with_body_timeout(Duration::from_millis(300))
            .with_request_timeout(Duration::from_secs(30)),
    )
    .await;
    for (path, content_type) in [
        ("/v1/traces", "application/json"),
        ("/api/purge", "application/json"),
        ("/api/traces/r/scores", "application/json"),
    ] {
        let (status, body, took) = trickle(&server, path, content_type).await;
        assert!(status.starts_with("HTTP/1.1 408"), "{path}: {status}");
        assert!(body.contains("\"request_timeout\""), "{path}: {body}");
        assert!(took < Duration::from_secs(10), "{path}: {took:?}");
    }
    assert_eq!(server.store.count(&TraceFilter::new()).unwrap(), 0);
    let (status, _) = server.get("/api/count").await;
    assert_eq!(status, 200, "the server still answers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_not_done_in_time_is_503_timeout() {
    let server = TestServer::start_with(
        ServerOptions::new()
            .with_body_timeout(Duration::from_secs(30))
            .with_request_timeout(Duration::from_millis(300)),
    )
    .await;
    let (status, body, took) = trickle(&server, "/v1/traces", "application/x-protobuf").await;
    assert!(status.starts_with("HTTP/1.1 503"), "{status}");
    assert!(body.contains("\"timeout\""), "{body}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    let (status, _) = server.get("/api/traces").await;
    assert_eq!(status, 200, "a quick request is unaffected");
}

#[test]
fn zero_timeouts_are_refused() {
    for options in [
        ServerOptions::new().with_body_timeout(Duration::ZERO),
        ServerOptions::new().with_request_timeout(Duration::ZERO),
    ] {
        let error = options.validate().unwrap_err();
        assert!(error.to_string().contains("timeout"), "{error}");
    }
}
