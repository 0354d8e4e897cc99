//! The index snapshot beside the file: used when it matches the file, rebuilt when it is
//! stale, truncated, from another file, damaged or from a newer version; written
//! atomically with the store file's permission bits.

use std::fs;
use std::path::{Path, PathBuf};

use trace_store_core::{Step, Timestamp, Trace, TraceFilter, TraceStore, TraceSummary};
use trace_store_jsonl::{JsonlOptions, JsonlStore};

fn options() -> JsonlOptions {
    JsonlOptions::default()
        .without_auto_compact()
        .with_index_snapshot_min_bytes(0)
}

fn snapshot_of(path: &Path) -> PathBuf {
    path.with_file_name(format!(
        "{}.index",
        path.file_name().unwrap().to_string_lossy()
    ))
}

fn trace(i: usize) -> Trace {
    Trace::new(format!("run-{i:04}"))
        .with_created_at(Timestamp::from_micros(1_000_000 + i as i64).unwrap())
        .with_name(["agent", "bot"][i % 2])
        .with_metadata("user_id", format!("u{}", i % 7))
        .with_metadata("n", i)
        .with_step(Step::llm_call("gpt-4o").with_usage(i as u64, 3))
}

/// A store of `n` traces, some superseded and some deleted, closed (so its snapshot
/// is written).
fn filled(dir: &Path, name: &str, n: usize) -> PathBuf {
    let path = dir.join(name);
    let store = JsonlStore::open_with(&path, options()).unwrap();
    store
        .save_many(&(0..n).map(trace).collect::<Vec<_>>())
        .unwrap();
    store.save(&trace(1).with_metadata("again", true)).unwrap();
    store.delete("run-0002").unwrap();
    drop(store);
    path
}

/// Everything a reader sees: the list, a metadata query, a load, the health counts.
fn answers(store: &JsonlStore) -> (Vec<TraceSummary>, Vec<TraceSummary>, Trace, (u64, u64)) {
    let health = store.health().unwrap();
    (
        store.list(1000, 0).unwrap(),
        store
            .query(&TraceFilter::new().with_metadata("user_id", "u3"))
            .unwrap(),
        store.load("run-0001").unwrap(),
        (health.live_records, health.dead_records),
    )
}

/// Opens `path` and checks it answers exactly what a handle that read the whole file
/// answers; returns whether the index came from the snapshot.
fn open_and_compare(path: &Path) -> bool {
    let store = JsonlStore::open_with(path, options()).unwrap();
    let from_snapshot = store.health().unwrap().index_from_snapshot;
    let got = answers(&store);
    drop(store);
    let copy = path.with_extension("copy");
    fs::copy(path, &copy).unwrap();
    let reference = JsonlStore::open_with(&copy, options().without_index_snapshot()).unwrap();
    assert!(!reference.health().unwrap().index_from_snapshot);
    assert_eq!(got, answers(&reference));
    drop(reference);
    fs::remove_file(&copy).unwrap();
    from_snapshot
}

#[test]
fn a_valid_snapshot_is_used_and_answers_like_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = filled(dir.path(), "t.jsonl", 50);
    assert!(snapshot_of(&path).exists());
    assert!(open_and_compare(&path));
}

#[test]
fn lines_appended_after_the_snapshot_are_read_on_top_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = filled(dir.path(), "t.jsonl", 50);
    let before = fs::read(snapshot_of(&path)).unwrap();
    {
        // A handle that never writes snapshots appends, supersedes and deletes.
        let other = JsonlStore::open_with(&path, options().without_index_snapshot()).unwrap();
        other.save(&trace(60)).unwrap();
        other
            .save(&trace(3).with_metadata("user_id", "u3"))
            .unwrap();
        other.delete("run-0010").unwrap();
    }
    assert_eq!(fs::read(snapshot_of(&path)).unwrap(), before);
    assert!(open_and_compare(&path));
    let store = JsonlStore::open_with(&path, options()).unwrap();
    assert!(store.load("run-0060").is_ok() && store.load("run-0010").is_err());
}

#[test]
fn a_snapshot_of_a_compacted_or_rewritten_file_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let path = filled(dir.path(), "t.jsonl", 50);
    let stale = fs::read(snapshot_of(&path)).unwrap();
    {
        let other = JsonlStore::open_with(&path, options()).unwrap();
        other.compact().unwrap();
    }
    // The compaction wrote a snapshot of the new file...
    assert!(open_and_compare(&path));
    // ...and one of the file before it (another inode) is not trusted.
    fs::write(snapshot_of(&path), &stale).unwrap();
    assert!(!open_and_compare(&path));

    // The same inode rewritten in place with other traces, longer than before.
    let path = filled(dir.path(), "u.jsonl", 50);
    let other = filled(dir.path(), "other.jsonl", 80);
    fs::write(&path, fs::read(&other).unwrap()).unwrap();
    assert!(!open_and_compare(&path));
}

#[test]
fn a_snapshot_of_a_truncated_file_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let path = filled(dir.path(), "t.jsonl", 50);
    let len = fs::metadata(&path).unwrap().len();
    let file = fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(len - 100).unwrap();
    drop(file);
    assert!(!open_and_compare(&path));
}

#[test]
fn a_snapshot_of_another_file_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let a = filled(dir.path(), "a.jsonl", 50);
    let b = filled(dir.path(), "b.jsonl", 50);
    fs::copy(snapshot_of(&a), snapshot_of(&b)).unwrap();
    assert!(!open_and_compare(&b));
}

#[test]
fn a_damaged_or_torn_snapshot_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let path = filled(dir.path(), "t.jsonl", 50);
    let good = fs::read(snapshot_of(&path)).unwrap();
    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0x20;
    for damaged in [
        flipped,
        good[..good.len() / 2].to_vec(),
        Vec::new(),
        b"x".to_vec(),
    ] {
        fs::write(snapshot_of(&path), &damaged).unwrap();
        assert!(!open_and_compare(&path));
    }
}

#[test]
fn a_snapshot_from_a_newer_version_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let path = filled(dir.path(), "t.jsonl", 50);
    let mut newer = fs::read(snapshot_of(&path)).unwrap();
    // The version follows the 8-byte magic; the checksum is made right again, so only
    // the version can refuse it.
    newer[8..12].copy_from_slice(&2u32.to_le_bytes());
    let body = newer.len() - 4;
    let crc = crc32fast::hash(&newer[..body]);
    newer[body..].copy_from_slice(&crc.to_le_bytes());
    fs::write(snapshot_of(&path), &newer).unwrap();
    assert!(!open_and_compare(&path));
    // Unchanged but for the version, it would have been used.
    newer[8..12].copy_from_slice(&1u32.to_le_bytes());
    let crc = crc32fast::hash(&newer[..body]);
    newer[body..].copy_from_slice(&crc.to_le_bytes());
    fs::write(snapshot_of(&path), &newer).unwrap();
    assert!(open_and_compare(&path));
}

#[cfg(unix)]
#[test]
fn snapshots_are_written_atomically_with_the_store_files_mode() {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let dir = tempfile::tempdir().unwrap();
    let path = filled(dir.path(), "t.jsonl", 20);
    assert_eq!(mode(&snapshot_of(&path)), 0o600);
    let shared = dir.path().join("shared.jsonl");
    let store = JsonlStore::open_with(&shared, options().with_file_mode(0o640)).unwrap();
    store.save(&trace(1)).unwrap();
    drop(store);
    assert_eq!(mode(&snapshot_of(&shared)), mode(&shared));
    let names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|name| !name.ends_with(".tmp")),
        "temporary files left: {names:?}"
    );
}

#[test]
fn read_only_handles_and_small_files_write_no_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.jsonl");
    let store = JsonlStore::open(&path).unwrap();
    store.save(&trace(1)).unwrap();
    drop(store);
    assert!(
        !snapshot_of(&path).exists(),
        "below the default minimum size"
    );
    let reader = JsonlStore::open_with(&path, options().with_read_only(true)).unwrap();
    drop(reader);
    assert!(!snapshot_of(&path).exists(), "a read-only handle wrote one");
}

/// A store loaded from its snapshot holds its list order and postings as sorted vectors
/// until a write comes out of that order; such writes (into the middle, removals from
/// it, and in order again after them) must answer as a store that read the file whole.
#[test]
fn writes_out_of_list_order_after_a_snapshot_open_answer_like_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = filled(dir.path(), "t.jsonl", 3000);
    let store = JsonlStore::open_with(&path, options()).unwrap();
    assert!(store.health().unwrap().index_from_snapshot);
    store.save(&trace(3001)).unwrap();
    store.delete("run-1500").unwrap();
    store
        .save(&trace(10).with_metadata("user_id", "u3"))
        .unwrap();
    let older = Trace::new("run-older")
        .with_created_at(Timestamp::from_micros(500_000).unwrap())
        .with_metadata("user_id", "u3");
    store.save(&older).unwrap();
    store.delete("run-3001").unwrap();
    store.save(&trace(3002)).unwrap();
    let at = |micros: i64| Timestamp::from_micros(micros).unwrap();
    let filters = [
        TraceFilter::new(),
        TraceFilter::new().with_metadata("user_id", "u3"),
        TraceFilter::new()
            .with_since(at(1_000_100))
            .with_until(at(1_002_000)),
        TraceFilter::new()
            .with_metadata("user_id", "u3")
            .with_until(at(1_001_499))
            .with_limit(20)
            .with_offset(5),
    ];
    let answers = |store: &JsonlStore| -> Vec<Vec<TraceSummary>> {
        filters.iter().map(|f| store.query(f).unwrap()).collect()
    };
    let got = answers(&store);
    assert_eq!(got[0].len(), 3000);
    assert_eq!(got[0].last().unwrap().run_id, "run-older");
    let copy = path.with_extension("copy");
    fs::copy(&path, &copy).unwrap();
    let reference = JsonlStore::open_with(&copy, options().without_index_snapshot()).unwrap();
    assert_eq!(got, answers(&reference));
    drop(store);
    // The snapshot written at close, from the trees, loads to the same answers.
    let reopened = JsonlStore::open_with(&path, options()).unwrap();
    assert!(reopened.health().unwrap().index_from_snapshot);
    assert_eq!(got, answers(&reopened));
}
