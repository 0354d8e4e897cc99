//! Compaction: atomic, automatic when dead bytes outweigh live ones, and invisible to
//! other handles, which keep reading and writing across it.

use std::fs;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use trace_store_conformance::child_trace;
use trace_store_core::{TraceFilter, TraceStore};
use trace_store_jsonl::{JsonlOptions, JsonlStore};

#[test]
fn compaction_keeps_exactly_the_live_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("traces.jsonl");
    let store =
        JsonlStore::open_with(&path, JsonlOptions::default().without_auto_compact()).expect("open");
    for i in 0..20 {
        store.save(&child_trace("a", i)).expect("save");
    }
    for i in 0..10 {
        store.save(&child_trace("a", i)).expect("upsert");
    }
    for i in 10..15 {
        assert!(store.delete(&child_trace("a", i).run_id).expect("delete"));
    }
    let before = store.health().expect("health");
    assert_eq!(before.live_records, 15);
    assert_eq!(before.dead_records, 10 + 5 + 5);
    assert!(before.dead_bytes > 0);

    let report = store.compact().expect("compact");
    assert_eq!(report.bytes_before, before.file_bytes);
    assert_eq!(report.bytes_after, before.live_bytes);
    assert_eq!((report.live_records, report.dropped_records), (15, 20));
    let after = store.health().expect("health");
    assert_eq!(
        (after.dead_bytes, after.dead_records, after.file_bytes),
        (0, 0, before.live_bytes)
    );
    assert_eq!(fs::metadata(&path).expect("stat").len(), before.live_bytes);

    for store in [store, JsonlStore::open(&path).expect("reopen")] {
        for i in (0..10).chain(15..20) {
            assert_eq!(
                store.load(&child_trace("a", i).run_id).expect("load"),
                child_trace("a", i)
            );
        }
        assert_eq!(store.count(&TraceFilter::new()).expect("count"), 15);
    }
    let names: Vec<String> = fs::read_dir(dir.path())
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["traces.jsonl"], "no temporary file is left behind");
}

#[test]
fn compacts_by_itself_once_dead_bytes_outweigh_live_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("traces.jsonl");
    let store = JsonlStore::open_with(
        &path,
        JsonlOptions::default().with_auto_compact_min_bytes(0),
    )
    .expect("open");
    for i in 0..10 {
        store.save(&child_trace("a", i)).expect("save");
    }
    let full = store.health().expect("health").file_bytes;
    for i in 0..5 {
        store.delete(&child_trace("a", i).run_id).expect("delete");
        let health = store.health().expect("health");
        assert!(health.dead_bytes <= health.live_bytes, "{health:?}");
    }
    for i in 5..10 {
        store.delete(&child_trace("a", i).run_id).expect("delete");
    }
    let health = store.health().expect("health");
    assert!(health.file_bytes < full / 2, "{health:?}");
    assert_eq!(health.live_records, 0);
    assert_eq!(health.last_error, None);

    // Below the minimum size nothing happens by itself.
    let small = JsonlStore::open_with(
        dir.path().join("small.jsonl"),
        JsonlOptions::default().with_auto_compact_min_bytes(1 << 30),
    )
    .expect("open");
    small.save(&child_trace("b", 0)).expect("save");
    small.delete(&child_trace("b", 0).run_id).expect("delete");
    assert_eq!(small.health().expect("health").dead_records, 2);
}

#[test]
fn other_handles_keep_reading_and_writing_across_compactions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("traces.jsonl");
    let compactor = JsonlStore::open(&path).expect("open");
    for i in 0..30 {
        compactor.save(&child_trace("keep", i)).expect("save");
    }
    let reader = Arc::new(JsonlStore::open(&path).expect("open reader"));
    let writer = JsonlStore::open(&path).expect("open writer");
    let done = Arc::new(AtomicBool::new(false));
    let reading = {
        let (reader, done) = (Arc::clone(&reader), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut rounds = 0;
            while !done.load(Ordering::Relaxed) || rounds == 0 {
                let listed = reader
                    .count(&TraceFilter::new().with_metadata("writer", "keep"))
                    .expect("count across compactions");
                assert_eq!(listed, 30, "a reader saw a partial file");
                for i in [0, 17, 29] {
                    let expected = child_trace("keep", i);
                    assert_eq!(reader.load(&expected.run_id).expect("load"), expected);
                }
                rounds += 1;
            }
            rounds
        })
    };
    for i in 0..25 {
        let junk = child_trace("junk", i);
        writer.save(&junk).expect("save through another handle");
        assert!(
            compactor
                .delete(&junk.run_id)
                .expect("delete through the compactor")
        );
        compactor.compact().expect("compact");
        writer
            .save(&child_trace("late", i))
            .expect("save after a compaction");
    }
    done.store(true, Ordering::Relaxed);
    let rounds = reading.join().expect("reader thread");
    assert!(rounds > 0);
    for store in [&*reader, &writer, &compactor] {
        assert_eq!(store.count(&TraceFilter::new()).expect("count"), 55);
        assert_eq!(
            store.load(&child_trace("late", 24).run_id).expect("load"),
            child_trace("late", 24)
        );
    }
}

#[test]
fn abandoned_compaction_files_are_removed_by_the_next_compaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("traces.jsonl");
    let store = JsonlStore::open(&path).expect("open");
    store.save(&child_trace("a", 0)).expect("save");
    let abandoned = dir.path().join(".traces.jsonl.compact-abc123.tmp");
    fs::write(&abandoned, b"half a compaction").expect("write");
    let unrelated = dir.path().join("notes.tmp");
    fs::write(&unrelated, b"keep me").expect("write");
    store.compact().expect("compact");
    assert!(!abandoned.exists());
    assert!(unrelated.exists());
}

#[cfg(unix)]
#[test]
fn compaction_through_a_symlink_rewrites_the_real_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let real_dir = dir.path().join("real");
    fs::create_dir(&real_dir).expect("mkdir");
    let real = real_dir.join("traces.jsonl");
    let link = dir.path().join("link.jsonl");
    fs::write(&real, b"").expect("create");
    std::os::unix::fs::symlink(&real, &link).expect("symlink");
    let store = JsonlStore::open(&link).expect("open through the link");
    store.save(&child_trace("a", 0)).expect("save");
    store.save(&child_trace("a", 0)).expect("save again");
    store.compact().expect("compact");
    assert!(
        fs::symlink_metadata(&link)
            .expect("lstat")
            .file_type()
            .is_symlink()
    );
    assert_eq!(store.path(), fs::canonicalize(&real).expect("canonicalize"));
    let reopened = JsonlStore::open(&link).expect("reopen through the link");
    assert_eq!(reopened.health().expect("health").dead_records, 0);
    assert_eq!(
        reopened.load("a-000000").expect("load"),
        child_trace("a", 0)
    );
}

#[test]
fn sync_durability_writes_and_compacts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("traces.jsonl");
    let store = JsonlStore::open_with(
        &path,
        JsonlOptions::default().with_durability(trace_store_jsonl::Durability::Sync),
    )
    .expect("open");
    store
        .save_many(&[child_trace("s", 0), child_trace("s", 1)])
        .expect("save_many");
    assert!(store.delete("s-000000").expect("delete"));
    store.compact().expect("compact");
    drop(store);
    let reopened = JsonlStore::open(&path).expect("reopen");
    assert_eq!(reopened.list(10, 0).expect("list").len(), 1);
}
