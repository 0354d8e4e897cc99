//! `trace-store serve` as a child process: it prints the URL to open, answers
//! /healthz, stops on SIGTERM with exit 0, and refuses an unsafe address.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

fn serve(dir: &std::path::Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_trace-store"))
        .arg("--store")
        .arg(format!("sqlite://{}", dir.join("traces.db").display()))
        .arg("serve")
        .args(args)
        .env_remove("TRACE_STORE_URL")
        .env_remove("TRACE_STORE_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start trace-store serve")
}

/// The `http://HOST:PORT/...` URL in the first line the server prints that has one.
fn printed_url(child: &mut Child) -> String {
    let mut reader = BufReader::new(child.stdout.as_mut().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).expect("a line");
        assert!(n > 0, "no URL printed; output was {seen:?}");
        if let Some(start) = line.find("http://") {
            return line[start..].split_whitespace().next().unwrap().to_owned();
        }
        seen.push_str(&line);
    }
}

/// A minimal HTTP/1.1 GET: the status line and body.
fn get(authority: &str, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(authority).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.lines().next().unwrap_or("").to_owned();
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

fn terminate(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

#[test]
fn serve_prints_its_url_answers_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = serve(dir.path(), &["--listen", "127.0.0.1:0"]);
    let url = printed_url(&mut child);
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with('/'),
        "{url}"
    );
    let authority = url.trim_start_matches("http://").trim_end_matches('/');
    let (status, body) = get(authority, "/healthz");
    assert!(status.contains(" 200 "), "{status}");
    assert!(body.contains("\"ok\":true"), "{body}");
    let (status, _) = get(authority, "/api/traces");
    assert!(status.contains(" 200 "), "{status}");
    terminate(&child);
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn with_a_token_the_url_carries_it_and_the_api_needs_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = serve(
        dir.path(),
        &["--listen", "127.0.0.1:0", "--token", "t0k/en"],
    );
    let url = printed_url(&mut child);
    assert!(url.ends_with("/#token=t0k%2Fen"), "{url}");
    let authority = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let (status, _) = get(&authority, "/api/traces");
    assert!(status.contains(" 401 "), "{status}");
    let (status, _) = get(&authority, "/healthz");
    assert!(status.contains(" 200 "), "{status}");
    terminate(&child);
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn a_public_address_without_a_token_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let child = serve(dir.path(), &["--listen", "0.0.0.0:0"]);
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("--token") && stderr.contains("--insecure-no-auth"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("traces.db").exists(),
        "nothing was opened or created"
    );
}

#[test]
fn serve_demo_fills_an_empty_store_once_and_serves_it() {
    let dir = tempfile::tempdir().unwrap();
    let count = |authority: &str| {
        let (status, body) = get(authority, "/api/count");
        assert!(status.contains(" 200 "), "{status}");
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        value["count"].as_u64().unwrap()
    };
    let mut first = serve(dir.path(), &["--listen", "127.0.0.1:0", "--demo"]);
    let url = printed_url(&mut first);
    let authority = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let filled = count(&authority);
    assert!(filled >= 120, "{filled}");
    terminate(&first);
    assert_eq!(first.wait().unwrap().code(), Some(0));

    // A store with traces is left as it is.
    let mut second = serve(dir.path(), &["--listen", "127.0.0.1:0", "--demo"]);
    let url = printed_url(&mut second);
    let authority = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    assert_eq!(count(&authority), filled);
    terminate(&second);
    assert_eq!(second.wait().unwrap().code(), Some(0));
}
