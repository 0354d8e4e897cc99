//! Damaged files: torn last lines, garbage lines, zeroed blocks, glued records, foreign
//! files. Open works, every intact record loads, the bad bytes end up in `<file>.corrupt`
//! with their offset, and the next save is intact.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use trace_store_conformance::child_trace;
use trace_store_core::{Error, Trace, TraceFilter, TraceStore};
use trace_store_jsonl::{JsonlOptions, JsonlStore};

/// A file with `n` saves written by the store, and the traces saved.
fn saved_file(n: u64) -> (tempfile::TempDir, PathBuf, Vec<Trace>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("traces.jsonl");
    let traces: Vec<Trace> = (0..n).map(|i| child_trace("rec", i)).collect();
    let store = JsonlStore::open(&path).expect("open");
    for trace in &traces {
        store.save(trace).expect("save");
    }
    (dir, path, traces)
}

/// Byte ranges of the lines of `bytes`, newline included.
fn lines(bytes: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'\n' {
            out.push(start..i + 1);
            start = i + 1;
        }
    }
    out
}

fn corrupt_entries(path: &Path) -> Vec<Value> {
    let mut corrupt = path.as_os_str().to_owned();
    corrupt.push(".corrupt");
    match fs::read_to_string(PathBuf::from(corrupt)) {
        Ok(text) => text
            .lines()
            .map(|line| serde_json::from_str(line).expect("a .corrupt entry is JSON"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn corrupt_len(path: &Path) -> u64 {
    let mut corrupt = path.as_os_str().to_owned();
    corrupt.push(".corrupt");
    fs::metadata(PathBuf::from(corrupt)).map_or(0, |m| m.len())
}

fn entry_bytes(entry: &Value) -> Vec<u8> {
    match (&entry["text"], &entry["hex"]) {
        _ if entry["zeros"] == true => {
            vec![0; entry["length"].as_u64().expect("length") as usize]
        }
        (Value::String(text), _) => text.as_bytes().to_vec(),
        (_, Value::String(hex)) => (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
            .collect(),
        _ => panic!("entry without bytes: {entry}"),
    }
}

fn assert_loads(store: &JsonlStore, traces: &[&Trace]) {
    for trace in traces {
        assert_eq!(&store.load(&trace.run_id).expect("load"), *trace);
    }
    assert_eq!(
        store.count(&TraceFilter::new()).expect("count"),
        traces.len() as u64
    );
}

/// Saves one more trace, reopens, and checks everything is there, nothing was
/// quarantined twice and the file ends with a whole line.
fn next_save_is_intact(path: &Path, store: JsonlStore, expected: Vec<&Trace>) {
    let quarantined = store.health().expect("health").quarantined_lines;
    let next = child_trace("next", 1);
    store.save(&next).expect("save after recovery");
    drop(store);
    let reopened = JsonlStore::open(path).expect("reopen");
    let mut expected = expected;
    expected.push(&next);
    assert_loads(&reopened, &expected);
    let health = reopened.health().expect("health");
    assert_eq!(health.quarantined_lines, quarantined, "quarantined again");
    assert_eq!(health.incomplete_tail_bytes, 0);
    assert!(fs::read(path).expect("read").ends_with(b"}\n"));
}

#[test]
fn torn_last_line_is_moved_out() {
    let (_dir, path, traces) = saved_file(5);
    let bytes = fs::read(&path).expect("read");
    let last = lines(&bytes)[4].clone();
    let cut = last.start + last.len() / 2;
    fs::write(&path, &bytes[..cut]).expect("cut");

    let store = JsonlStore::open(&path).expect("open a file with a torn last line");
    assert_loads(&store, &traces[..4].iter().collect::<Vec<_>>());
    assert!(
        store
            .load(&traces[4].run_id)
            .expect_err("torn")
            .is_not_found()
    );
    let entries = corrupt_entries(&path);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["offset"], last.start);
    assert_eq!(entry_bytes(&entries[0]), &bytes[last.start..cut]);
    assert_eq!(
        fs::read(&path).expect("read"),
        &bytes[..last.start],
        "cut off"
    );
    assert_eq!(store.health().expect("health").quarantined_lines, 1);
    next_save_is_intact(&path, store, traces[..4].iter().collect());
}

#[test]
fn garbage_line_in_the_middle_is_moved_out() {
    let (_dir, path, traces) = saved_file(5);
    let bytes = fs::read(&path).expect("read");
    let at = lines(&bytes)[2].start;
    let garbage = b"this is {not JSON at all\n";
    let mut damaged = bytes[..at].to_vec();
    damaged.extend_from_slice(garbage);
    damaged.extend_from_slice(&bytes[at..]);
    fs::write(&path, &damaged).expect("write");

    let store = JsonlStore::open(&path).expect("open");
    assert_loads(&store, &traces.iter().collect::<Vec<_>>());
    let entries = corrupt_entries(&path);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["offset"], at);
    assert_eq!(entry_bytes(&entries[0]), &garbage[..garbage.len() - 1]);
    assert!(
        entries[0]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("not JSON"),
        "{}",
        entries[0]
    );
    let now = fs::read(&path).expect("read");
    assert_eq!(now.len(), damaged.len(), "records keep their offsets");
    assert!(now[at..at + garbage.len() - 1].iter().all(|b| *b == b' '));
    let health = store.health().expect("health");
    assert_eq!(health.quarantined_lines, 1);
    assert!(health.dead_bytes >= garbage.len() as u64);
    assert_eq!(health.unquarantined_lines, 0);

    // Compaction drops the blanked line; the .corrupt file keeps the bytes.
    store.compact().expect("compact");
    assert_eq!(fs::read(&path).expect("read"), bytes);
    next_save_is_intact(&path, store, traces.iter().collect());
}

#[test]
fn zero_block_after_the_last_line_is_moved_out() {
    let (_dir, path, traces) = saved_file(3);
    let bytes = fs::read(&path).expect("read");
    let mut damaged = bytes.clone();
    damaged.extend_from_slice(&[0; 4096]);
    fs::write(&path, &damaged).expect("write");

    let store = JsonlStore::open(&path).expect("open");
    assert_loads(&store, &traces.iter().collect::<Vec<_>>());
    let entries = corrupt_entries(&path);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["offset"], bytes.len());
    assert_eq!(entry_bytes(&entries[0]), vec![0; 4096]);
    assert!(
        corrupt_len(&path) < 1024,
        "{} bytes in .corrupt for 4096 zeros",
        corrupt_len(&path)
    );
    assert_eq!(fs::read(&path).expect("read"), bytes);
    next_save_is_intact(&path, store, traces.iter().collect());
}

#[test]
fn zero_block_in_place_of_a_record_is_moved_out_and_the_next_record_kept() {
    // As after a crash where the blocks of one append never reached the disk but the
    // file length and a later append did: zeros, then the next record on the same line.
    let (_dir, path, traces) = saved_file(5);
    let bytes = fs::read(&path).expect("read");
    let ranges = lines(&bytes);
    let lost = ranges[2].clone();
    let mut damaged = bytes[..lost.start].to_vec();
    damaged.extend_from_slice(&vec![0; lost.len()]);
    damaged.extend_from_slice(&bytes[lost.end..]);
    fs::write(&path, &damaged).expect("write");

    let store = JsonlStore::open(&path).expect("open");
    let kept: Vec<&Trace> = [0, 1, 3, 4].iter().map(|&i| &traces[i]).collect();
    assert_loads(&store, &kept);
    let entries = corrupt_entries(&path);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["offset"], lost.start);
    assert_eq!(entry_bytes(&entries[0]), vec![0; lost.len()]);
    next_save_is_intact(&path, store, kept);
}

#[test]
fn record_glued_to_a_torn_line_is_kept() {
    // A writer without our recovery appended after a torn line without a newline.
    let (_dir, path, traces) = saved_file(3);
    let bytes = fs::read(&path).expect("read");
    let ranges = lines(&bytes);
    let torn = ranges[1].start..ranges[1].start + ranges[1].len() / 3;
    let mut damaged = bytes[..ranges[1].start].to_vec();
    damaged.extend_from_slice(&bytes[torn.clone()]);
    damaged.extend_from_slice(&bytes[ranges[2].clone()]);
    fs::write(&path, &damaged).expect("write");

    let store = JsonlStore::open(&path).expect("open");
    let kept = vec![&traces[0], &traces[2]];
    assert_loads(&store, &kept);
    let entries = corrupt_entries(&path);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["offset"], torn.start);
    assert_eq!(entry_bytes(&entries[0]), &bytes[torn]);
    next_save_is_intact(&path, store, kept);
}

#[test]
fn damage_appended_by_another_process_is_found_by_an_open_handle() {
    let (_dir, path, traces) = saved_file(2);
    let store = JsonlStore::open(&path).expect("open");
    let mut file = fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open for append");
    std::io::Write::write_all(&mut file, b"{\"not\": \"ours\"}\n").expect("append");
    let extra = child_trace("extra", 0);
    let mut line = Vec::new();
    {
        let other = JsonlStore::open(dir_of(&path).join("other.jsonl")).expect("open other");
        other.save(&extra).expect("save");
        line.extend(fs::read(other.path()).expect("read other"));
    }
    std::io::Write::write_all(&mut file, &line).expect("append a record");
    drop(file);

    let mut expected: Vec<&Trace> = traces.iter().collect();
    expected.push(&extra);
    assert_loads(&store, &expected);
    // A foreign line in a file of ours is damage, moved out by the next write.
    let next = child_trace("next", 0);
    store.save(&next).expect("save");
    let entries = corrupt_entries(&path);
    assert_eq!(entries.len(), 1);
    assert_eq!(entry_bytes(&entries[0]), b"{\"not\": \"ours\"}");
    expected.push(&next);
    assert_loads(&store, &expected);
}

fn dir_of(path: &Path) -> &Path {
    path.parent().expect("parent")
}

#[test]
fn read_only_handles_report_damage_and_change_nothing() {
    let (_dir, path, traces) = saved_file(3);
    let mut damaged = fs::read(&path).expect("read");
    damaged.extend_from_slice(b"garbage\n{\"run_id\":\"half");
    fs::write(&path, &damaged).expect("write");

    let store = JsonlStore::open_with(&path, JsonlOptions::default().with_read_only(true))
        .expect("open read-only");
    assert_loads(&store, &traces.iter().collect::<Vec<_>>());
    let health = store.health().expect("health");
    assert_eq!(health.unquarantined_lines, 1);
    assert_eq!(health.incomplete_tail_bytes, 15);
    assert_eq!(health.quarantined_lines, 0);
    let Err(Error::Io(error)) = store.save(&child_trace("x", 0)) else {
        panic!("a read-only store must refuse writes");
    };
    assert_eq!(error.kind(), std::io::ErrorKind::PermissionDenied);
    assert!(error.to_string().contains("read-only"), "{error}");
    assert!(matches!(store.compact(), Err(Error::Io(_))));
    assert_eq!(fs::read(&path).expect("read"), damaged, "untouched");
    assert!(corrupt_entries(&path).is_empty());
}

#[test]
fn files_of_others_are_refused_and_left_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, content) in [
        (
            "foreign.jsonl",
            &b"{\"event\": \"login\", \"user\": 1}\n{\"event\": \"logout\"}\n"[..],
        ),
        (
            "binary.bin",
            &b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x03\0>\0"[..],
        ),
        ("text.txt", &b"just some notes\nnothing to see\n"[..]),
    ] {
        let path = dir.path().join(name);
        fs::write(&path, content).expect("write");
        match JsonlStore::open(&path) {
            Err(Error::Corrupt { message, .. }) => {
                assert!(message.contains(name), "{message}");
                assert!(message.contains("untouched"), "{message}");
            }
            other => panic!("{name}: expected Corrupt, got {other:?}"),
        }
        assert_eq!(fs::read(&path).expect("read"), content, "{name} changed");
        assert!(corrupt_entries(&path).is_empty(), "{name} quarantined");
    }
}

#[test]
fn a_crash_during_the_first_save_leaves_a_file_that_opens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("traces.jsonl");
    let mut line = Vec::new();
    {
        let other = JsonlStore::open(dir.path().join("model.jsonl")).expect("open");
        other.save(&child_trace("a", 0)).expect("save");
        line.extend(fs::read(other.path()).expect("read"));
    }
    fs::write(&path, &line[..line.len() / 2]).expect("write");
    let store = JsonlStore::open(&path).expect("open a file holding only a torn line");
    assert_eq!(store.count(&TraceFilter::new()).expect("count"), 0);
    assert_eq!(corrupt_entries(&path).len(), 1);
    next_save_is_intact(&path, store, Vec::new());
}

#[test]
fn a_removed_file_is_a_typed_error_naming_it() {
    let (_dir, path, traces) = saved_file(1);
    let store = JsonlStore::open(&path).expect("open");
    fs::remove_file(&path).expect("remove");
    for result in [
        store.save(&traces[0]).map(|_| ()),
        store.load(&traces[0].run_id).map(|_| ()),
        store.list(10, 0).map(|_| ()),
    ] {
        let Err(Error::Io(error)) = result else {
            panic!("expected an I/O error, got {result:?}");
        };
        assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
        assert!(error.to_string().contains("traces.jsonl"), "{error}");
        assert!(error.to_string().contains("reopen"), "{error}");
    }
    let missing_dir = path.parent().expect("dir").join("no/such/dir/t.jsonl");
    let Err(Error::Io(error)) = JsonlStore::open(&missing_dir) else {
        panic!("a missing directory must be an I/O error");
    };
    assert!(error.to_string().contains("directory"), "{error}");
    // The operating system's error is kept whole beneath the message, not flattened.
    let os_error = std::error::Error::source(&error)
        .and_then(|source| source.downcast_ref::<std::io::Error>())
        .unwrap_or_else(|| panic!("no io::Error source under {error:?}"));
    assert_eq!(
        os_error.kind(),
        std::io::ErrorKind::NotFound,
        "{os_error:?}"
    );
    assert!(os_error.raw_os_error().is_some(), "{os_error:?}");
}

#[test]
fn a_line_whose_body_is_damaged_in_place_loads_as_corrupt_not_panic() {
    let (_dir, path, traces) = saved_file(2);
    let store = JsonlStore::open(&path).expect("open");
    // Flip a byte inside the first trace body without changing the length (as a
    // failing disk would); the index was built before, so only load sees it.
    let mut bytes = fs::read(&path).expect("read");
    let body = bytes
        .windows(18)
        .position(|w| w == b"{\"schema_version\":")
        .expect("body");
    bytes[body + 1] = b'#';
    fs::write(&path, &bytes).expect("write");
    match store.load(&traces[0].run_id) {
        Err(error @ Error::Corrupt { .. }) => {
            let at = error.corrupt_place().expect("a place");
            assert_eq!(
                at.offset,
                Some(body as u64),
                "the body's byte offset: {at:?}"
            );
            assert_eq!(at.key.as_deref(), Some(traces[0].run_id.as_str()), "{at:?}");
            assert!(
                at.file
                    .as_ref()
                    .is_some_and(|f| f.ends_with("traces.jsonl")),
                "{at:?}"
            );
            let message = error.to_string();
            assert!(message.contains("traces.jsonl"), "{message}");
            assert!(message.contains(&traces[0].run_id), "{message}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(store.load(&traces[1].run_id).expect("load"), traces[1]);
}

/// Replaces the first `from` in line `line` of the file, which is the one in the line's
/// summary members (they come before the trace).
fn edit_summary(path: &Path, line: usize, from: &str, to: &str) {
    assert_eq!(from.len(), to.len());
    let mut bytes = fs::read(path).expect("read");
    let range = lines(&bytes)[line].clone();
    let at = bytes[range.clone()]
        .windows(from.len())
        .position(|w| w == from.as_bytes())
        .expect("text to edit")
        + range.start;
    bytes[at..at + from.len()].copy_from_slice(to.as_bytes());
    fs::write(path, &bytes).expect("write");
}

#[test]
fn a_line_whose_summary_was_edited_apart_from_its_trace_loads_as_corrupt() {
    let (_dir, path, traces) = saved_file(3);
    edit_summary(
        &path,
        1,
        "2026-01-01T00:00:00.000001Z",
        "2031-01-01T00:00:00.000001Z",
    );
    edit_summary(&path, 2, "\"writer\":\"rec\"", "\"writer\":\"xyz\"");

    let store = JsonlStore::open(&path).expect("open");
    // list and query answer from the summary members...
    assert_eq!(store.list(1, 0).expect("list")[0].run_id, traces[1].run_id);
    let edited = store
        .query(&TraceFilter::new().with_metadata("writer", "xyz"))
        .expect("query");
    assert_eq!(edited.len(), 1);
    // ...so load must not return a trace that contradicts them.
    for (trace, member) in [(&traces[1], "created_at"), (&traces[2], "metadata")] {
        match store.load(&trace.run_id) {
            Err(Error::Corrupt { message, .. }) => {
                assert!(message.contains(member), "{message}");
                assert!(message.contains("traces.jsonl at byte offset"), "{message}");
            }
            other => panic!(
                "{}: expected Corrupt, got {:?}",
                trace.run_id,
                other.map(|trace| trace.created_at)
            ),
        }
    }
    assert_eq!(store.load(&traces[0].run_id).expect("load"), traces[0]);
}
