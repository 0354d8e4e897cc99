//! Child processes for the cross-process cases: the test binary re-runs one of its own
//! tests with an environment variable that turns it into a writer.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};

use serde_json::json;
use trace_store_core::{Step, Trace, TraceStore};

use crate::fixtures::at;

const CHILD_ENV: &str = "TRACE_STORE_CONFORMANCE_CHILD";
const ACK: &str = "TRACE_STORE_ACK ";

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

/// If this process was started as a child for `module`/`case`, does the child's work
/// and returns true.
pub(crate) fn run_if_child(
    module: &str,
    case: &str,
    open: &dyn Fn(&Path) -> Box<dyn TraceStore>,
) -> bool {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return false;
    };
    let fields: Vec<&str> = spec.split('\t').collect();
    let [m, c, dir, prefix, count] = fields[..] else {
        panic!("malformed {CHILD_ENV}: {spec:?}");
    };
    if m != module || c != case {
        return false;
    }
    let count: u64 = count.parse().unwrap_or(0);
    let store = open(Path::new(dir));
    let mut stdout = std::io::stdout().lock();
    let mut i = 0;
    while count == 0 || i < count {
        let trace = child_trace(prefix, i);
        if let Err(error) = store.save(&trace) {
            panic!("child {prefix}: save of {} failed: {error}", trace.run_id);
        }
        // The parent may have stopped reading; a failed write ends the child.
        if writeln!(stdout, "{ACK}{}", trace.run_id)
            .and_then(|()| stdout.flush())
            .is_err()
        {
            break;
        }
        i += 1;
    }
    true
}

/// The run_id an acknowledgement line carries. The test harness prints `test NAME ... `
/// without a newline before the test body runs, so the first acknowledgement shares its
/// line: look for the marker anywhere in the line, not only at its start.
fn acked_run_id(line: &str) -> Option<&str> {
    line.split_once(ACK).map(|(_, run_id)| run_id)
}

/// A running child process and the acknowledgements it printed so far.
#[derive(Debug)]
pub struct ChildWriter {
    child: Child,
    lines: std::io::Lines<BufReader<ChildStdout>>,
    /// run_ids whose `save` returned Ok in the child, in order.
    pub acked: Vec<String>,
}

impl ChildWriter {
    pub(crate) fn spawn(
        module: &str,
        case: &str,
        dir: &Path,
        prefix: &str,
        count: u64,
    ) -> ChildWriter {
        let test_path = match module.split_once("::") {
            Some((_crate, rest)) => format!("{rest}::{case}"),
            None => case.to_owned(),
        };
        let exe = std::env::current_exe().unwrap_or_else(|e| panic!("no current_exe: {e}"));
        let spec = format!("{module}\t{case}\t{}\t{prefix}\t{count}", dir.display());
        let mut child = Command::new(exe)
            .args([
                test_path.as_str(),
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, spec)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start child process: {e}"));
        let Some(stdout) = child.stdout.take() else {
            panic!("child has no stdout");
        };
        ChildWriter {
            child,
            lines: BufReader::new(stdout).lines(),
            acked: Vec::new(),
        }
    }

    /// Reads until `n` acknowledgements arrived in total; false if the child ended first.
    pub fn wait_for_acks(&mut self, n: usize) -> bool {
        while self.acked.len() < n {
            match self.lines.next() {
                Some(Ok(line)) => {
                    if let Some(run_id) = acked_run_id(&line) {
                        self.acked.push(run_id.to_owned());
                    }
                }
                _ => return false,
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
        self.acked
    }

    /// Waits for a child with a fixed count to finish; panics if it failed.
    pub fn finish(mut self) -> Vec<String> {
        self.drain();
        match self.child.wait() {
            Ok(status) if status.success() => self.acked,
            other => panic!("child writer failed: {other:?}"),
        }
    }

    fn drain(&mut self) {
        for line in self.lines.by_ref().map_while(Result::ok) {
            if let Some(run_id) = acked_run_id(&line) {
                self.acked.push(run_id.to_owned());
            }
        }
    }
}
