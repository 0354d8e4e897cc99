//! Another process on the same file. Each test re-runs this test binary as the other
//! process (the environment variable [`ROLE`] says which part to play).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rusqlite::Connection;
use trace_store_core::{Error, Trace, TraceFilter, TraceStore};
use trace_store_sqlite::{SqliteOptions, SqliteStore};

const ROLE: &str = "TRACE_STORE_SQLITE_TEST_ROLE";
const DIR: &str = "TRACE_STORE_SQLITE_TEST_DIR";

/// This binary, running only `test` as `role`, in `dir`.
fn spawn(test: &str, role: &str, dir: &Path) -> Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(DIR, dir)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the other process")
}

fn role() -> Option<String> {
    std::env::var(ROLE).ok()
}

/// Reads the child's stdout until it prints `word` (the test harness may print the
/// test's name on the same line).
fn wait_for(child: &mut Child, word: &str) {
    let stdout = child.stdout.as_mut().expect("piped stdout");
    for line in BufReader::new(stdout).lines() {
        if line.expect("read the other process").ends_with(word) {
            return;
        }
    }
    panic!("the other process ended before printing {word:?}");
}

/// Another process holds the write lock in a transaction that never ends (a long
/// batch, or a process stopped in a debugger). Opening the store, loads, lists and
/// counts still work at once; a save waits for the busy timeout and then fails with
/// a typed error that names the file and the setting to change; once the other
/// process is killed, its transaction is gone and saves work again.
#[test]
fn a_long_write_in_another_process_blocks_neither_open_nor_reads() {
    if role().as_deref() == Some("hold-write-lock") {
        let dir = std::env::var(DIR).expect("dir");
        let raw = Connection::open(Path::new(&dir).join("traces.db")).expect("open");
        raw.execute_batch("BEGIN IMMEDIATE; DELETE FROM trace_bodies; DELETE FROM traces;")
            .expect("take the write lock");
        println!("locked");
        // Holds the lock until the parent kills this process (or goes away).
        let _ = std::io::stdin().read_line(&mut String::new());
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("traces.db");
    let store = SqliteStore::open(&path).expect("open");
    store.save(&Trace::new("a")).expect("save");
    store.close().expect("close");

    let mut holder = spawn(
        "a_long_write_in_another_process_blocks_neither_open_nor_reads",
        "hold-write-lock",
        dir.path(),
    );
    wait_for(&mut holder, "locked");
    let options = SqliteOptions::default().with_busy_timeout(Duration::from_millis(200));
    let store = SqliteStore::open_with(&path, options).expect("open beside a long write");
    assert_eq!(store.load("a").expect("load").run_id, "a");
    assert_eq!(store.list(10, 0).expect("list").len(), 1);
    assert_eq!(store.count(&TraceFilter::new()).expect("count"), 1);

    let error = store.save(&Trace::new("b")).expect_err("the lock is held");
    let message = error.to_string();
    assert!(
        matches!(
            error,
            Error::Backend {
                backend: "sqlite",
                ..
            }
        ),
        "{message}"
    );
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(
        error.is_retryable(),
        "a lock held past the busy timeout is retryable: {message}"
    );
    assert!(
        message.contains("SqliteOptions::with_busy_timeout"),
        "{message}"
    );

    holder.kill().expect("SIGKILL the lock holder");
    holder.wait().expect("reap");
    store
        .save(&Trace::new("b"))
        .expect("save once the lock is gone");
    assert_eq!(
        store.count(&TraceFilter::new()).expect("count"),
        2,
        "the killed transaction left nothing behind"
    );
}

/// The bundled SQLite reads a file name that starts with `file:` as a URI, where
/// `file:traces.db?mode=memory` is a private in-memory database per connection. The
/// store treats every path as a path. (Relative paths only: the other process runs in
/// a temporary directory.)
#[test]
fn a_relative_path_starting_with_file_colon_is_a_file() {
    const NAME: &str = "file:traces.db?mode=memory";
    if role().as_deref() == Some("open-file-colon") {
        let store = SqliteStore::open(NAME).expect("open");
        store.save(&Trace::new("a")).expect("save");
        assert_eq!(store.list(10, 0).expect("list").len(), 1);
        store.close().expect("close");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let child = spawn(
        "a_relative_path_starting_with_file_colon_is_a_file",
        "open-file-colon",
        dir.path(),
    );
    let status = child.wait_with_output().expect("wait").status;
    assert!(status.success(), "the other process failed: {status}");
    let store = SqliteStore::open(dir.path().join(NAME)).expect("reopen by absolute path");
    assert_eq!(store.load("a").expect("load").run_id, "a");
}
