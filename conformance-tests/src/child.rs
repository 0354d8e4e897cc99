//! Child processes for the cross-process cases: the test binary re-runs one of its own
//! tests with an environment variable that turns it into a writer.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::json;
use trace_store_core::{Step, Trace, TraceStore};

use crate::fixtures::at;

/// `module \t case \t prefix \t count \t mode` of the writer a child should be.
const CHILD_ENV: &str = "TRACE_STORE_CONFORMANCE_CHILD";
/// The store's directory, apart from the rest so that any path (tabs, non-UTF-8) works.
const CHILD_DIR_ENV: &str = "TRACE_STORE_CONFORMANCE_CHILD_DIR";
const STARTED: &str = "TRACE_STORE_CHILD_STARTED";
const ACK: &str = "TRACE_STORE_ACK ";

/// How long a child may go without an acknowledgement, or take to finish, before the
/// case fails: a stuck child (a deadlock on a lock the parent holds, say) must fail the
/// test with a message, not hang CI.
const PATIENCE: Duration = Duration::from_secs(120);

/// The trace a child saves as its `i`-th: deterministic, so the parent can rebuild it,
/// and a few KiB large, so a kill often lands in the middle of a write.
pub fn child_trace(prefix: &str, i: u64) -> Trace {
    let payload = format!("{prefix}-{i}-").repeat(200 + (i as usize * 37) % 400);
    Trace::new(format!("{prefix}-{i:06}"))
        .with_created_at(at(i as i64))
        .with_metadata("writer", prefix)
        .with_metadata("i", i)
        .with_step(Step::llm_call("m").with_usage(i, 1).with_output(payload))
        .with_step(Step::tool_call("t").with_input(json!({"i": i})))
}

/// The run_id every merging child merges into.
pub const MERGED_RUN_ID: &str = "merged-by-children";

/// The part a merging child merges as its `i`-th: one step with an id no other part
/// has, and a metadata key of its own whose last value is `i`.
pub fn child_merge_part(prefix: &str, i: u64) -> Trace {
    Trace::new(MERGED_RUN_ID)
        .with_created_at(at(1_000 + i as i64))
        .with_metadata(prefix, i)
        .with_step(
            Step::llm_call("m")
                .with_id(format!("{prefix}-{i:06}"))
                .with_usage(1, 1),
        )
}

/// What a child process does with its store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChildMode {
    /// Saves [`child_trace`]s.
    Save,
    /// Merges [`child_merge_part`]s into [`MERGED_RUN_ID`].
    Merge,
}

impl ChildMode {
    fn as_str(self) -> &'static str {
        match self {
            ChildMode::Save => "save",
            ChildMode::Merge => "merge",
        }
    }
}

/// If this process was started as a child for `module`/`case`, does the child's work
/// and returns true.
pub(crate) fn run_if_child(
    module: &str,
    case: &str,
    open: &dyn Fn(&Path) -> Box<dyn TraceStore>,
) -> bool {
    let (Ok(spec), Some(dir)) = (std::env::var(CHILD_ENV), std::env::var_os(CHILD_DIR_ENV)) else {
        return false;
    };
    let fields: Vec<&str> = spec.split('\t').collect();
    let [m, c, prefix, count, mode] = fields[..] else {
        panic!("malformed {CHILD_ENV}: {spec:?}");
    };
    if m != module || c != case {
        return false;
    }
    let count: u64 = count
        .parse()
        .unwrap_or_else(|_| panic!("malformed count in {CHILD_ENV}: {spec:?}"));
    let mut stdout = std::io::stdout().lock();
    // Tells the parent this test exists and runs, before anything can go wrong.
    let _ = writeln!(stdout, "{STARTED}").and_then(|()| stdout.flush());
    let store = open(Path::new(&dir));
    let mut i = 0;
    while count == 0 || i < count {
        let acked = if mode == ChildMode::Merge.as_str() {
            let part = child_merge_part(prefix, i);
            if let Err(error) = store.merge(&part) {
                panic!("child {prefix}: merge of part {i} failed: {error}");
            }
            part.steps[0].id.clone().unwrap_or_default()
        } else {
            let trace = child_trace(prefix, i);
            if let Err(error) = store.save(&trace) {
                panic!("child {prefix}: save of {} failed: {error}", trace.run_id);
            }
            trace.run_id
        };
        // The parent may have stopped reading; a failed write ends the child.
        if writeln!(stdout, "{ACK}{acked}")
            .and_then(|()| stdout.flush())
            .is_err()
        {
            break;
        }
        i += 1;
    }
    true
}

/// What the child said on stdout that matters to the parent.
#[derive(Debug)]
enum Said {
    Started,
    Acked(String),
}

/// The test harness prints `test NAME ... ` without a newline before the test body
/// runs, so a marker may share its line: look for it anywhere in the line. Anything
/// else the child prints, valid UTF-8 or not, is ignored.
fn read_markers(stdout: ChildStdout, said: std::sync::mpsc::Sender<Said>) {
    let mut reader = BufReader::new(stdout);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\n', '\r']);
        let message = if let Some((_, run_id)) = text.split_once(ACK) {
            Said::Acked(run_id.to_owned())
        } else if text.contains(STARTED) {
            Said::Started
        } else {
            continue;
        };
        if said.send(message).is_err() {
            return;
        }
    }
}

/// A running child process and the acknowledgements it printed so far.
///
/// Dropping it kills the child, so a failing case never leaves a writer behind.
#[derive(Debug)]
pub struct ChildWriter {
    child: Child,
    said: Receiver<Said>,
    test: String,
    started: bool,
    /// run_ids whose `save` returned Ok in the child, in order (for a merging child,
    /// the step ids of the parts whose `merge` returned Ok).
    pub acked: Vec<String>,
}

impl ChildWriter {
    pub(crate) fn spawn(
        module: &str,
        case: &str,
        dir: &Path,
        prefix: &str,
        count: u64,
        mode: ChildMode,
    ) -> ChildWriter {
        let test = match module.split_once("::") {
            Some((_crate, rest)) => format!("{rest}::{case}"),
            None => case.to_owned(),
        };
        let exe = std::env::current_exe().unwrap_or_else(|e| panic!("no current_exe: {e}"));
        let mut child = Command::new(exe)
            .args([test.as_str(), "--exact", "--nocapture", "--test-threads=1"])
            .env(
                CHILD_ENV,
                format!("{module}\t{case}\t{prefix}\t{count}\t{}", mode.as_str()),
            )
            .env(CHILD_DIR_ENV, dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the child process for {test}: {e}"));
        let Some(stdout) = child.stdout.take() else {
            panic!("child has no stdout");
        };
        let (tell, said) = channel();
        std::thread::spawn(move || read_markers(stdout, tell));
        ChildWriter {
            child,
            said,
            test,
            started: false,
            acked: Vec::new(),
        }
    }

    fn note(&mut self, said: Said) {
        match said {
            Said::Started => self.started = true,
            Said::Acked(run_id) => self.acked.push(run_id),
        }
    }

    /// Reads until `n` acknowledgements arrived in total; false if the child ended first.
    /// Panics if the child goes 120 s without acknowledging a save.
    pub fn wait_for_acks(&mut self, n: usize) -> bool {
        while self.acked.len() < n {
            match self.said.recv_timeout(PATIENCE) {
                Ok(said) => self.note(said),
                Err(RecvTimeoutError::Timeout) => panic!(
                    "child writer {} acknowledged {} of {n} saves, then nothing for {PATIENCE:?}",
                    self.test,
                    self.acked.len()
                ),
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.wait_with_patience();
                    self.check_started(status);
                    return false;
                }
            }
        }
        true
    }

    /// SIGKILLs the child (on Unix `Child::kill` sends SIGKILL), then collects every
    /// acknowledgement it printed before dying.
    pub fn kill(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.drain();
        std::mem::take(&mut self.acked)
    }

    /// Waits for a child with a fixed count to finish; panics if it failed or takes
    /// longer than 120 s.
    pub fn finish(mut self) -> Vec<String> {
        let status = self.wait_with_patience();
        self.drain();
        self.check_started(status);
        assert!(
            status.success(),
            "child writer {} failed ({status}); its panic message is above",
            self.test
        );
        std::mem::take(&mut self.acked)
    }

    fn wait_with_patience(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Ok(None) => panic!(
                    "child writer {} did not finish within {PATIENCE:?}",
                    self.test
                ),
                Err(error) => panic!("cannot wait for child writer {}: {error}", self.test),
            }
        }
    }

    /// Reads what a finished child printed; bounded, in case a grandchild holds the
    /// pipe open.
    fn drain(&mut self) {
        let deadline = Instant::now() + PATIENCE;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.said.recv_timeout(left) {
                Ok(said) => self.note(said),
                Err(_) => return,
            }
        }
    }

    /// A child that never reached the case ran no test: the test binary has no test of
    /// that name, which is a harness problem, not a store failure, and says so.
    fn check_started(&self, status: ExitStatus) {
        assert!(
            self.started,
            "the child process ran no test named {:?} ({status}). \
             `conformance_tests!` must be invoked at module level, directly in a test \
             target, so that each case is a test of that exact name",
            self.test
        );
    }
}

impl Drop for ChildWriter {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
