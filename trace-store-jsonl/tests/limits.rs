//! A broken environment for real: writes that stop short and then fail, as on a full
//! disk (this process's file size limit, `RLIMIT_FSIZE`, makes the kernel do exactly
//! that), and a process with little memory (`RLIMIT_AS`).
//!
//! Limits apply to a whole process, so each case runs in a child: this test binary run
//! again with `ROLE_ENV` set.
#![cfg(unix)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use rustix::process::{Resource, getrlimit, setrlimit};
use serde_json::Value;
use trace_store_conformance::child_trace;
use trace_store_core::{Error, Trace, TraceFilter, TraceStore};
use trace_store_jsonl::JsonlStore;

const ROLE_ENV: &str = "TRACE_STORE_JSONL_LIMITS_ROLE";

/// Runs `test` again in a child process with `ROLE_ENV=dir` and asserts it succeeded.
///
/// The child starts with `SIGXFSZ` ignored (set by the shell, kept across `exec`), so a
/// write past its file size limit fails with `EFBIG` instead of killing it.
fn run_in_child(test: &str, dir: &Path) {
    let exe = std::env::current_exe().expect("current_exe");
    // Output is captured rather than inherited: the file size limit applies to every
    // file the child writes, including a log file its standard output may point to.
    let output = Command::new("/bin/sh")
        .args(["-c", "trap '' XFSZ; exec \"$0\" \"$@\""])
        .arg(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE_ENV, dir)
        .output()
        .expect("spawn child");
    assert!(
        output.status.success(),
        "the child failed: {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The directory to work in, if this process is the child.
fn child_dir() -> Option<PathBuf> {
    std::env::var_os(ROLE_ENV).map(PathBuf::from)
}

/// Sets the soft limit of `resource`, `None` lifting it to the hard limit.
fn set_limit(resource: Resource, bytes: Option<u64>) {
    let mut limit = getrlimit(resource);
    limit.current = bytes.or(limit.maximum);
    setrlimit(resource, limit).expect("setrlimit");
}

/// From now on a write past `bytes` in any file stops short, and the next one fails.
fn limit_file_size(bytes: u64) {
    set_limit(Resource::Fsize, Some(bytes));
}

fn lift_file_size_limit() {
    set_limit(Resource::Fsize, None);
}

/// The length of the line each trace is stored as, measured in a scratch store.
fn line_lens(dir: &Path, traces: &[Trace]) -> Vec<u64> {
    let path = dir.join("measure.jsonl");
    let _ = fs::remove_file(&path);
    let store = JsonlStore::open(&path).expect("open");
    let mut lens = Vec::new();
    let mut before = 0;
    for trace in traces {
        store.save(trace).expect("save");
        let now = fs::metadata(&path).expect("stat").len();
        lens.push(now - before);
        before = now;
    }
    lens
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).expect("stat").len()
}

fn io_kind(error: &Error) -> std::io::ErrorKind {
    match error {
        Error::Io(error) => error.kind(),
        other => panic!("expected an I/O error, got {other:?}"),
    }
}

#[test]
fn short_writes_keep_every_whole_line_and_cut_the_rest() {
    let test = "short_writes_keep_every_whole_line_and_cut_the_rest";
    let Some(dir) = child_dir() else {
        let dir = tempfile::tempdir().expect("tempdir");
        let before: Vec<Trace> = (0..2).map(|i| child_trace("before", i)).collect();
        JsonlStore::open(dir.path().join("traces.jsonl"))
            .expect("open")
            .save_many(&before)
            .expect("save_many");
        run_in_child(test, dir.path());

        let store = JsonlStore::open(dir.path().join("traces.jsonl")).expect("reopen");
        for trace in before.iter().chain(&[
            child_trace("batch", 0),
            child_trace("batch", 1),
            child_trace("single", 0),
        ]) {
            assert_eq!(&store.load(&trace.run_id).expect("load"), trace);
        }
        assert_eq!(store.count(&TraceFilter::new()).expect("count"), 5);
        let health = store.health().expect("health");
        assert_eq!(health.quarantined_lines, 0, "{health:?}");
        assert_eq!(health.incomplete_tail_bytes, 0, "{health:?}");
        return;
    };
    let path = dir.join("traces.jsonl");
    let store = JsonlStore::open(&path).expect("open");
    let single = child_trace("single", 0);
    let batch: Vec<Trace> = (0..3).map(|i| child_trace("batch", i)).collect();
    let single_len = line_lens(&dir, std::slice::from_ref(&single))[0];
    let batch_lens = line_lens(&dir, &batch);

    // One save that stops in the middle of its line: nothing of it stays.
    let len = file_len(&path);
    limit_file_size(len + single_len / 2);
    let error = store
        .save(&single)
        .expect_err("a save past the file size limit");
    lift_file_size_limit();
    assert_eq!(io_kind(&error), std::io::ErrorKind::FileTooLarge, "{error}");
    assert!(error.to_string().contains("traces.jsonl"), "{error}");
    assert_eq!(file_len(&path), len, "the partial line is cut off");
    assert!(
        store
            .load(&single.run_id)
            .expect_err("not saved")
            .is_not_found()
    );

    // A batch that stops in its second line: the first line is whole, and another
    // handle may have read it already, so it stays, and the error says so.
    let len = file_len(&path);
    limit_file_size(len + batch_lens[0] + batch_lens[1] / 2);
    let error = store
        .save_many(&batch)
        .expect_err("a save_many past the file size limit");
    lift_file_size_limit();
    assert_eq!(io_kind(&error), std::io::ErrorKind::FileTooLarge, "{error}");
    assert!(error.to_string().contains("1 of 3"), "{error}");
    assert_eq!(file_len(&path), len + batch_lens[0]);
    assert_eq!(store.load(&batch[0].run_id).expect("kept"), batch[0]);
    assert!(
        store
            .load(&batch[1].run_id)
            .expect_err("cut")
            .is_not_found()
    );

    // Once there is room again, writes go on after the last whole line.
    store.save(&batch[1]).expect("save");
    store.save(&single).expect("save");
    assert_eq!(store.count(&TraceFilter::new()).expect("count"), 5);
}

fn corrupt_lines(path: &Path) -> Vec<String> {
    let mut corrupt = path.as_os_str().to_owned();
    corrupt.push(".corrupt");
    match fs::read_to_string(PathBuf::from(corrupt)) {
        Ok(text) => text.lines().map(str::to_owned).collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn a_full_disk_while_moving_damage_out_leaves_the_corrupt_file_whole() {
    let test = "a_full_disk_while_moving_damage_out_leaves_the_corrupt_file_whole";
    let garbage = vec![b'g'; 64 << 10];
    let Some(dir) = child_dir() else {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("traces.jsonl");
        let traces: Vec<Trace> = (0..3).map(|i| child_trace("t", i)).collect();
        JsonlStore::open(&path)
            .expect("open")
            .save_many(&traces)
            .expect("save_many");
        let mut damaged = fs::read(&path).expect("read");
        damaged.extend_from_slice(&garbage);
        damaged.push(b'\n');
        fs::write(&path, &damaged).expect("write");

        run_in_child(test, dir.path());

        // With room again, the damage is moved out, and the .corrupt file holds one
        // whole entry, not the piece the child managed to write glued to it.
        let store = JsonlStore::open(&path).expect("open");
        assert_eq!(store.health().expect("health").last_error, None);
        let lines = corrupt_lines(&path);
        assert_eq!(lines.len(), 1, "{} .corrupt lines", lines.len());
        let entry: Value = serde_json::from_str(&lines[0]).expect("a .corrupt line is JSON");
        assert_eq!(entry["text"].as_str().map(str::len), Some(garbage.len()));
        assert_eq!(store.health().expect("health").quarantined_lines, 1);
        return;
    };
    let path = dir.join("traces.jsonl");
    limit_file_size(16 << 10);
    let store = JsonlStore::open(&path).expect("open despite the failed repair");
    let health = store.health().expect("health");
    assert_eq!(health.unquarantined_lines, 1, "{health:?}");
    let last_error = health.last_error.expect("the failed move is reported");
    assert!(last_error.contains(".corrupt"), "{last_error}");
    assert_eq!(store.count(&TraceFilter::new()).expect("count"), 3);
}

/// Opening a large file that is not a store (a SQLite database given by mistake, say)
/// is refused after reading its start, not after reading all of it into memory.
#[cfg(target_os = "linux")]
#[test]
fn a_large_foreign_file_is_refused_without_reading_it_into_memory() {
    let test = "a_large_foreign_file_is_refused_without_reading_it_into_memory";
    let Some(dir) = child_dir() else {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("traces.db");
        fs::write(&path, b"SQLite format 3\0").expect("write");
        // Sparse: 2 GiB on paper, nothing on disk; it reads as zeros with no newline.
        fs::File::options()
            .write(true)
            .open(&path)
            .expect("open")
            .set_len(2 << 30)
            .expect("set_len");
        run_in_child(test, dir.path());
        assert_eq!(file_len(&path), 2 << 30);
        return;
    };
    // Less address space than the file is long.
    set_limit(Resource::As, Some(1 << 30));
    match JsonlStore::open(dir.join("traces.db")) {
        Err(Error::Corrupt { message, .. }) => {
            assert!(message.contains("traces.db"), "{message}");
            assert!(message.contains("untouched"), "{message}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}
