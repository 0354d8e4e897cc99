//! A store opened read-only reads and never writes, creates or changes a file.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::Path;

use trace_store_core::{Error, Trace, TraceFilter, TraceStore};
use trace_store_sqlite::{SqliteOptions, SqliteStore};

fn read_only() -> SqliteOptions {
    SqliteOptions::default().with_read_only(true)
}

/// Every file in `dir` and its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| {
            let e = e.expect("entry");
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read"),
            )
        })
        .collect()
}

fn filled(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("traces.db");
    let store = SqliteStore::open(&path).expect("open");
    for i in 0..5 {
        store
            .save(&Trace::new(format!("r{i}")).with_metadata("user", i % 2))
            .expect("save");
    }
    store.close().expect("close");
    path
}

fn assert_refused<T: std::fmt::Debug>(what: &str, result: trace_store_core::Result<T>) {
    match result {
        Err(Error::Io(error)) if error.kind() == ErrorKind::PermissionDenied => {
            assert!(error.to_string().contains("read-only"), "{what}: {error}");
        }
        other => panic!("{what} on a read-only store gave {other:?}"),
    }
}

#[test]
fn reads_work_and_every_write_is_refused_without_touching_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = filled(dir.path());
    let before = snapshot(dir.path());

    let store = SqliteStore::open_with(&path, read_only()).expect("open read-only");
    assert_eq!(store.list(10, 0).expect("list").len(), 5);
    assert_eq!(store.load("r3").expect("load").run_id, "r3");
    let filter = TraceFilter::new().with_metadata("user", 1);
    assert_eq!(store.count(&filter).expect("count"), 2);
    assert_eq!(store.stats(&filter).expect("stats").count, 2);

    assert_refused("save", store.save(&Trace::new("new")));
    assert_refused("save_many", store.save_many(&[Trace::new("new")]));
    assert_refused("delete", store.delete("r1"));
    assert_refused("merge", store.merge(&Trace::new("r1")));
    assert_refused("delete_where", store.delete_where(&filter));
    assert_refused("merge_many", store.merge_many(&[Trace::new("r1")]));
    drop(store);

    assert_eq!(
        snapshot(dir.path()),
        before,
        "a read-only store created or changed a file"
    );
}

#[test]
fn a_missing_file_is_not_created() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("missing.db");
    let error = SqliteStore::open_with(&path, read_only()).expect_err("no such file");
    assert!(error.to_string().contains("missing.db"), "{error}");
    assert!(!path.exists(), "opening read-only created the file");
}

#[test]
fn a_file_that_is_not_a_current_store_is_refused_unchanged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("empty.db");
    std::fs::write(&path, b"").expect("write");
    let error = SqliteStore::open_with(&path, read_only()).expect_err("an empty file");
    assert!(matches!(error, Error::InvalidInput { .. }), "{error:?}");
    assert!(
        error.to_string().contains("open it writable once"),
        "{error}"
    );
    assert_eq!(std::fs::read(&path).expect("read"), b"");
}

/// While a writable store has the file open (its log beside it), a read-only store
/// sees the writer's commits.
#[test]
fn a_live_writer_is_seen_through_its_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = filled(dir.path());
    let writer = SqliteStore::open(&path).expect("open writable");
    writer.save(&Trace::new("live-1")).expect("save");
    let reader = SqliteStore::open_with(&path, read_only()).expect("open read-only");
    assert_eq!(reader.load("live-1").expect("load").run_id, "live-1");
    writer.save(&Trace::new("live-2")).expect("save");
    assert_eq!(reader.load("live-2").expect("load").run_id, "live-2");
    assert_eq!(reader.list(100, 0).expect("list").len(), 7);
}
