//! A user who may read a store but not write it: the read commands work, the write
//! commands fail with one line, and nothing is created or changed. Run as the
//! unprivileged user 65534 through `setpriv`, which needs root (CI runs as root);
//! elsewhere the test says why it skips, and under CI=true it fails instead.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::Sandbox;

/// Runs the CLI as uid/gid 65534 with no supplementary groups.
fn run_as_nobody(binary: &Path, dir: &Path, args: &[&str]) -> common::Output {
    let output = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(binary)
        .args(args)
        .current_dir(dir)
        .env_remove("TRACE_STORE_URL")
        .env("HOME", dir)
        .output()
        .expect("run setpriv");
    common::Output {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| {
            let e = e.expect("entry");
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).expect("read"),
            )
        })
        .collect();
    files.sort();
    files
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn a_store_the_user_may_not_write_is_read_and_exported() {
    let is_root = real_uid() == 0;
    let has_setpriv = Command::new("setpriv").arg("--version").output().is_ok();
    if !(is_root && has_setpriv) {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must run this test as root with setpriv installed"
        );
        eprintln!("skipped: needs root and setpriv to act as an unprivileged user");
        return;
    }
    let sandbox = Sandbox::new();
    // The binary where user 65534 may run it (the build directory may be private).
    let bin_dir = sandbox.path("bin");
    fs::create_dir(&bin_dir).expect("mkdir");
    let binary = bin_dir.join("trace-store");
    fs::copy(env!("CARGO_BIN_EXE_trace-store"), &binary).expect("copy the binary");
    chmod(&binary, 0o755);
    chmod(&bin_dir, 0o755);
    chmod(sandbox.dir.path(), 0o755);
    let work = sandbox.path("work");
    fs::create_dir(&work).expect("mkdir");
    chmod(&work, 0o777);

    for (scheme, name) in [("sqlite", "traces.db"), ("jsonl", "traces.jsonl")] {
        let store_dir = sandbox.path(&format!("{scheme}-store"));
        fs::create_dir(&store_dir).expect("mkdir");
        let url = format!("{scheme}://{}", store_dir.join(name).display());
        sandbox.ok(&["--store", &url, "demo"]);
        // Readable by everyone, writable by no one but root: the file 0444, and for
        // SQLite the directory too (so not even a log could be created beside it).
        for entry in fs::read_dir(&store_dir).expect("read_dir") {
            chmod(&entry.expect("entry").path(), 0o444);
        }
        chmod(&store_dir, if scheme == "sqlite" { 0o555 } else { 0o755 });
        let before = snapshot(&store_dir);

        for args in [
            vec!["list", "--limit", "3"],
            vec!["query", "--status", "error"],
            vec!["stats"],
            vec!["list", "--json"],
        ] {
            let mut full = vec!["--store", url.as_str()];
            full.extend(&args);
            let out = run_as_nobody(&binary, &work, &full);
            assert_eq!(
                out.code, 0,
                "{scheme} {args:?}: {}{}",
                out.stdout, out.stderr
            );
            assert!(!out.stdout.is_empty(), "{scheme} {args:?} printed nothing");
        }
        let first = run_as_nobody(&binary, &work, &["--store", &url, "list", "--json"]);
        let page: common::Page = serde_json::from_str(&first.stdout).expect("list --json");
        let run_id = page.traces[0].run_id.clone();
        let shown = run_as_nobody(&binary, &work, &["--store", &url, "show", &run_id]);
        assert_eq!(shown.code, 0, "{scheme} show: {}", shown.stderr);
        assert!(shown.stdout.contains(&run_id), "{}", shown.stdout);

        let exported = work.join(format!("{scheme}-export.jsonl"));
        let out = run_as_nobody(
            &binary,
            &work,
            &[
                "--store",
                &url,
                "export",
                "-o",
                exported.to_str().expect("utf-8"),
            ],
        );
        assert_eq!(out.code, 0, "{scheme} export: {}", out.stderr);
        let lines = fs::read_to_string(&exported)
            .expect("export")
            .lines()
            .count();
        assert_eq!(lines as u64, page.total, "{scheme}: every trace exported");

        for args in [
            vec!["delete", run_id.as_str()],
            vec!["score", run_id.as_str(), "q", "--value", "1"],
        ] {
            let mut full = vec!["--store", url.as_str()];
            full.extend(&args);
            let out = run_as_nobody(&binary, &work, &full);
            assert_eq!(
                out.code, 2,
                "{scheme} {args:?}: {}{}",
                out.stdout, out.stderr
            );
            common::assert_one_line_error(&out.stderr);
        }
        assert_eq!(
            snapshot(&store_dir),
            before,
            "{scheme}: the store was changed"
        );
        chmod(&store_dir, 0o755);
    }
}

/// The real user id, read from /proc so the test needs no extra dependency.
fn real_uid() -> u32 {
    let status = fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|uid| uid.parse().ok())
        .expect("Uid line")
}
