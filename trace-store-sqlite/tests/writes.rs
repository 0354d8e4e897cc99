//! Transactions: a batch is all or nothing even when SQLite fails half-way, and
//! readers never wait for a writer.

use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;
use trace_store_core::{Error, Step, Trace, TraceFilter, TraceStore};
use trace_store_sqlite::{SqliteOptions, SqliteStore};

fn trace(run_id: &str) -> Trace {
    Trace::new(run_id)
        .with_metadata("batch", "b")
        .with_step(Step::llm_call("m").with_usage(1, 2))
}

fn batch(prefix: &str, n: usize) -> Vec<Trace> {
    (0..n).map(|i| trace(&format!("{prefix}-{i:04}"))).collect()
}

fn assert_only(store: &SqliteStore, expected: u64) {
    assert_eq!(store.count(&TraceFilter::new()).expect("count"), expected);
    assert_eq!(
        store
            .count(&TraceFilter::new().with_metadata("batch", "b"))
            .expect("count"),
        expected,
        "metadata index and traces disagree"
    );
    assert_eq!(
        store.stats(&TraceFilter::new()).expect("stats").count,
        expected
    );
}

/// SQLite rejects one trace in the middle of a batch (a trigger stands in for a full
/// disk or a constraint): nothing of the batch is kept, small or large (the large one
/// is encoded on a helper thread while it is written).
#[test]
fn save_many_is_all_or_nothing_when_a_write_fails_midway() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("traces.db");
    SqliteStore::open(&path)
        .expect("open")
        .close()
        .expect("close");
    Connection::open(&path)
        .expect("raw open")
        .execute_batch(
            "CREATE TRIGGER poison BEFORE INSERT ON traces WHEN NEW.run_id LIKE 'poison%'
             BEGIN SELECT RAISE(ABORT, 'poisoned trace'); END;",
        )
        .expect("trigger");
    let store = SqliteStore::open(&path).expect("reopen");
    store.save_many(&batch("kept", 3)).expect("save_many");
    for size in [5, 500] {
        let mut traces = batch(&format!("lost{size}"), size);
        traces.insert(size / 2, trace("poison"));
        let error = store.save_many(&traces).expect_err("the trigger fires");
        assert!(matches!(error, Error::Backend { .. }), "{error}");
        assert!(error.to_string().contains("poisoned trace"), "{error}");
        assert_only(&store, 3);
        assert!(store.load(&traces[0].run_id).is_err());
    }
    // An upsert in a failed batch leaves the old version.
    let mut replaced = trace("kept-0000").with_metadata("v", 2);
    replaced.created_at = store.load("kept-0000").expect("load").created_at;
    let error = store.save_many(&[replaced, trace("poison-2")]);
    assert!(error.is_err());
    assert!(
        !store
            .load("kept-0000")
            .expect("load")
            .metadata
            .contains_key("v")
    );
}

/// An invalid trace at the end of a large batch is reported before anything is written.
#[test]
fn save_many_validates_a_large_batch_before_writing() {
    let store = SqliteStore::in_memory().expect("in_memory");
    let mut traces = batch("x", 300);
    traces.push(trace("bad\nid"));
    assert!(matches!(
        store.save_many(&traces),
        Err(Error::InvalidInput { .. })
    ));
    assert_only(&store, 0);
    traces.pop();
    assert_eq!(store.save_many(&traces).expect("save_many").len(), 300);
    assert_only(&store, 300);
}

/// Another connection holds the write lock with uncommitted changes: loads, lists,
/// queries, counts and stats of the store still answer at once (with a zero busy
/// timeout any wait would be an error) and see the committed state; a save reports
/// the lock, naming the file and the setting to change.
#[test]
fn readers_do_not_wait_for_an_open_write_transaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("traces.db");
    for readers in [4, 0] {
        let _ = std::fs::remove_file(&path);
        let options = SqliteOptions::default()
            .with_busy_timeout(Duration::ZERO)
            .with_readers(readers);
        let store = SqliteStore::open_with(&path, options).expect("open");
        let saved = trace("a");
        store.save(&saved).expect("save");
        store.save(&trace("b")).expect("save");

        let raw = Connection::open(&path).expect("raw open");
        raw.execute_batch("BEGIN IMMEDIATE; DELETE FROM trace_bodies; DELETE FROM traces;")
            .expect("open a write transaction");
        assert_eq!(store.load("a").expect("load"), saved);
        assert_eq!(store.list(10, 0).expect("list").len(), 2);
        assert_eq!(
            store
                .query(&TraceFilter::new().with_metadata("batch", "b"))
                .expect("query")
                .len(),
            2
        );
        assert_only(&store, 2);

        let error = store
            .save(&trace("c"))
            .expect_err("the write lock is taken");
        let message = error.to_string();
        assert!(matches!(error, Error::Backend { .. }), "{message}");
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("busy timeout"), "{message}");
        assert!(
            store
                .save_many(&[])
                .expect("an empty batch needs no lock")
                .is_empty()
        );

        raw.execute_batch("ROLLBACK").expect("rollback");
        store.save(&trace("c")).expect("save once the lock is free");
        assert_only(&store, 3);
        store.close().expect("close");
    }
}

/// One in-memory database, seen by every thread.
#[test]
fn in_memory_is_one_database_for_every_thread() {
    let store = Arc::new(SqliteStore::in_memory().expect("in_memory"));
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                for i in 0..25 {
                    store.save(&trace(&format!("t{t}-{i}"))).expect("save");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().expect("writer");
    }
    let reader = Arc::clone(&store);
    let seen = std::thread::spawn(move || reader.count(&TraceFilter::new()).expect("count"))
        .join()
        .expect("reader");
    assert_eq!(seen, 100);
    assert_eq!(
        SqliteStore::in_memory()
            .expect("another")
            .list(10, 0)
            .expect("list")
            .len(),
        0
    );
}

/// Two handles on one file, two threads each, merge disjoint steps into the same few
/// runs with `merge_many`: every step of every run arrives, although what each
/// `merge_many` prepared on a reader is often stale by the time it holds the lock.
#[test]
fn concurrent_merge_many_into_the_same_runs_loses_no_step() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("traces.db");
    let stores: Vec<Arc<SqliteStore>> = (0..2)
        .map(|_| Arc::new(SqliteStore::open(&path).expect("open")))
        .collect();
    const RUNS: usize = 3;
    const ROUNDS: usize = 40;
    let threads: Vec<_> = (0..4)
        .map(|thread| {
            let store = Arc::clone(&stores[thread % 2]);
            std::thread::spawn(move || {
                for round in 0..ROUNDS {
                    let parts: Vec<Trace> = (0..RUNS)
                        .map(|run| {
                            Trace::new(format!("run-{run}")).with_step(
                                Step::llm_call("m").with_id(format!("t{thread}-r{round}")),
                            )
                        })
                        .collect();
                    store.merge_many(&parts).expect("merge_many");
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().expect("thread"));
    for run in 0..RUNS {
        let trace = stores[0].load(&format!("run-{run}")).expect("load");
        assert_eq!(trace.steps.len(), 4 * ROUNDS, "run-{run} lost steps");
    }
    assert_eq!(
        stores[1].stats(&TraceFilter::new()).expect("stats").steps,
        (RUNS * 4 * ROUNDS) as u64
    );
}
