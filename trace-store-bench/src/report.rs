//! The report: ratios to the baselines, the targets of the backend issues, the machine
//! and commit, as a table for people and as one JSON document for programs.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use serde::Serialize;

use crate::backends::Backend;
use crate::baselines::BaselineRun;
use crate::replay::ReplayRun;
use crate::scaling::{FillTime, ScalingOp};
use crate::timing::OpStats;

/// The whole run, as written by `--out`.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) tool: &'static str,
    pub(crate) version: &'static str,
    /// When the run started (UTC).
    pub(crate) date: String,
    pub(crate) git_commit: Option<String>,
    /// True if the working tree had uncommitted changes.
    pub(crate) git_dirty: Option<bool>,
    pub(crate) machine: Machine,
    pub(crate) settings: Settings,
    pub(crate) replay: Vec<ReplayRun>,
    pub(crate) baselines: Vec<BaselineRun>,
    pub(crate) ratios: Vec<Ratio>,
    pub(crate) targets: Vec<TargetCheck>,
    pub(crate) scaling: Vec<ScalingOp>,
    pub(crate) scaling_fill: Vec<FillTime>,
    /// Backends or phases that failed, with the reason. Non-empty means exit status 1.
    pub(crate) failures: Vec<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Settings {
    pub(crate) workload: String,
    pub(crate) n: usize,
    /// True when the whole plan ran unchanged (the plan's ids, its expected counts).
    pub(crate) complete_plan: bool,
    pub(crate) durability: String,
    pub(crate) backends: Vec<Backend>,
    pub(crate) scaling_sizes: Vec<usize>,
    pub(crate) smoke: bool,
    pub(crate) redis: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Machine {
    pub(crate) cores: usize,
    pub(crate) cpu_model: Option<String>,
    pub(crate) os: String,
    pub(crate) memory_gib: Option<f64>,
    /// `/proc/loadavg` (1, 5, 15 minutes) when the run started and when it ended: the
    /// machine is shared, and a busy neighbour shows here.
    pub(crate) load_avg_start: Option<[f64; 3]>,
    pub(crate) load_avg_end: Option<[f64; 3]>,
}

impl Machine {
    pub(crate) fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string());
        let memory_gib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| {
                        l.split_whitespace()
                            .nth(1)
                            .and_then(|kb| kb.parse::<f64>().ok())
                    })
            })
            .map(|kb| (kb / 1024.0 / 1024.0 * 10.0).round() / 10.0);
        Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
            memory_gib,
            load_avg_start: None,
            load_avg_end: None,
        }
    }
}

/// The 1, 5 and 15 minute load averages.
pub(crate) fn load_avg() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut fields = text.split_whitespace().map(|f| f.parse::<f64>().ok());
    Some([fields.next()??, fields.next()??, fields.next()??])
}

/// `git rev-parse HEAD` and whether `git status --porcelain` shows changes, read-only.
pub(crate) fn git_state(root: &Path) -> (Option<String>, Option<bool>) {
    let run = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(root)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = run(&["rev-parse", "HEAD"]);
    let dirty = run(&["status", "--porcelain", "--untracked-files=no"]).map(|s| !s.is_empty());
    (commit, dirty)
}

/// A backend operation beside the baseline that does the same work on the bare engine.
#[derive(Debug, Serialize)]
pub(crate) struct Ratio {
    pub(crate) backend: Backend,
    pub(crate) op: String,
    pub(crate) baseline: String,
    /// `median` (per call) or `total` (whole phase).
    pub(crate) metric: &'static str,
    pub(crate) backend_ms: f64,
    pub(crate) baseline_ms: f64,
    pub(crate) ratio: f64,
}

/// (backend op, baseline op, metric). `save_many` is one call; the row-by-row file
/// append has no batch form, so its total stands beside JSONL's `save_many`.
const PAIRS: &[(Backend, &str, &str, &str)] = &[
    (Backend::Memory, "save", "clone_validate", "median"),
    (Backend::Memory, "load", "clone_validate_loads", "median"),
    (Backend::Sqlite, "save", "insert_row", "median"),
    (Backend::Sqlite, "save_many", "insert_tx", "total"),
    (Backend::Sqlite, "load", "select_body", "median"),
    (Backend::Jsonl, "save", "append_line", "median"),
    (Backend::Jsonl, "save_many", "append_line", "total"),
    (Backend::Jsonl, "load", "pread_line", "median"),
    (Backend::Redis, "save", "set_zadd_round_trip", "median"),
    (Backend::Redis, "save_many", "set_zadd_pipeline", "total"),
    (Backend::Redis, "load", "get", "median"),
    (Backend::Postgres, "save", "insert_row", "median"),
    (Backend::Postgres, "save_many", "insert_tx", "total"),
    (Backend::Postgres, "load", "select_body", "median"),
];

pub(crate) fn ratios(replay: &[ReplayRun], baselines: &[BaselineRun]) -> Vec<Ratio> {
    let mut out = Vec::new();
    for &(backend, op, base_op, metric) in PAIRS {
        let Some(run) = replay.iter().find(|r| r.backend == backend) else {
            continue;
        };
        let Some(base) = baselines.iter().find(|b| b.engine == backend) else {
            continue;
        };
        let (Some(ours), Some(theirs)) = (run.op(op), base.op(base_op)) else {
            continue;
        };
        let pick = |s: &OpStats| {
            if metric == "total" {
                s.total_ms
            } else {
                s.median_ms
            }
        };
        let (a, b) = (pick(ours), pick(theirs));
        out.push(Ratio {
            backend,
            op: op.into(),
            baseline: base_op.into(),
            metric,
            backend_ms: a,
            baseline_ms: b,
            ratio: if b > 0.0 { a / b } else { f64::NAN },
        });
    }
    out
}

/// A target from a backend issue, and whether this run met it.
#[derive(Debug, Serialize)]
pub(crate) struct TargetCheck {
    pub(crate) backend: Backend,
    pub(crate) op: String,
    /// e.g. `<= 0.15 ms` or `within 2x of bare insert_tx`.
    pub(crate) target: String,
    /// The median (or the ratio, for ratio targets).
    pub(crate) measured: f64,
    /// Judged on the median.
    pub(crate) met: bool,
    /// The mean, which stalls (checkpoints, fsyncs, a busy neighbour) pull up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) mean: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) mean_met: Option<bool>,
}

/// Per-op medians (ms) the backend issues ask for on the 10k workload.
const TARGETS_MS: &[(Backend, &str, f64)] = &[
    (Backend::Sqlite, "save", 0.15),
    (Backend::Sqlite, "list_50", 0.1),
    (Backend::Sqlite, "query_user", 1.5),
    (Backend::Sqlite, "query_since_minsteps", 15.0),
    (Backend::Sqlite, "load", 0.05),
    (Backend::Sqlite, "delete", 0.15),
    (Backend::Jsonl, "open", 300.0),
    (Backend::Jsonl, "save", 0.05),
    (Backend::Jsonl, "list_50", 0.05),
    (Backend::Jsonl, "query_user", 1.0),
    (Backend::Jsonl, "load", 0.1),
    (Backend::Jsonl, "delete", 0.1),
    (Backend::Jsonl, "compact", 1000.0),
    (Backend::Redis, "save", 0.3),
    (Backend::Redis, "list_50", 0.5),
    (Backend::Redis, "query_user", 2.0),
    (Backend::Redis, "load", 0.2),
    (Backend::Redis, "delete", 0.3),
    (Backend::Postgres, "list_50", 1.0),
    (Backend::Postgres, "query_user", 2.0),
    (Backend::Postgres, "load", 0.5),
];

/// Targets are judged on the median: the machine is shared and noisy, and one stall
/// should not turn a fast operation into a miss. The mean is judged too and reported
/// beside it, since selectools' figures are means.
pub(crate) fn targets(replay: &[ReplayRun], ratios: &[Ratio]) -> Vec<TargetCheck> {
    let mut out = Vec::new();
    for &(backend, op, limit) in TARGETS_MS {
        let Some(stats) = replay
            .iter()
            .find(|r| r.backend == backend)
            .and_then(|r| r.op(op))
        else {
            continue;
        };
        out.push(TargetCheck {
            backend,
            op: op.into(),
            target: format!("<= {limit} ms"),
            measured: stats.median_ms,
            met: stats.median_ms <= limit,
            mean: Some(stats.mean_ms),
            mean_met: Some(stats.mean_ms <= limit),
        });
    }
    for (backend, op, base) in [
        (Backend::Sqlite, "save_many", "insert_tx"),
        (Backend::Postgres, "save", "insert_row"),
    ] {
        if let Some(r) = ratios.iter().find(|r| r.backend == backend && r.op == op) {
            out.push(TargetCheck {
                backend,
                op: op.into(),
                target: format!("within 2x of bare {base}"),
                measured: r.ratio,
                met: r.ratio <= 2.0,
                mean: None,
                mean_met: None,
            });
        }
    }
    out
}

/// Milliseconds with as many digits as their size deserves.
pub(crate) fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else if v >= 0.01 {
        format!("{v:.3}")
    } else {
        format!("{v:.4}")
    }
}

/// The table for people.
pub(crate) fn table(report: &Report) -> String {
    let mut out = String::new();
    let m = &report.machine;
    let _ = writeln!(
        out,
        "trace-store-bench {}  {}  commit {}{}",
        report.version,
        report.date,
        report.git_commit.as_deref().unwrap_or("unknown"),
        if report.git_dirty == Some(true) {
            " (dirty)"
        } else {
            ""
        }
    );
    let load = |l: Option<[f64; 3]>| l.map_or("?".into(), |l| format!("{:.1}", l[0]));
    let _ = writeln!(
        out,
        "machine: {} cores, {}, {} GiB, {}; load average {} at start, {} at end",
        m.cores,
        m.cpu_model.as_deref().unwrap_or("unknown CPU"),
        m.memory_gib.map_or("?".into(), |g| g.to_string()),
        m.os,
        load(m.load_avg_start),
        load(m.load_avg_end)
    );
    let s = &report.settings;
    let _ = writeln!(
        out,
        "workload: {} (n={}{}), durability {}\n",
        s.workload,
        s.n,
        if s.complete_plan {
            ", full plan"
        } else {
            ", adapted plan"
        },
        s.durability
    );

    let _ = writeln!(
        out,
        "{:<8} {:<22} {:>6} {:>10} {:>10} {:>10} {:>6}  {:<28}",
        "backend", "op", "calls", "median ms", "p95 ms", "mean ms", "rows", "vs baseline"
    );
    for run in &report.replay {
        for op in &run.ops {
            let ratio = report
                .ratios
                .iter()
                .find(|r| r.backend == run.backend && r.op == op.op)
                .map(|r| format!("{:.2}x {} ({})", r.ratio, r.baseline, r.metric))
                .unwrap_or_default();
            let target = report
                .targets
                .iter()
                .find(|t| t.backend == run.backend && t.op == op.op)
                .map(|t| match (t.met, t.mean_met) {
                    (false, _) => "  MISSES TARGET",
                    (true, Some(false)) => "  (mean misses target)",
                    _ => "",
                })
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{:<8} {:<22} {:>6} {:>10} {:>10} {:>10} {:>6}  {ratio}{target}",
                run.backend.as_str(),
                op.op,
                op.count,
                ms(op.median_ms),
                ms(op.p95_ms),
                ms(op.mean_ms),
                op.rows.map(|r| r.to_string()).unwrap_or_default(),
            );
        }
    }
    if !report.baselines.is_empty() {
        let _ = writeln!(out, "\nbaselines (same bodies, same durability):");
        for base in &report.baselines {
            for op in &base.ops {
                let _ = writeln!(
                    out,
                    "{:<8} {:<22} {:>6} {:>10} {:>10} {:>10}   total {} ms",
                    base.engine.as_str(),
                    op.op,
                    op.count,
                    ms(op.median_ms),
                    ms(op.p95_ms),
                    ms(op.mean_ms),
                    ms(op.total_ms)
                );
            }
        }
    }
    let missed: Vec<&TargetCheck> = report.targets.iter().filter(|t| !t.met).collect();
    if !report.targets.is_empty() {
        let _ = writeln!(
            out,
            "\ntargets (on the median): {} of {} met",
            report.targets.len() - missed.len(),
            report.targets.len()
        );
        for t in missed {
            let _ = writeln!(
                out,
                "  missed: {} {} ({}), measured {}",
                t.backend,
                t.op,
                t.target,
                ms(t.measured)
            );
        }
        for t in report
            .targets
            .iter()
            .filter(|t| t.met && t.mean_met == Some(false))
        {
            let _ = writeln!(
                out,
                "  median met, mean missed: {} {} ({}), median {}, mean {}",
                t.backend,
                t.op,
                t.target,
                ms(t.measured),
                ms(t.mean.unwrap_or_default())
            );
        }
    }
    if !report.scaling.is_empty() {
        let sizes = &report.settings.scaling_sizes;
        let _ = write!(out, "\nscaling (median ms)\n{:<8} {:<20}", "backend", "op");
        for n in sizes {
            let _ = write!(out, " {:>11}", format!("n={n}"));
        }
        let _ = writeln!(out, "  growth");
        for op in &report.scaling {
            let _ = write!(out, "{:<8} {:<20}", op.backend.as_str(), op.op);
            for n in sizes {
                let cell = op
                    .points
                    .iter()
                    .find(|p| p.n == *n)
                    .map(|p| ms(p.stats.median_ms))
                    .unwrap_or_default();
                let _ = write!(out, " {cell:>11}");
            }
            let _ = writeln!(out, "  n^{:.2} {}", op.exponent, op.verdict);
        }
        for f in &report.scaling_fill {
            if let Some(why) = &f.skipped {
                let _ = writeln!(
                    out,
                    "fill {:<7} n={:<8} skipped: {why}",
                    f.backend.as_str(),
                    f.n
                );
                continue;
            }
            let _ = writeln!(
                out,
                "fill {:<7} n={:<8} save_many {:>8.2} s{}{}",
                f.backend.as_str(),
                f.n,
                f.seconds,
                f.disk_bytes
                    .map(|b| format!(", {:.1} MiB on disk", b as f64 / 1048576.0))
                    .unwrap_or_default(),
                f.rss_bytes_per_trace
                    .map(|b| format!(", resident +{b} B/trace"))
                    .unwrap_or_default()
            );
        }
    }
    if report.failures.is_empty() {
        let _ = writeln!(out, "\nall answers matched the reference");
    } else {
        let _ = writeln!(out, "\nFAILURES:");
        for f in &report.failures {
            let _ = writeln!(out, "  {f}");
        }
    }
    out
}
