//! Limits and file hygiene: bounded memory on lines with no end, non-regular files
//! refused, a lock wait that ends, files private by default and kept so by compaction,
//! abandoned compaction files cleaned up at open.
#![cfg(target_os = "linux")]

use std::fs;
use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use trace_store_conformance::child_trace;
use trace_store_core::{Error, TraceFilter, TraceStore};
use trace_store_jsonl::{DEFAULT_MAX_RECORD_BYTES, JsonlOptions, JsonlStore};

/// A field of `/proc/self/status`, in KiB.
fn status_kib(field: &str) -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn a_gigabyte_without_a_newline_is_quarantined_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.jsonl");
    let sparse = fs::File::create(&path).unwrap();
    sparse.set_len(1 << 30).unwrap();
    drop(sparse);
    // Peak resident memory: what reading the whole line into memory would raise by 1 GiB.
    let rss_before = status_kib("VmRSS:");
    let store = JsonlStore::open(&path).unwrap();
    let peak_growth_mib = status_kib("VmHWM:").saturating_sub(rss_before) / 1024;
    eprintln!("peak memory growth while opening: {peak_growth_mib} MiB");
    assert!(
        peak_growth_mib < (DEFAULT_MAX_RECORD_BYTES >> 20) + 32,
        "opening took {peak_growth_mib} MiB more memory at its peak"
    );
    let health = store.health().unwrap();
    assert_eq!((health.file_bytes, health.live_records), (0, 0));
    assert_eq!(health.quarantined_lines, 1);
    let entry: serde_json::Value =
        serde_json::from_str(fs::read_to_string(&health.corrupt_path).unwrap().trim()).unwrap();
    assert_eq!(entry["length"], 1u64 << 30);
    assert_eq!(entry["zeros"], true);
    store.save(&child_trace("after", 0)).unwrap();
    assert_eq!(store.count(&TraceFilter::new()).unwrap(), 1);
}

#[test]
fn a_line_over_the_maximum_record_size_is_streamed_out_and_the_records_around_it_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.jsonl");
    let options = JsonlOptions::default().with_max_record_bytes(64 << 10);
    {
        let store = JsonlStore::open_with(&path, options.clone()).unwrap();
        store.save(&child_trace("a", 0)).unwrap();
    }
    // 200 KiB of text with a multi-byte character on every piece boundary's side.
    let long: String = "é\"x".repeat((200 << 10) / 4);
    let mut bytes = fs::read(&path).unwrap();
    bytes.extend_from_slice(long.as_bytes());
    bytes.push(b'\n');
    fs::write(&path, &bytes).unwrap();
    let store = JsonlStore::open_with(&path, options.clone()).unwrap();
    store.save(&child_trace("b", 1)).unwrap();
    assert_eq!(store.count(&TraceFilter::new()).unwrap(), 2);
    let health = store.health().unwrap();
    assert_eq!(health.quarantined_lines, 1);
    let entry: serde_json::Value =
        serde_json::from_str(fs::read_to_string(&health.corrupt_path).unwrap().trim()).unwrap();
    assert_eq!(entry["text"].as_str(), Some(long.as_str()));
    assert_eq!(entry["length"], long.len());
    // A record longer than the maximum (written with a larger one) is moved out too,
    // though it fits in one read: the maximum, not the read size, decides.
    let wide = JsonlStore::open_with(&path, JsonlOptions::default()).unwrap();
    let big = child_trace("big", 2).with_metadata("blob", "y".repeat(100 << 10));
    wide.save(&big).unwrap();
    drop(wide);
    let reopened = JsonlStore::open_with(&path, options).unwrap();
    assert_eq!(reopened.count(&TraceFilter::new()).unwrap(), 2);
    assert_eq!(reopened.health().unwrap().quarantined_lines, 2);
    // Nothing longer than the maximum is written either.
    let error = store.save(&big).unwrap_err();
    assert!(matches!(error, Error::InvalidInput { .. }), "{error}");
    assert!(error.to_string().contains("max_record_bytes"), "{error}");
    assert_eq!(store.count(&TraceFilter::new()).unwrap(), 2);
}

#[test]
fn non_regular_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.jsonl");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    for (path, kind) in [
        (Path::new("/dev/zero"), "character device"),
        (&fifo, "FIFO"),
        (dir.path(), "directory"),
    ] {
        for read_only in [false, true] {
            let options = JsonlOptions::default().with_read_only(read_only);
            let error = JsonlStore::open_with(path, options).unwrap_err();
            assert!(matches!(error, Error::InvalidInput { .. }), "{error}");
            let message = error.to_string();
            assert!(message.contains(kind) && message.contains(&*path.to_string_lossy()));
        }
    }
}

#[test]
fn a_write_gives_up_on_a_lock_held_by_another_process_with_a_retryable_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.jsonl");
    let timeout = Duration::from_millis(500);
    let store =
        JsonlStore::open_with(&path, JsonlOptions::default().with_lock_timeout(timeout)).unwrap();
    // One process holds the lock, flock(1) style, so killing it releases the lock.
    let mut holder = Command::new("sh")
        .args([
            "-c",
            "exec 9>>\"$0\"; flock --exclusive 9; echo locked; exec sleep 60",
        ])
        .arg(&path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");
    let (sender, receiver) = std::sync::mpsc::channel();
    let started = Instant::now();
    std::thread::spawn(move || {
        let _ = sender.send(store.save(&child_trace("a", 0)).map(|_| store));
    });
    let outcome = receiver.recv_timeout(timeout + Duration::from_secs(1));
    let _ = holder.kill();
    let _ = holder.wait();
    let error = match outcome {
        Ok(Err(error)) => error,
        Ok(Ok(_)) => panic!("saved although another process holds the lock"),
        Err(_) => panic!("still waiting for the lock after {:?}", started.elapsed()),
    };
    assert!(error.is_retryable(), "{error}");
    assert!(matches!(
        error,
        Error::Backend {
            backend: "jsonl",
            ..
        }
    ));
    assert!(
        error.to_string().contains(&*path.to_string_lossy()),
        "{error}"
    );
    // Nothing was written, and the store works once the lock is free.
    assert_eq!(fs::metadata(&path).unwrap().len(), 0);
    let store = JsonlStore::open(&path).unwrap();
    store.save(&child_trace("a", 0)).unwrap();
}

#[test]
fn compaction_keeps_the_owner_group_and_mode_of_the_file() {
    // chown to another user needs root; the suite's CI runs as root.
    if rustix::process::geteuid().as_raw() != 0 {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI must run as root"
        );
        eprintln!("skipped: not root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.jsonl");
    let store = JsonlStore::open(&path).unwrap();
    store.save(&child_trace("a", 0)).unwrap();
    store.save(&child_trace("a", 0)).unwrap();
    std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    let inode = fs::metadata(&path).unwrap().ino();
    store.compact().unwrap();
    let after = fs::metadata(&path).unwrap();
    assert_ne!(after.ino(), inode, "not rewritten");
    assert_eq!((after.uid(), after.gid()), (65534, 65534));
    assert_eq!(after.permissions().mode() & 0o7777, 0o640);
    assert_eq!(store.count(&TraceFilter::new()).unwrap(), 1);
}

#[test]
fn store_and_corrupt_files_are_private_unless_widened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.jsonl");
    fs::write(&path, b"").unwrap();
    fs::remove_file(&path).unwrap();
    let store = JsonlStore::open(&path).unwrap();
    store.save(&child_trace("a", 0)).unwrap();
    assert_eq!(mode(&path), 0o600);
    drop(store);
    // A torn last line, moved to the .corrupt file at the next open.
    let mut bytes = fs::read(&path).unwrap();
    bytes.extend_from_slice(b"{\"run_id\":\"torn");
    fs::write(&path, &bytes).unwrap();
    let store = JsonlStore::open(&path).unwrap();
    let health = store.health().unwrap();
    assert_eq!(health.quarantined_lines, 1);
    assert_eq!(mode(&health.corrupt_path), 0o600);
    // Compaction copies the mode of the file it replaces.
    store.compact().unwrap();
    assert_eq!(mode(&path), 0o600);

    let wide = dir.path().join("wide.jsonl");
    let options = JsonlOptions::default().with_file_mode(0o640);
    JsonlStore::open_with(&wide, options).unwrap();
    assert_eq!(mode(&wide), 0o640 & !umask());
}

/// The process's umask (read without changing it).
fn umask() -> u32 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Umask:")).unwrap();
    u32::from_str_radix(line.split_whitespace().nth(1).unwrap(), 8).unwrap()
}

#[test]
fn open_removes_compaction_files_of_dead_processes_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.jsonl");
    JsonlStore::open(&path).unwrap();
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let abandoned = dir
        .path()
        .join(format!(".t.jsonl.compact-{dead}-Ab12Cd.tmp"));
    let parent = std::os::unix::process::parent_id();
    let live = [
        dir.path()
            .join(format!(".t.jsonl.compact-{parent}-Ef34Gh.tmp")),
        dir.path().join(".t.jsonl.compact-1-Ij56Kl.tmp"),
        dir.path().join(format!(
            ".t.jsonl.compact-{}-Mn78Op.tmp",
            std::process::id()
        )),
    ];
    let other_store = dir
        .path()
        .join(format!(".u.jsonl.compact-{dead}-Qr90St.tmp"));
    for file in live.iter().chain([&abandoned, &other_store]) {
        fs::write(file, b"half a compaction").unwrap();
    }
    let store = JsonlStore::open(&path).unwrap();
    assert!(
        !abandoned.exists(),
        "the dead process's file is still there"
    );
    for file in live.iter().chain([&other_store]) {
        assert!(file.exists(), "{} was removed", file.display());
    }
    // Read-only handles change nothing.
    drop(store);
    fs::write(&abandoned, b"again").unwrap();
    JsonlStore::open_with(&path, JsonlOptions::default().with_read_only(true)).unwrap();
    assert!(abandoned.exists());
}
