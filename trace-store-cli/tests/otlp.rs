//! OpenTelemetry in and out through the binary: `export --format otlp-json`, `import`
//! detecting OTLP JSON, and `export --otlp-http` into a running `trace-store serve`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{Sandbox, load_all};

#[test]
fn otlp_json_export_and_import_round_trip_every_trace_exactly() {
    let sandbox = Sandbox::new();
    let from = sandbox.url("sqlite", "from.db");
    sandbox.ok(&["--store", &from, "demo", "--runs", "30"]);
    let file = sandbox.path("otlp.jsonl");
    let file = file.to_str().unwrap();
    sandbox.ok(&[
        "--store",
        &from,
        "export",
        "--format",
        "otlp-json",
        "-o",
        file,
    ]);
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.starts_with("{\"resourceSpans\""), "{}", &text[..80]);

    // Detected without --format, into another backend.
    let to = sandbox.url("jsonl", "to.jsonl");
    let said = sandbox.ok(&["--store", &to, "import", file]);
    assert!(said.contains("OTLP"), "{said}");
    let mut before = load_all(&from);
    let mut after = load_all(&to);
    before.sort_by(|a, b| a.run_id.cmp(&b.run_id));
    after.sort_by(|a, b| a.run_id.cmp(&b.run_id));
    assert_eq!(before.len(), after.len());
    for (a, b) in before.iter().zip(&after) {
        assert_eq!(a, b, "{} changed on the way through OTLP JSON", a.run_id);
    }

    // A file that is not an OTLP request is one line and exit 2, nothing written.
    let bad = sandbox.path("bad.json");
    std::fs::write(&bad, "{\"resourceSpans\": [{\"scopeSpans\": 7}]}\n").unwrap();
    let empty = sandbox.url("sqlite", "empty.db");
    sandbox.fails(&["--store", &empty, "import", bad.to_str().unwrap()], 2);
}

#[test]
fn otlp_http_push_lands_in_a_running_collector() {
    let sandbox = Sandbox::new();
    let from = sandbox.url("sqlite", "from.db");
    sandbox.ok(&["--store", &from, "demo", "--runs", "12"]);
    let sent = load_all(&from);

    let collector = sandbox.url("sqlite", "collector.db");
    let mut server = Command::new(env!("CARGO_BIN_EXE_trace-store"))
        .args(["--store", &collector, "serve", "--listen", "127.0.0.1:0"])
        .env_remove("TRACE_STORE_URL")
        .env_remove("TRACE_STORE_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let start = line.find("http://").expect("the URL");
    let base = line[start..]
        .split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches('/');
    let endpoint = format!("{base}/v1/traces");

    let pushed = sandbox.ok(&[
        "--store",
        &from,
        "export",
        "--otlp-http",
        &endpoint,
        "--header",
        "X-Test=yes",
    ]);
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let _ = server.wait();
    assert!(
        pushed.contains(&format!("pushed {} traces", sent.len())),
        "{pushed}"
    );

    let mut received = load_all(&collector);
    let mut sent = sent;
    received.sort_by(|a, b| a.run_id.cmp(&b.run_id));
    sent.sort_by(|a, b| a.run_id.cmp(&b.run_id));
    assert_eq!(received.len(), sent.len());
    for (a, b) in sent.iter().zip(&received) {
        assert_eq!(a, b, "{} changed on the way through OTLP/HTTP", a.run_id);
    }
}
