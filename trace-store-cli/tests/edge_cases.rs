//! What users run into beyond the main paths: closed pipes, empty pages, the permissions
//! of an export, two schemes on one file, and filter values at their edges.

mod common;

use std::process::{Command, Stdio};

use common::{Output, Sandbox, run_ids};
use trace_store::{Step, Timestamp, Trace, TraceSummary};

/// Runs with standard output connected to a pipe whose reading end is already closed,
/// as in `trace-store export | head -1` once `head` has exited.
fn into_closed_pipe(sandbox: &Sandbox, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_trace-store"))
        .args(args)
        .current_dir(sandbox.dir.path())
        .env_remove("TRACE_STORE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run trace-store");
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("wait for trace-store");
    Output {
        code: output.status.code().unwrap_or(-1),
        stdout: String::new(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A file of native traces, one per line.
fn write_traces(sandbox: &Sandbox, name: &str, traces: &[Trace]) -> String {
    let mut text = Vec::new();
    for trace in traces {
        text.extend(trace.to_json_vec().unwrap());
        text.push(b'\n');
    }
    let path = sandbox.path(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let sandbox = Sandbox::new();
    let url = sandbox.url("sqlite", "t.db");
    // Far more than a pipe buffer (64 KiB) of output for every command below, so each
    // one is still writing when it finds the pipe closed.
    let big = Trace::new("big")
        .with_created_at(at("2026-01-01T00:00:00Z"))
        .with_step(Step::tool_call("fetch").with_output("x".repeat(256 * 1024)));
    let file = write_traces(&sandbox, "big.jsonl", &[big]);
    sandbox.ok(&["--store", &url, "import", &file]);
    sandbox.ok(&["--store", &url, "demo", "--runs", "600"]);

    for args in [
        &["export"][..],
        &["list", "--limit", "700", "--json"],
        &["query", "--json"],
        &["show", "big", "--json"],
        &["list", "--limit", "700"],
    ] {
        let mut full = vec!["--store", url.as_str()];
        full.extend_from_slice(args);
        let out = into_closed_pipe(&sandbox, &full);
        assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{args:?}");
    }
}

#[test]
fn an_empty_page_of_a_full_store_does_not_call_it_empty() {
    let sandbox = Sandbox::new();
    let url = sandbox.url("sqlite", "t.db");
    sandbox.ok(&["--store", &url, "demo", "--runs", "3"]);
    let out = sandbox.ok(&["--store", &url, "list", "--limit", "0"]);
    assert!(!out.contains("try `"), "{out}");
    assert!(out.contains("holds 3"), "{out}");
    let out = sandbox.ok(&["--store", &url, "list", "--offset", "10"]);
    assert!(out.contains("holds 3"), "{out}");
    // The next-page hint is a command that shows the next page of this store.
    let out = sandbox.ok(&["--store", &url, "list", "--limit", "2"]);
    let hint = format!("next page: trace-store --store {url} list --limit 2 --offset 2");
    assert!(out.trim_end().ends_with(&hint), "{out}");

    let empty = sandbox.url("sqlite", "empty.db");
    sandbox.ok(&[
        "--store",
        &empty,
        "import",
        &write_traces(&sandbox, "none.jsonl", &[]),
    ]);
    let out = sandbox.ok(&["--store", &empty, "list"]);
    assert!(
        out.contains(&format!("try `trace-store --store {empty} demo`")),
        "{out}"
    );
}

#[cfg(unix)]
#[test]
fn an_export_is_private_unless_it_replaces_a_file() {
    use std::os::unix::fs::PermissionsExt;

    let sandbox = Sandbox::new();
    let url = sandbox.url("sqlite", "t.db");
    sandbox.ok(&["--store", &url, "demo", "--runs", "2"]);
    let mode = |name: &str| {
        let metadata = std::fs::metadata(sandbox.path(name)).unwrap();
        metadata.permissions().mode() & 0o777
    };
    // Traces hold prompts and user data: a new export is the owner's alone.
    sandbox.ok(&["--store", &url, "export", "-o", "new.jsonl"]);
    assert_eq!(mode("new.jsonl"), 0o600);

    // Replacing a file keeps its permissions.
    let kept = sandbox.path("kept.jsonl");
    std::fs::write(&kept, "").unwrap();
    std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(0o640)).unwrap();
    sandbox.ok(&["--store", &url, "export", "-o", "kept.jsonl"]);
    assert_eq!(mode("kept.jsonl"), 0o640);
    assert!(std::fs::metadata(&kept).unwrap().len() > 0);
}

#[test]
fn copy_refuses_the_same_file_under_another_scheme() {
    let sandbox = Sandbox::new();
    let url = sandbox.url("sqlite", "t.db");
    sandbox.ok(&["--store", &url, "demo", "--runs", "2"]);
    let before = std::fs::read(sandbox.path("t.db")).unwrap();
    let same_file = sandbox.url("jsonl", "t.db");
    let message = sandbox.fails(&["--store", &url, "copy", "--to", &same_file], 2);
    assert!(
        message.contains("is the store being copied from"),
        "{message}"
    );
    assert_eq!(std::fs::read(sandbox.path("t.db")).unwrap(), before);
}

#[test]
fn until_a_date_includes_that_day_and_quoted_meta_keys_hold_equals_signs() {
    let sandbox = Sandbox::new();
    let url = sandbox.url("jsonl", "t.jsonl");
    let trace = |run_id: &str, created_at: &str| {
        Trace::new(run_id)
            .with_created_at(at(created_at))
            .with_metadata("a=b", 1)
    };
    let file = write_traces(
        &sandbox,
        "in.jsonl",
        &[
            trace("jan-14-late", "2026-01-14T23:59:59.999999Z"),
            trace("jan-15-start", "2026-01-15T00:00:00Z"),
            trace("jan-15-evening", "2026-01-15T21:30:00Z").with_metadata("a=b", "1"),
            trace("jan-16-start", "2026-01-16T00:00:00Z"),
        ],
    );
    sandbox.ok(&["--store", &url, "import", &file]);
    let query = |filters: &[&str]| -> Vec<String> {
        let rows: Vec<TraceSummary> = sandbox.query(&url, filters);
        run_ids(&rows).into_iter().map(str::to_owned).collect()
    };

    let day = query(&["--since", "2026-01-15", "--until", "2026-01-15"]);
    assert_eq!(day, ["jan-15-evening", "jan-15-start"]);
    assert_eq!(query(&["--until", "2026-01-14"]), ["jan-14-late"]);

    // `"a=b"=1` is the key `a=b` with the number 1; `"a=b"='"1"'` the string.
    assert_eq!(
        query(&["--meta", r#""a=b"=1"#]),
        ["jan-16-start", "jan-15-start", "jan-14-late"]
    );
    assert_eq!(query(&["--meta", r#""a=b"="1""#]), ["jan-15-evening"]);
    // Unquoted, the key ends at the first '=': the key `a`, which no trace has.
    assert!(query(&["--meta", "a=b=1"]).is_empty());
    let message = sandbox.fails(&["--store", &url, "query", "--meta", r#""a=b"#], 2);
    assert!(message.contains("--meta"), "{message}");
    // One key given twice can match nothing (a trace has one value per key); taking
    // either value alone would answer another question.
    let twice = ["--meta", "env=prod", "--meta", "env=staging"];
    for command in ["query", "stats", "export", "copy"] {
        let mut args = vec!["--store", url.as_str(), command];
        args.extend(twice);
        if command == "copy" {
            args.extend(["--to", "memory://"]);
        }
        let message = sandbox.fails(&args, 2);
        assert!(message.contains("--meta env is given twice"), "{message}");
    }
}

#[test]
fn five_megabyte_traces_survive_import_export_and_copy() {
    let sandbox = Sandbox::new();
    // Mostly plain bytes (escapes are slow to check in a debug build), with a few that
    // JSON must escape or encode.
    let payload = format!("{}é\"\n\u{0}", "x".repeat(5 * 1024 * 1024));
    let native = Trace::new("big-native")
        .with_created_at(at("2026-01-01T00:00:00Z"))
        .with_step(Step::tool_call("fetch").with_output(payload.as_str()));
    let native_file = write_traces(&sandbox, "native.jsonl", std::slice::from_ref(&native));
    let selectools = serde_json::json!({
        "run_id": "big-selectools", "start_time": 1767225600.25,
        "steps": [{"type": "tool_execution", "tool_name": "fetch", "tool_result": payload,
                   "timestamp": 1767225600.25, "duration_ms": 12.5}]
    });
    let selectools_file = sandbox.path("selectools.json");
    std::fs::write(
        &selectools_file,
        serde_json::to_vec_pretty(&selectools).unwrap(),
    )
    .unwrap();

    let sqlite = sandbox.url("sqlite", "big.db");
    sandbox.ok(&[
        "--store",
        &sqlite,
        "import",
        &native_file,
        selectools_file.to_str().unwrap(),
    ]);
    let loaded = common::load_all(&sqlite);
    assert_eq!(loaded.len(), 2);
    // By run_id: big-native, big-selectools.
    assert_eq!(loaded[0], native);
    let output = loaded[1].steps[0].output.as_ref().and_then(|o| o.as_str());
    assert_eq!(output, Some(payload.as_str()));

    sandbox.ok(&["--store", &sqlite, "export", "-o", "out.jsonl"]);
    let jsonl = sandbox.url("jsonl", "big.jsonl");
    sandbox.ok(&["--store", &jsonl, "import", "out.jsonl"]);
    assert_eq!(common::load_all(&jsonl), loaded);
    let back = sandbox.url("sqlite", "back.db");
    sandbox.ok(&["--store", &jsonl, "copy", "--to", &back]);
    assert_eq!(common::load_all(&back), loaded);
}
