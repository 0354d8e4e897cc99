//! Several processes on one file: two appending while a third deletes and compacts, and
//! a writer killed with SIGKILL in the middle of writes and compactions.
//!
//! Child processes are this test binary run again with `ROLE_ENV` set, so they use the
//! library exactly as any program would.

use std::collections::{BTreeSet, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use trace_store_conformance::child_trace;
use trace_store_core::{Step, Trace, TraceFilter, TraceStore};
use trace_store_jsonl::{JsonlOptions, JsonlStore};

const ROLE_ENV: &str = "TRACE_STORE_JSONL_TEST_ROLE";
const FILE: &str = "traces.jsonl";

/// Every handle in these tests compacts as soon as dead bytes outweigh live ones.
fn open(dir: &Path) -> JsonlStore {
    JsonlStore::open_with(
        dir.join(FILE),
        JsonlOptions::default().with_auto_compact_min_bytes(0),
    )
    .expect("open")
}

/// A child process and a thread collecting the lines it prints.
struct Worker {
    child: Child,
    lines: JoinHandle<Vec<String>>,
}

impl Worker {
    fn spawn(test: &str, role: &str, dir: &Path, prefix: &str, count: u64) -> Worker {
        let exe = std::env::current_exe().expect("current_exe");
        let mut child = Command::new(exe)
            .args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env(
                ROLE_ENV,
                format!("{role}\t{}\t{prefix}\t{count}", dir.display()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("stdout");
        let lines = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .collect()
        });
        Worker { child, lines }
    }

    /// Waits for a normal exit; panics if the child failed.
    fn finish(mut self) -> Vec<String> {
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "child failed: {status}");
        self.lines.join().expect("reader thread")
    }

    /// SIGKILLs the child, which must still be running, and returns what it printed
    /// before it died.
    fn kill(mut self) -> Vec<String> {
        assert!(
            matches!(self.child.try_wait(), Ok(None)),
            "the child ended before it was killed"
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.lines.join().expect("reader thread")
    }
}

/// The run_ids printed after `tag`. With `--nocapture` the test harness prints
/// `test NAME ... ` right before the first line of the child, so the tag is searched,
/// not expected at the start.
fn ids(lines: &[String], tag: &str) -> Vec<String> {
    lines
        .iter()
        .filter_map(|line| line.split_once(tag))
        .map(|(_, run_id)| run_id.to_owned())
        .collect()
}

/// Runs the child role named in `ROLE_ENV`, if this process is a child of `test`.
fn run_child(test: &str) -> bool {
    let Ok(spec) = std::env::var(ROLE_ENV) else {
        return false;
    };
    let fields: Vec<&str> = spec.split('\t').collect();
    let [role, dir, prefix, count] = fields[..] else {
        panic!("malformed {ROLE_ENV}: {spec:?}");
    };
    let dir = Path::new(dir);
    let count: u64 = count.parse().expect("count");
    match (test, role) {
        ("three_processes_append_delete_and_compact", "append") => append(dir, prefix, count),
        ("three_processes_append_delete_and_compact", "delete") => delete_and_compact(dir),
        ("sigkill_during_writes_and_compactions_loses_no_acknowledged_save", "churn") => {
            churn(dir, prefix)
        }
        _ => return false,
    }
    true
}

fn append(dir: &Path, prefix: &str, count: u64) {
    let store = open(dir);
    for i in 0..count {
        let trace = child_trace(prefix, i);
        store.save(&trace).expect("save");
        println!("ACK {}", trace.run_id);
    }
}

/// Deletes every trace whose number is not a multiple of 3 as soon as it shows up,
/// compacting every ten deletes, until the parent creates `stop` and a last pass found
/// nothing left to delete.
fn delete_and_compact(dir: &Path) {
    let store = open(dir);
    let mut deleted = HashSet::new();
    let mut since_compaction = 0;
    loop {
        let stopping = dir.join("stop").exists();
        let mut found = 0;
        for summary in store.list(usize::MAX, 0).expect("list") {
            if summary.run_id == "before" || deleted.contains(&summary.run_id) {
                continue;
            }
            let number: u64 = summary
                .run_id
                .rsplit('-')
                .next()
                .and_then(|n| n.parse().ok())
                .expect("number");
            if number.is_multiple_of(3) {
                continue;
            }
            assert!(
                store.delete(&summary.run_id).expect("delete"),
                "{} was listed, so delete must find it",
                summary.run_id
            );
            println!("DEL {}", summary.run_id);
            deleted.insert(summary.run_id);
            found += 1;
            since_compaction += 1;
            if since_compaction == 10 {
                store.compact().expect("compact");
                since_compaction = 0;
            }
        }
        if stopping && found == 0 {
            break;
        }
        if found == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

#[test]
fn three_processes_append_delete_and_compact() {
    if run_child("three_processes_append_delete_and_compact") {
        return;
    }
    const EACH: u64 = 150;
    let dir = tempfile::tempdir().expect("tempdir");
    let early = open(dir.path());
    early
        .save(&trace_store_conformance::fixtures::trace("before", 0, 1))
        .expect("save");
    let test = "three_processes_append_delete_and_compact";
    let deleter = Worker::spawn(test, "delete", dir.path(), "", 0);
    let first = Worker::spawn(test, "append", dir.path(), "p1", EACH);
    let second = Worker::spawn(test, "append", dir.path(), "p2", EACH);

    // Meanwhile this process reads through a handle opened before everything started:
    // across other processes' appends, deletes and compactions it never fails, and
    // what it lists loads (unless deleted in between).
    let started = Instant::now();
    let mut reads = 0u64;
    let mut acked = Vec::new();
    let appenders = std::thread::spawn(move || {
        let mut acked = ids(&first.finish(), "ACK ");
        acked.extend(ids(&second.finish(), "ACK "));
        acked
    });
    while !appenders.is_finished() {
        for summary in early.list(25, 0).expect("list during the run") {
            match early.load(&summary.run_id) {
                Ok(trace) => assert_eq!(trace.run_id, summary.run_id),
                Err(error) => assert!(error.is_not_found(), "load failed: {error}"),
            }
        }
        early
            .count(&TraceFilter::new().with_metadata("writer", "p1"))
            .expect("count");
        reads += 1;
    }
    acked.extend(appenders.join().expect("appenders"));
    std::fs::write(dir.path().join("stop"), b"").expect("stop file");
    let deleted: BTreeSet<String> = ids(&deleter.finish(), "DEL ").into_iter().collect();
    eprintln!(
        "{} saves, {} deletes, {reads} read rounds in {:?}",
        acked.len(),
        deleted.len(),
        started.elapsed()
    );
    assert_eq!(acked.len() as u64, 2 * EACH, "every save was acknowledged");

    let expected: BTreeSet<String> = acked
        .iter()
        .filter(|run_id| !deleted.contains(*run_id))
        .cloned()
        .chain(["before".to_owned()])
        .collect();
    assert_eq!(expected.len() as u64, 2 * EACH.div_ceil(3) + 1);
    for store in [early, open(dir.path())] {
        let listed: BTreeSet<String> = store
            .list(usize::MAX, 0)
            .expect("list")
            .into_iter()
            .map(|summary| summary.run_id)
            .collect();
        assert_eq!(listed, expected, "acknowledged saves that were not deleted");
        for run_id in expected.iter().filter(|id| *id != "before") {
            let (prefix, number) = run_id.split_once('-').expect("prefix-number");
            let number: u64 = number.parse().expect("number");
            assert_eq!(
                store.load(run_id).expect("load"),
                child_trace(prefix, number)
            );
        }
        for run_id in &deleted {
            assert!(store.load(run_id).expect_err("deleted").is_not_found());
        }
        let health = store.health().expect("health");
        assert_eq!(health.live_records, expected.len() as u64);
        assert_eq!(
            health.quarantined_lines, 0,
            "no damage from concurrent writers"
        );
    }
}

/// A trace whose line spans many pages, so a kill often lands inside its write.
fn big_trace(prefix: &str, i: u64) -> Trace {
    child_trace(prefix, i).with_step(Step::llm_call("pad").with_output("x".repeat(32 << 10)))
}

/// Saves `keep-i` (acknowledged) and a `junk-i` it deletes right away, then compacts:
/// a kill lands in the middle of saves, deletes and compactions alike.
fn churn(dir: &Path, prefix: &str) {
    let store = open(dir);
    for i in 0.. {
        let keep = big_trace(prefix, i);
        store.save(&keep).expect("save");
        println!("ACK {}", keep.run_id);
        let junk = big_trace(&format!("junk{prefix}"), i);
        store.save(&junk).expect("save junk");
        assert!(store.delete(&junk.run_id).expect("delete junk"));
        store.compact().expect("compact");
    }
}

#[test]
fn sigkill_during_writes_and_compactions_loses_no_acknowledged_save() {
    let test = "sigkill_during_writes_and_compactions_loses_no_acknowledged_save";
    if run_child(test) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(7, |d| d.subsec_nanos() as u64);
    eprintln!("seed {seed}");
    let mut survivors: Vec<(String, u64)> = Vec::new();
    for round in 0..4 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let kill_after = 3 + (seed >> 33) as usize % 30;
        let prefix = format!("c{round}");
        let worker = Worker::spawn(test, "churn", dir.path(), &prefix, 0);
        // Wait for `kill_after` acknowledgements by watching the file grow, then kill.
        let store = open(dir.path());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let saved = store
                .count(&TraceFilter::new().with_metadata("writer", prefix.as_str()))
                .expect("count");
            if saved as usize >= kill_after || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(store);
        let acked = ids(&worker.kill(), "ACK ");
        survivors.extend((0..acked.len() as u64).map(|i| (prefix.clone(), i)));

        let store = open(dir.path());
        for (prefix, i) in &survivors {
            let expected = big_trace(prefix, *i);
            match store.load(&expected.run_id) {
                Ok(loaded) => assert!(loaded == expected, "{} differs", expected.run_id),
                Err(error) => panic!(
                    "acknowledged {} lost after SIGKILL: {error}",
                    expected.run_id
                ),
            }
        }
        let junk = store
            .list(usize::MAX, 0)
            .expect("list")
            .into_iter()
            .filter(|summary| summary.run_id.starts_with(&format!("junk{prefix}-")))
            .count();
        assert!(
            junk <= 1,
            "{junk} junk traces: only the one in flight may remain"
        );
        let health = store.health().expect("health");
        eprintln!(
            "round {round}: killed after {} acks; {} lines quarantined so far; {} abandoned compaction files",
            acked.len(),
            health.quarantined_lines,
            temp_files(dir.path()).len()
        );
        store.compact().expect("compact after the crash");
        let leftovers = temp_files(dir.path());
        assert!(
            leftovers.is_empty(),
            "abandoned compaction files: {leftovers:?}"
        );
    }
}

fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("read_dir")
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect()
}
