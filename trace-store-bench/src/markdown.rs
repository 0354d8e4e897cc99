//! The same report as Markdown tables (`--markdown FILE`), ready to paste into
//! BENCHMARKS.md. selectools 1.3.0 is measured beside these in one run by
//! `scripts/bench-selectools`, not here.

use std::fmt::Write as _;

use crate::report::{Report, ms};

/// The report as Markdown.
pub(crate) fn render(report: &Report) -> String {
    let mut out = String::new();
    let m = &report.machine;
    let _ = writeln!(
        out,
        "Run of {} on commit `{}`{}: {} cores ({}), {} GiB, load average {} at start / {} at end; \
         workload `{}` (n = {}), durability {}.\n",
        report.date,
        report.git_commit.as_deref().unwrap_or("unknown"),
        if report.git_dirty == Some(true) {
            " plus uncommitted changes"
        } else {
            ""
        },
        m.cores,
        m.cpu_model.as_deref().unwrap_or("unknown CPU"),
        m.memory_gib.map_or("?".into(), |g| g.to_string()),
        m.load_avg_start
            .map_or("?".into(), |l| format!("{:.1}", l[0])),
        m.load_avg_end
            .map_or("?".into(), |l| format!("{:.1}", l[0])),
        report.settings.workload,
        report.settings.n,
        report.settings.durability,
    );

    let _ = writeln!(out, "### Replay, ms per call\n");
    let _ = writeln!(
        out,
        "| backend | op | calls | median | p95 | mean | rows | beside the bare engine | target (median / mean) |"
    );
    let _ = writeln!(out, "|---|---|--:|--:|--:|--:|--:|---|---|");
    for run in &report.replay {
        for op in &run.ops {
            let ratio = report
                .ratios
                .iter()
                .find(|r| r.backend == run.backend && r.op == op.op)
                .map(|r| format!("{:.2}x `{}` ({})", r.ratio, r.baseline, r.metric))
                .unwrap_or_default();
            let target = report
                .targets
                .iter()
                .find(|t| t.backend == run.backend && t.op == op.op)
                .map(|t| {
                    let mark = |met: bool| if met { "met" } else { "**missed**" };
                    match t.mean_met {
                        Some(mean_met) => {
                            format!("{}: {} / {}", t.target, mark(t.met), mark(mean_met))
                        }
                        None => format!("{} ({:.2}x): {}", t.target, t.measured, mark(t.met)),
                    }
                })
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {ratio} | {target} |",
                run.backend,
                op.op,
                op.count,
                ms(op.median_ms),
                ms(op.p95_ms),
                ms(op.mean_ms),
                op.rows.map(|r| r.to_string()).unwrap_or_default(),
            );
        }
    }

    let sizes: Vec<String> = report
        .replay
        .iter()
        .filter_map(|r| {
            r.disk_bytes
                .map(|b| format!("{} {:.1} MiB", r.backend, b as f64 / 1_048_576.0))
        })
        .collect();
    if !sizes.is_empty() {
        let _ = writeln!(
            out,
            "\nOn disk after the one-by-one saves: {}.",
            sizes.join(", ")
        );
    }

    if !report.baselines.is_empty() {
        let _ = writeln!(out, "\n### Bare engines, same bodies, ms\n");
        let _ = writeln!(out, "| engine | op | calls | median | p95 | mean | total |");
        let _ = writeln!(out, "|---|---|--:|--:|--:|--:|--:|");
        for base in &report.baselines {
            for op in &base.ops {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} |",
                    base.engine,
                    op.op,
                    op.count,
                    ms(op.median_ms),
                    ms(op.p95_ms),
                    ms(op.mean_ms),
                    ms(op.total_ms)
                );
            }
        }
        let _ = writeln!(out);
        for base in &report.baselines {
            let _ = writeln!(out, "- {}: {}", base.engine, base.how);
        }
    }

    if !report.scaling.is_empty() {
        let sizes = &report.settings.scaling_sizes;
        let _ = writeln!(out, "\n### Scaling, median ms per call\n");
        let _ = write!(out, "| backend | op |");
        for n in sizes {
            let _ = write!(out, " n = {n} |");
        }
        let _ = writeln!(out, " growth |");
        let _ = writeln!(out, "|---|---|{}---|", "--:|".repeat(sizes.len()));
        for op in &report.scaling {
            let _ = write!(out, "| {} | {} |", op.backend, op.op);
            for n in sizes {
                let cell = op
                    .points
                    .iter()
                    .find(|p| p.n == *n)
                    .map(|p| ms(p.stats.median_ms))
                    .unwrap_or_default();
                let _ = write!(out, " {cell} |");
            }
            let _ = writeln!(out, " n^{:.2}: {} |", op.exponent, op.verdict);
        }
        let _ = writeln!(
            out,
            "\n| backend | n | fill with save_many | on disk | resident growth per trace |"
        );
        let _ = writeln!(out, "|---|--:|--:|--:|--:|");
        for f in &report.scaling_fill {
            if let Some(why) = &f.skipped {
                let _ = writeln!(out, "| {} | {} | skipped: {why} | | |", f.backend, f.n);
                continue;
            }
            let _ = writeln!(
                out,
                "| {} | {} | {:.2} s | {} | {} |",
                f.backend,
                f.n,
                f.seconds,
                f.disk_bytes
                    .map(|b| format!("{:.0} MiB", b as f64 / 1_048_576.0))
                    .unwrap_or_else(|| "-".into()),
                f.rss_bytes_per_trace
                    .map(|b| format!("{b} B"))
                    .unwrap_or_else(|| "-".into())
            );
        }
    }
    if !report.failures.is_empty() {
        let _ = writeln!(out, "\n### Failures\n");
        for f in &report.failures {
            let _ = writeln!(out, "- {f}");
        }
    }
    out
}
