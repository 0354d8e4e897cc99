//! Handles whose view of the file is older than another handle's repair or append.
//!
//! A handle decides that nothing changed from the file's identity and length alone, so
//! these cases arrange for the length to come back to what an older view saw.

use std::fs;
use std::path::Path;

use trace_store_conformance::child_trace;
use trace_store_core::{Trace, TraceFilter, TraceStore};
use trace_store_jsonl::JsonlStore;

/// The length of the line `trace` is stored as.
fn line_len(dir: &Path, trace: &Trace) -> usize {
    let path = dir.join("measure.jsonl");
    let store = JsonlStore::open(&path).expect("open");
    store.save(trace).expect("save");
    fs::read(&path).expect("read").len()
}

#[test]
fn a_handle_that_saw_a_torn_line_follows_its_repair_and_the_next_append() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("traces.jsonl");
    let early: Vec<Trace> = (0..3).map(|i| child_trace("early", i)).collect();
    JsonlStore::open(&path)
        .expect("open")
        .save_many(&early)
        .expect("save_many");

    // A writer died in the middle of a line exactly as long as the line of `late` will
    // be; the line starts like a record, as a torn one does.
    let late = child_trace("late", 7);
    let mut torn = b"{\"run_id\":\"torn".to_vec();
    torn.resize(line_len(dir.path(), &late), b'x');
    let mut file = fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open for append");
    std::io::Write::write_all(&mut file, &torn).expect("append the torn line");
    let torn_file_len = fs::metadata(&path).expect("stat").len();

    // `stale` opens while someone holds the lock, so it cannot repair the torn line and
    // keeps it as the file's incomplete tail.
    file.lock().expect("lock");
    let stale = JsonlStore::open(&path).expect("open while locked");
    assert_eq!(
        stale.health().expect("health").incomplete_tail_bytes,
        torn.len() as u64
    );
    file.unlock().expect("unlock");
    drop(file);

    // Another handle moves the torn line out and appends `late` in its place: the file
    // has the same identity and length as `stale` last saw it.
    let repairer = JsonlStore::open(&path).expect("open");
    repairer.save(&late).expect("save late");
    assert_eq!(fs::metadata(&path).expect("stat").len(), torn_file_len);

    // C9: `stale` sees the completed save of the other handle.
    assert_eq!(stale.load(&late.run_id).expect("stale sees late"), late);
    assert_eq!(stale.count(&TraceFilter::new()).expect("count"), 4);

    // And its next write must not take `late` for the torn line it remembers.
    stale
        .save(&child_trace("after", 0))
        .expect("save through stale");
    assert_eq!(repairer.load(&late.run_id).expect("late survives"), late);
    let reopened = JsonlStore::open(&path).expect("reopen");
    assert_eq!(reopened.load(&late.run_id).expect("late survives"), late);
    assert_eq!(reopened.count(&TraceFilter::new()).expect("count"), 5);
    assert_eq!(
        reopened.health().expect("health").quarantined_lines,
        1,
        "only the torn line was moved out"
    );
}
