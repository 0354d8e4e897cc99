//! Files written by selectools' `JSONLTraceStore` are refused with a `Corrupt` error
//! naming the line, never a panic, and are left untouched.
//!
//! The store file is made here from the committed workload sample
//! (`testdata/selectools-200.jsonl`, lines `{"created_at", "trace"}`) the way
//! selectools' `JSONLTraceStore.save` writes it: `json.dumps` of
//! `{"run_id", "steps", "total_ms", "created_at", "metadata", "trace"}`.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use trace_store_core::{Error, TraceStore};
use trace_store_jsonl::JsonlStore;

fn workload() -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/selectools-200.jsonl");
    let text =
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .map(|line| serde_json::from_str(line).expect("workload line"))
        .collect()
}

/// One line as selectools' `JSONLTraceStore.save` writes it (top-level key order and
/// `json.dumps` separators included).
fn selectools_line(workload_line: &Value) -> String {
    let trace = &workload_line["trace"];
    let steps = trace["steps"].as_array().map_or(0, Vec::len);
    let metadata = match &trace["metadata"] {
        Value::Null => Value::Object(Default::default()),
        other => other.clone(),
    };
    format!(
        "{{\"run_id\": {}, \"steps\": {steps}, \"total_ms\": {}, \"created_at\": {}, \"metadata\": {}, \"trace\": {}}}\n",
        trace["run_id"], trace["total_duration_ms"], workload_line["created_at"], metadata, trace
    )
}

fn write(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, content).expect("write");
    path
}

fn assert_refused(path: &Path, line: u64) {
    let before = fs::read(path).expect("read");
    match JsonlStore::open(path) {
        Err(Error::Corrupt { message, .. }) => {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            assert!(message.contains(name), "{message}");
            assert!(message.contains(&format!("line {line} ")), "{message}");
            assert!(message.contains("untouched"), "{message}");
        }
        other => panic!("{}: expected Corrupt, got {other:?}", path.display()),
    }
    assert_eq!(
        fs::read(path).expect("read"),
        before,
        "the file was changed"
    );
    let mut corrupt = path.as_os_str().to_owned();
    corrupt.push(".corrupt");
    assert!(
        !PathBuf::from(corrupt).exists(),
        "something was quarantined"
    );
}

#[test]
fn a_selectools_store_file_is_refused_naming_line_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lines: String = workload().iter().map(selectools_line).collect();
    assert_eq!(lines.lines().count(), 200);
    let path = write(dir.path(), "selectools.jsonl", lines.as_bytes());
    assert_refused(&path, 1);
    let Err(Error::Corrupt { message, .. }) = JsonlStore::open(&path) else {
        panic!("refused above");
    };
    assert!(message.contains("selectools"), "{message}");
    assert!(message.contains("trace-store import"), "{message}");
}

#[test]
fn the_workload_lines_themselves_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/selectools-200.jsonl");
    let path = write(
        dir.path(),
        "workload.jsonl",
        &fs::read(source).expect("read the workload sample"),
    );
    assert_refused(&path, 1);
}

#[test]
fn a_selectools_file_with_a_torn_first_line_is_refused_at_its_first_whole_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let workload = workload();
    let first = selectools_line(&workload[0]);
    let mut content = first[..first.len() / 2].to_owned();
    content.push('\n');
    content.push_str(&selectools_line(&workload[1]));
    let path = write(dir.path(), "torn.jsonl", content.as_bytes());
    assert_refused(&path, 2);
}

#[test]
fn selectools_lines_appended_to_a_store_of_ours_are_quarantined_not_fatal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ours.jsonl");
    let store = JsonlStore::open(&path).expect("open");
    let ours = trace_store_conformance::child_trace("ours", 0);
    store.save(&ours).expect("save");
    let workload = workload();
    let mut file = fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open for append");
    for line in &workload[..3] {
        std::io::Write::write_all(&mut file, selectools_line(line).as_bytes()).expect("append");
    }
    drop(file);
    assert_eq!(store.list(10, 0).expect("list").len(), 1);
    assert_eq!(store.load("ours-000000").expect("load"), ours);
    store.save(&ours).expect("save moves the foreign lines out");
    assert_eq!(store.health().expect("health").quarantined_lines, 3);
    drop(store);
    let reopened = JsonlStore::open(&path).expect("reopen");
    assert_eq!(reopened.load("ours-000000").expect("load"), ours);
}
