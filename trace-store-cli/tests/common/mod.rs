//! Running the built `trace-store` binary in a temporary directory.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use trace_store::{Trace, TraceFilter, TraceStore, TraceStoreExt, TraceSummary};

pub const SELECTOOLS_SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../testdata/selectools-200.jsonl"
);

/// What one run of the binary did.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// The `--json` output of `list` and `query`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    pub traces: Vec<TraceSummary>,
    pub next: Option<String>,
    pub total: u64,
}

/// A temporary working directory with helpers to run the CLI in it.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A store URL for a file in the sandbox: `sqlite://<dir>/<name>`.
    pub fn url(&self, scheme: &str, name: &str) -> String {
        format!("{scheme}://{}", self.path(name).display())
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[], None)
    }

    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&Path>) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_trace-store"));
        command
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("TRACE_STORE_URL")
            .env_remove("CLICOLOR_FORCE")
            .env_remove("CLICOLOR")
            .env_remove("NO_COLOR")
            .stdin(match stdin {
                Some(path) => Stdio::from(std::fs::File::open(path).expect("stdin file")),
                None => Stdio::null(),
            });
        for (key, value) in env {
            command.env(key, value);
        }
        let output = command.output().expect("run trace-store");
        Output {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8(output.stdout).expect("utf-8 stdout"),
            stderr: String::from_utf8(output.stderr).expect("utf-8 stderr"),
        }
    }

    /// Runs and requires success; returns standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(out.code, 0, "{args:?} failed: {}{}", out.stdout, out.stderr);
        assert_no_crash(&out.stderr);
        out.stdout
    }

    /// Runs and requires exit `code` with one line on standard error; returns it.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        assert_eq!(
            out.code, code,
            "{args:?}: stdout {:?} stderr {:?}",
            out.stdout, out.stderr
        );
        assert_one_line_error(&out.stderr);
        out.stderr.trim_end().to_owned()
    }

    /// Runs with `--json` and parses standard output.
    pub fn json<T: serde::de::DeserializeOwned>(&self, args: &[&str]) -> T {
        let mut args = args.to_vec();
        args.push("--json");
        let stdout = self.ok(&args);
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout}"))
    }

    /// `--json query` with these arguments: the traces of the page.
    pub fn query(&self, store: &str, filters: &[&str]) -> Vec<TraceSummary> {
        self.query_page(store, filters).traces
    }

    /// `--json query` with these arguments: the whole page.
    pub fn query_page(&self, store: &str, filters: &[&str]) -> Page {
        let mut args = vec!["--store", store, "query"];
        args.extend_from_slice(filters);
        self.json(&args)
    }
}

pub fn assert_no_crash(stderr: &str) {
    for bad in [
        "panicked",
        "RUST_BACKTRACE",
        "Backend {",
        "InvalidInput {",
        "Os {",
    ] {
        assert!(
            !stderr.contains(bad),
            "crash or Debug dump on stderr: {stderr}"
        );
    }
}

pub fn assert_one_line_error(stderr: &str) {
    assert_no_crash(stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "expected one line on stderr, got {stderr:?}"
    );
    assert!(lines[0].starts_with("trace-store: "), "{stderr:?}");
}

/// Every trace of a store, by run_id, through the library.
pub fn load_all(url: &str) -> Vec<Trace> {
    let store = trace_store::open(url).expect("open store");
    let mut traces: Vec<Trace> = store
        .iter_summaries(TraceFilter::new(), 500)
        .map(|summary| store.load(&summary.expect("summary").run_id).expect("load"))
        .collect();
    traces.sort_by(|a, b| a.run_id.cmp(&b.run_id));
    traces
}

pub fn run_ids(summaries: &[TraceSummary]) -> Vec<&str> {
    summaries.iter().map(|s| s.run_id.as_str()).collect()
}
