//! The selectools workload: its traces (imported through `trace-store-interop`) and the
//! operation plan that says what to run against them.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use serde::Deserialize;
use trace_store::{Timestamp, Trace};

use crate::BenchResult;

/// `plan.json`, as the Python workload generator writes it.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Plan {
    /// One `metadata.user_id` query per entry.
    pub(crate) query_users: Vec<String>,
    /// RFC 3339 lower bound of the since+min_steps query.
    pub(crate) since: String,
    pub(crate) min_steps: usize,
    pub(crate) load_ids: Vec<String>,
    pub(crate) delete_ids: Vec<String>,
    /// Traces in the workload file.
    pub(crate) n: usize,
    pub(crate) reps: Reps,
}

/// How often each read operation is repeated.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Reps {
    pub(crate) list_50: usize,
    pub(crate) query_user: usize,
    pub(crate) query_since_minsteps: usize,
    pub(crate) load: usize,
    pub(crate) delete: usize,
}

/// The row counts published with the full 10k workload: the first five
/// user queries and the since query. A replay that does not reproduce them is not
/// replaying selectools' workload.
pub(crate) const EXPECTED_10K_USER_ROWS: [usize; 5] = [119, 102, 99, 107, 115];
pub(crate) const EXPECTED_10K_SINCE_ROWS: usize = 4952;

/// Traces and the operations to run on them, adapted to `--n`.
#[derive(Debug)]
pub(crate) struct Workload {
    /// Where the traces came from, for the report.
    pub(crate) source: PathBuf,
    pub(crate) plan: Plan,
    /// Imported traces, in file order (the order of the one-by-one saves).
    pub(crate) traces: Vec<Trace>,
    pub(crate) since: Timestamp,
    /// `plan.load_ids`, or with `--n` below the plan's size, ids that exist.
    pub(crate) load_ids: Vec<String>,
    /// `plan.delete_ids`, or with `--n` below the plan's size, ids that exist.
    pub(crate) delete_ids: Vec<String>,
    /// True when every trace of the plan was imported, so the plan's ids and the
    /// expected row counts apply unchanged.
    pub(crate) complete: bool,
}

impl Workload {
    /// The workload in `dir`: `plan.json` and `traces.jsonl.gz` (or `traces.jsonl`).
    pub(crate) fn from_dir(dir: &Path, n: Option<usize>) -> BenchResult<Workload> {
        let gz = dir.join("traces.jsonl.gz");
        let traces = if gz.exists() {
            gz
        } else {
            dir.join("traces.jsonl")
        };
        Workload::from_files(&traces, &dir.join("plan.json"), n)
    }

    /// The workload in two explicit files; `.gz` traces are decompressed on the fly.
    pub(crate) fn from_files(
        traces_path: &Path,
        plan_path: &Path,
        n: Option<usize>,
    ) -> BenchResult<Workload> {
        let plan_bytes = std::fs::read(plan_path)
            .map_err(|e| format!("cannot read the plan {}: {e}", plan_path.display()))?;
        let plan: Plan = serde_json::from_slice(&plan_bytes)
            .map_err(|e| format!("{} is not a workload plan: {e}", plan_path.display()))?;
        let since: Timestamp = plan.since.parse()?;
        let want = n.unwrap_or(plan.n);
        if want == 0 {
            return Err("--n must be at least 1".into());
        }
        let traces = read_traces(traces_path, want)?;
        if traces.len() < want {
            return Err(format!(
                "{} holds {} traces, fewer than the {want} asked for",
                traces_path.display(),
                traces.len()
            )
            .into());
        }
        let complete = traces.len() == plan.n;
        let (load_ids, delete_ids) = if complete {
            (plan.load_ids.clone(), plan.delete_ids.clone())
        } else {
            adapt_ids(&plan, &traces)
        };
        Ok(Workload {
            source: std::fs::canonicalize(traces_path)
                .unwrap_or_else(|_| traces_path.to_path_buf()),
            plan,
            traces,
            since,
            load_ids,
            delete_ids,
            complete,
        })
    }

    /// True when the plan is the shared 10k one, whose row counts were published with it.
    pub(crate) fn is_full_10k(&self) -> bool {
        self.complete && self.plan.n == 10_000
    }

    /// The serialized bodies every backend and baseline stores: the same bytes for all.
    pub(crate) fn bodies(&self) -> BenchResult<Vec<Vec<u8>>> {
        Ok(self
            .traces
            .iter()
            .map(Trace::to_json_vec)
            .collect::<Result<_, _>>()?)
    }
}

/// Reads at most `limit` workload lines, skipping blank ones, each through
/// `trace_store_interop::selectools::trace_from_line` (which takes `created_at` from
/// the `{created_at, trace}` line, not from the trace).
fn read_traces(path: &Path, limit: usize) -> BenchResult<Vec<Trace>> {
    let file = File::open(path)
        .map_err(|e| format!("cannot open the workload {}: {e}", path.display()))?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|ext| ext == "gz") {
        Box::new(GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut reader = BufReader::with_capacity(1 << 20, reader);
    let mut traces = Vec::with_capacity(limit.min(1 << 20));
    let mut line = Vec::new();
    let mut line_no = 0usize;
    while traces.len() < limit {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("{}: read error: {e}", path.display()))?;
        if read == 0 {
            break;
        }
        line_no += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let trace = trace_store_interop::selectools::trace_from_line(&line)
            .map_err(|e| format!("{} line {line_no}: {e}", path.display()))?;
        traces.push(trace);
    }
    Ok(traces)
}

/// With fewer traces than the plan, keeps the plan's ids that exist (so a prefix of
/// the 10k workload still follows its plan as far as it can) and tops up with the
/// imported ids in file order to keep the planned number of operations. Deletes stay
/// distinct, at most one per trace.
fn adapt_ids(plan: &Plan, traces: &[Trace]) -> (Vec<String>, Vec<String>) {
    let present: HashSet<&str> = traces.iter().map(|t| t.run_id.as_str()).collect();
    let mut loads: Vec<String> = plan
        .load_ids
        .iter()
        .filter(|id| present.contains(id.as_str()))
        .cloned()
        .collect();
    let mut cycle = traces.iter().map(|t| &t.run_id).cycle();
    while loads.len() < plan.reps.load {
        if let Some(id) = cycle.next() {
            loads.push(id.clone());
        }
    }

    let wanted = plan.reps.delete.min(present.len());
    let mut seen = HashSet::new();
    let mut deletes: Vec<String> = plan
        .delete_ids
        .iter()
        .filter(|id| present.contains(id.as_str()) && seen.insert(id.as_str()))
        .take(wanted)
        .cloned()
        .collect();
    for trace in traces {
        if deletes.len() >= wanted {
            break;
        }
        if seen.insert(trace.run_id.as_str()) {
            deletes.push(trace.run_id.clone());
        }
    }
    (loads, deletes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            query_users: vec![],
            since: "2026-01-16T00:00:00+00:00".into(),
            min_steps: 5,
            load_ids: vec!["x".into(), "b".into(), "y".into()],
            delete_ids: vec!["c".into(), "zz".into(), "c".into()],
            n: 10,
            reps: Reps {
                list_50: 1,
                query_user: 1,
                query_since_minsteps: 1,
                load: 5,
                delete: 2,
            },
        }
    }

    #[test]
    fn ids_are_kept_when_present_and_topped_up() {
        let traces: Vec<Trace> = ["a", "b", "c"].into_iter().map(Trace::new).collect();
        let (loads, deletes) = adapt_ids(&plan(), &traces);
        assert_eq!(loads, ["b", "a", "b", "c", "a"]);
        assert_eq!(deletes, ["c", "a"]);
    }

    #[test]
    fn deletes_never_exceed_the_traces() {
        let traces = vec![Trace::new("c")];
        let (_, deletes) = adapt_ids(&plan(), &traces);
        assert_eq!(deletes, ["c"]);
    }
}
