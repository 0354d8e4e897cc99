//! `export -o` writes like `curl -o` and `sort -o`: into devices, FIFOs, descriptors
//! and through symlinks, replacing only regular files (atomically, keeping mode and
//! owner), never into the store's own file; new files are private.

#![cfg(unix)]

mod common;

use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};

use common::Sandbox;
use trace_store::Trace;

/// A store of three demo runs and its export to standard output.
fn store(sandbox: &Sandbox, scheme: &str, name: &str) -> (String, String) {
    let url = sandbox.url(scheme, name);
    sandbox.ok(&["--store", &url, "demo", "--runs", "3"]);
    let exported = sandbox.ok(&["--store", &url, "export"]);
    let traces = exported
        .lines()
        .map(|line| Trace::from_json_str(line).unwrap());
    assert!(traces.count() >= 3, "{exported}");
    (url, exported)
}

fn run(program: &str, args: &[&str], dir: &Path) -> bool {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .status()
        .is_ok_and(|status| status.success())
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn a_character_device_is_written_into_and_stays_a_device() {
    let sandbox = Sandbox::new();
    let (url, _) = store(&sandbox, "sqlite", "t.db");
    // Our own /dev/null (1, 3) where device nodes can be made; the real one otherwise.
    let device = if run("mknod", &["null", "c", "1", "3"], sandbox.dir.path()) {
        sandbox.path("null")
    } else {
        Path::new("/dev/null").to_path_buf()
    };
    let path = device.to_str().unwrap();
    let said = sandbox.ok(&["--store", &url, "export", "-o", path]);
    assert!(said.starts_with("exported "), "{said}");
    let metadata = fs::symlink_metadata(&device).unwrap();
    assert!(
        metadata.file_type().is_char_device(),
        "{:?}",
        metadata.file_type()
    );
    assert_eq!(metadata.rdev(), fs::metadata("/dev/null").unwrap().rdev());
}

#[test]
fn a_fifo_is_written_into_and_stays_a_fifo() {
    let sandbox = Sandbox::new();
    let (url, exported) = store(&sandbox, "jsonl", "t.jsonl");
    let fifo = sandbox.path("pipe");
    assert!(run("mkfifo", &["pipe"], sandbox.dir.path()), "mkfifo");
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            fs::File::open(fifo)
                .unwrap()
                .read_to_string(&mut text)
                .unwrap();
            text
        })
    };
    // A writer of our own until the export is done, so the reader ends (with what it
    // got) even if the export wrote elsewhere instead of into the FIFO.
    let held = fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    sandbox.ok(&["--store", &url, "export", "-o", "pipe"]);
    drop(held);
    assert_eq!(reader.join().unwrap(), exported);
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
}

#[test]
fn a_symlink_stays_a_symlink_and_its_regular_target_is_replaced() {
    let sandbox = Sandbox::new();
    let (url, exported) = store(&sandbox, "sqlite", "t.db");
    let real = sandbox.path("real.jsonl");
    fs::write(&real, "old contents\n").unwrap();
    fs::set_permissions(&real, fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::symlink("real.jsonl", sandbox.path("link")).unwrap();

    sandbox.ok(&["--store", &url, "export", "-o", "link"]);
    assert_eq!(
        fs::read_link(sandbox.path("link")).unwrap(),
        Path::new("real.jsonl")
    );
    assert_eq!(fs::read_to_string(&real).unwrap(), exported);
    assert_eq!(mode(&real), 0o640);

    // A dangling link: its target is created, the link kept.
    std::os::unix::fs::symlink("made.jsonl", sandbox.path("dangling")).unwrap();
    sandbox.ok(&["--store", &url, "export", "-o", "dangling"]);
    assert!(
        fs::symlink_metadata(sandbox.path("dangling"))
            .unwrap()
            .is_symlink()
    );
    assert_eq!(
        fs::read_to_string(sandbox.path("made.jsonl")).unwrap(),
        exported
    );
    assert_eq!(mode(&sandbox.path("made.jsonl")), 0o600);
}

#[test]
fn descriptors_of_the_process_get_the_data_and_no_report_line() {
    let sandbox = Sandbox::new();
    let (url, exported) = store(&sandbox, "sqlite", "t.db");
    // The child's /proc/self/fd/1 is its standard output, a pipe to this test.
    std::os::unix::fs::symlink("/proc/self/fd/1", sandbox.path("out")).unwrap();
    for target in ["out", "/dev/stdout", "-"] {
        let printed = sandbox.ok(&["--store", &url, "export", "-o", target]);
        assert_eq!(printed, exported, "-o {target}");
    }
    assert_eq!(
        fs::read_link(sandbox.path("out")).unwrap(),
        Path::new("/proc/self/fd/1")
    );
}

#[test]
fn a_regular_file_is_replaced_keeping_mode_and_owner() {
    let sandbox = Sandbox::new();
    let (url, exported) = store(&sandbox, "sqlite", "t.db");
    let kept = sandbox.path("kept.jsonl");
    fs::write(&kept, "old\n").unwrap();
    fs::set_permissions(&kept, fs::Permissions::from_mode(0o640)).unwrap();
    // Someone else's file (nobody's): only root can give a new file that owner.
    let chowned = std::os::unix::fs::chown(&kept, Some(65534), Some(65534)).is_ok();
    if !chowned {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI runs as root and must check the owner"
        );
    }
    let inode = fs::metadata(&kept).unwrap().ino();

    sandbox.ok(&["--store", &url, "export", "-o", "kept.jsonl"]);
    let metadata = fs::metadata(&kept).unwrap();
    assert_eq!(fs::read_to_string(&kept).unwrap(), exported);
    assert_eq!(mode(&kept), 0o640);
    assert_ne!(
        metadata.ino(),
        inode,
        "replaced by rename, not rewritten in place"
    );
    if chowned {
        assert_eq!((metadata.uid(), metadata.gid()), (65534, 65534));
    }
    let leftovers: Vec<_> = fs::read_dir(sandbox.dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn new_files_are_private_unless_a_mode_is_given() {
    let sandbox = Sandbox::new();
    let (url, _) = store(&sandbox, "sqlite", "t.db");
    sandbox.ok(&["--store", &url, "export", "-o", "private.jsonl"]);
    assert_eq!(mode(&sandbox.path("private.jsonl")), 0o600);
    sandbox.ok(&[
        "--store",
        &url,
        "export",
        "-o",
        "shared.jsonl",
        "--mode",
        "644",
    ]);
    assert_eq!(mode(&sandbox.path("shared.jsonl")), 0o644);
    let message = sandbox.fails(&["--store", &url, "export", "-o", "x", "--mode", "rw"], 2);
    assert!(message.contains("octal"), "{message}");
}

#[test]
fn a_missing_directory_is_named() {
    let sandbox = Sandbox::new();
    let (url, _) = store(&sandbox, "sqlite", "t.db");
    let message = sandbox.fails(&["--store", &url, "export", "-o", "no/such/out.jsonl"], 2);
    assert_eq!(
        message,
        "trace-store: cannot write no/such/out.jsonl: directory no/such does not exist"
    );
    let message = sandbox.fails(&["--store", &url, "export", "-o", "."], 2);
    assert!(message.contains("is a directory"), "{message}");
}

#[test]
fn the_stores_own_file_is_refused_by_identity() {
    let sandbox = Sandbox::new();
    fs::create_dir(sandbox.path("sub")).unwrap();
    for (scheme, name) in [("sqlite", "t.db"), ("jsonl", "t.jsonl")] {
        let (url, _) = store(&sandbox, scheme, name);
        let file = sandbox.path(name);
        let link = format!("link-{name}");
        std::os::unix::fs::symlink(&file, sandbox.path(&link)).unwrap();
        let before = fs::read(&file).unwrap();
        let absolute = file.to_str().unwrap().to_owned();
        let roundabout = format!("sub/../{name}");
        for target in [name, &absolute, &roundabout, &link] {
            let message = sandbox.fails(&["--store", &url, "export", "-o", target], 2);
            assert!(
                message.contains("is a file of the store being exported"),
                "{target}: {message}"
            );
            assert_eq!(fs::read(&file).unwrap(), before, "{scheme} store touched");
        }
        // Standard output appending to the store: the same file, refused too.
        let append = fs::OpenOptions::new().append(true).open(&file).unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_trace-store"))
            .args(["--store", &url, "export"])
            .current_dir(sandbox.dir.path())
            .stdin(Stdio::null())
            .stdout(append)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{scheme}");
        common::assert_one_line_error(&String::from_utf8_lossy(&output.stderr));
        assert_eq!(fs::read(&file).unwrap(), before, "{scheme} store touched");
    }
}
