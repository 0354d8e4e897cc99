//! push_http against a real HTTP server on a loopback port: batching, retries on
//! 429/503 with Retry-After, no retry on 400, and no secret in errors.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use trace_store_core::{Trace, TraceStore};
use trace_store_memory::MemoryStore;
use trace_store_otlp::{Encoding, PushOptions, decode_traces, encode_response, push_http};

/// One received request: its header lines and body.
type Received = (Vec<String>, Vec<u8>);

/// Serves one request per connection, answering with `answers` in turn (status, extra
/// header, body), and reports each request on the channel.
fn serve(answers: Vec<(u16, &'static str, Vec<u8>)>) -> (String, mpsc::Receiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for (status, header, body) in answers {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = Vec::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line.trim().is_empty() {
                    break;
                }
                headers.push(line.trim().to_owned());
            }
            let length = headers
                .iter()
                .find_map(|h| {
                    h.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            let mut request_body = vec![0; length];
            reader.read_exact(&mut request_body).unwrap();
            let _ = sender.send((headers, request_body));
            let mut stream = stream;
            write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\nConnection: close\r\n{header}\r\n",
                body.len()
            )
            .unwrap();
            stream.write_all(&body).unwrap();
        }
    });
    (format!("http://{address}/v1/traces"), receiver)
}

fn fast() -> PushOptions {
    PushOptions::default().with_backoff(Duration::from_millis(1), Duration::from_millis(20))
}

#[test]
fn batches_retry_on_503_and_429_and_assemble_on_the_receiver() {
    let trace: Trace = common::fixture::full_trace();
    let ok = encode_response(0, "", Encoding::Protobuf);
    let (endpoint, received) = serve(vec![
        (503, "Retry-After: 0\r\n", Vec::new()),
        (429, "", Vec::new()),
        (200, "", ok.clone()),
        (
            200,
            "",
            encode_response(1, "one span refused", Encoding::Protobuf),
        ),
        (200, "", ok),
    ]);
    let headers = vec![("Authorization".to_owned(), "Bearer s3cret".to_owned())];
    let report = push_http(
        &endpoint,
        std::slice::from_ref(&trace),
        &headers,
        &fast().with_batch_spans(2),
    )
    .unwrap();
    assert_eq!((report.spans, report.requests, report.retries), (5, 3, 2));
    assert_eq!(report.rejected_spans, 1);
    assert_eq!(report.error_messages, ["one span refused"]);

    let requests: Vec<Received> = received.try_iter().collect();
    assert_eq!(requests.len(), 5, "two refused attempts and three batches");
    assert!(requests.iter().all(|(h, _)| {
        h.iter()
            .any(|l| l.eq_ignore_ascii_case("authorization: Bearer s3cret"))
    }));
    assert!(requests.iter().all(|(h, _)| {
        h.iter()
            .any(|l| l.eq_ignore_ascii_case("content-type: application/x-protobuf"))
    }));
    let store = MemoryStore::unbounded();
    for (_, body) in &requests[2..] {
        for part in decode_traces(body, Encoding::Protobuf).unwrap().parts {
            store.merge(&part).unwrap();
        }
    }
    assert_eq!(store.load(&trace.run_id).unwrap(), trace);
}

#[test]
fn a_400_is_not_retried_and_errors_hide_secrets() {
    let (endpoint, received) = serve(vec![(400, "", b"bad request".to_vec())]);
    let secret_url = endpoint.replace("http://", "http://user:pa55word@") + "?api_key=k3y";
    let headers = vec![("Authorization".to_owned(), "Bearer s3cret".to_owned())];
    let error = push_http(
        &secret_url,
        &[common::fixture::full_trace()],
        &headers,
        &fast(),
    )
    .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("400") && message.contains("bad request"),
        "{message}"
    );
    for secret in ["pa55word", "k3y", "s3cret"] {
        assert!(!message.contains(secret), "{message}");
    }
    assert_eq!(received.try_iter().count(), 1);
}

#[test]
fn an_unreachable_endpoint_fails_after_the_retries_without_showing_secrets() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://user:pa55word@127.0.0.1:{port}/v1/traces");
    let error = push_http(
        &url,
        &[common::fixture::full_trace()],
        &[],
        &fast().with_max_retries(2),
    )
    .unwrap_err();
    let message = error.to_string();
    assert!(message.contains("after 3 attempt(s)"), "{message}");
    assert!(!message.contains("pa55word"), "{message}");
}
