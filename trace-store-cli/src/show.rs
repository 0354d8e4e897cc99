//! `show`: one trace as a header and a timeline of its step tree.

use std::io::{self, Write};

use trace_store::{ErrorInfo, Score, Status, Step, Trace, TraceSummary};

use crate::render::{self, Cell, Style, Table};

/// Characters of the timeline bar.
const BAR_WIDTH: usize = 30;

/// Child runs listed under a run; more are counted, not listed.
pub(crate) const MAX_CHILDREN: usize = 20;

/// Characters of a step's content shown without `--full`.
const PREVIEW_CHARS: usize = 120;

/// Writes the header (identity, status, times, metadata, totals, scores, child runs)
/// and the timeline, each step followed by a preview of its content (all of it with
/// `full`).
pub(crate) fn write(
    out: &mut dyn Write,
    trace: &Trace,
    children: &[TraceSummary],
    full: bool,
) -> io::Result<()> {
    let summary = TraceSummary::from(trace);
    let field = |out: &mut dyn Write, label: &str, value: &str| writeln!(out, "{label:<9} {value}");

    field(out, "run_id", &trace.run_id)?;
    if let Some(name) = &trace.name {
        field(out, "name", name)?;
    }
    if let Some(parent) = &trace.parent_run_id {
        field(out, "parent", parent)?;
    }
    if let Some(session) = &trace.session_id {
        field(out, "session", session)?;
    }
    let mut status = Style::of_status(trace.status).paint(trace.status.as_str());
    if let Some(error) = &trace.error {
        status.push_str("  ");
        status.push_str(&Style::Red.paint(&error_text(error)));
    }
    field(out, "status", &status)?;
    field(out, "created", &render::when_exact(trace.created_at))?;
    if let Some(ended) = trace.ended_at {
        let took = (ended.as_micros() - trace.created_at.as_micros()) as f64 / 1000.0;
        let ended = render::when_exact(ended);
        field(
            out,
            "ended",
            &format!("{ended}  ({})", render::duration(took)),
        )?;
    }
    if !trace.metadata.is_empty() {
        let pairs: Vec<String> = trace
            .metadata
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect();
        field(out, "metadata", &pairs.join("  "))?;
    }
    let mut totals = vec![
        format!("{} steps", summary.steps),
        format!("{} in root steps", render::duration(summary.total_ms)),
    ];
    if summary.input_tokens + summary.output_tokens > 0 {
        totals.push(format!(
            "{} in / {} out tokens",
            render::thousands(summary.input_tokens),
            render::thousands(summary.output_tokens)
        ));
    }
    if summary.cost_nano_usd != 0 {
        totals.push(render::usd(summary.cost_nano_usd));
    }
    // A failure recorded on a step and on each enclosing span is one failure.
    let errors = match summary.failed_steps
        + u64::from(trace.status == Status::Error && summary.failed_steps == 0)
    {
        0 => "no errors".to_owned(),
        1 => Style::Red.paint("1 error"),
        n => Style::Red.paint(&format!("{n} errors")),
    };
    totals.push(errors);
    field(out, "totals", &totals.join(" · "))?;
    for (i, (model, usage)) in summary.models.iter().enumerate() {
        let calls = if usage.calls == 1 { "call" } else { "calls" };
        let line = format!(
            "{model}: {} {calls}, {} in / {} out tokens, {}",
            usage.calls,
            render::thousands(usage.input_tokens),
            render::thousands(usage.output_tokens),
            render::usd(usage.cost_nano_usd)
        );
        field(out, if i == 0 { "models" } else { "" }, &line)?;
    }
    for (i, score) in trace.scores.iter().enumerate() {
        field(out, if i == 0 { "scores" } else { "" }, &score_text(score))?;
    }
    for (i, child) in children.iter().take(MAX_CHILDREN).enumerate() {
        let line = format!(
            "{}  {}  {}",
            child.run_id,
            child.name.as_deref().unwrap_or("-"),
            Style::of_status(child.status).paint(child.status.as_str())
        );
        field(out, if i == 0 { "children" } else { "" }, &line)?;
    }
    if children.len() > MAX_CHILDREN {
        field(
            out,
            "",
            &format!("... more: trace-store query --parent {:?}", trace.run_id),
        )?;
    }

    if !trace.steps.is_empty() {
        writeln!(out)?;
        timeline(out, trace, full)?;
    }
    if let Some(stacktrace) = trace.error.as_ref().and_then(|e| e.stacktrace.as_deref()) {
        writeln!(out)?;
        writeln!(out, "traceback")?;
        for line in stacktrace.lines() {
            writeln!(out, "  {}", Style::Red.paint(line))?;
        }
    }
    Ok(())
}

fn score_text(score: &Score) -> String {
    let mut parts = vec![score.name.clone()];
    if let Some(value) = score.value {
        parts.push(format!("= {value}"));
    }
    if let Some(label) = &score.label {
        parts.push(format!("[{label}]"));
    }
    if let Some(step) = &score.step_id {
        parts.push(format!("(step {step})"));
    }
    parts.push(format!("by {}", score.source));
    if let Some(comment) = &score.comment {
        parts.push(format!("\"{}\"", one_line(comment)));
    }
    parts.join(" ")
}

/// Newlines and tabs as spaces, so a preview stays on its line.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A step's content as preview lines: input (or tool arguments) and output (or tool
/// result), strings as they are, other JSON compact; cut to [`PREVIEW_CHARS`] unless
/// `full`.
fn content_lines(step: &Step, full: bool) -> Vec<String> {
    let is_tool = step.tool.is_some();
    let labelled = [
        (if is_tool { "args" } else { "in" }, &step.input),
        (if is_tool { "result" } else { "out" }, &step.output),
    ];
    labelled
        .into_iter()
        .filter_map(|(label, value)| {
            let value = value.as_ref()?;
            let text = match value {
                serde_json::Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            let text = one_line(&text);
            let count = text.chars().count();
            Some(if full || count <= PREVIEW_CHARS {
                format!("{label}: {text}")
            } else {
                let cut: String = text.chars().take(PREVIEW_CHARS).collect();
                format!(
                    "{label}: {cut}… (+{} chars; --full shows all)",
                    count - PREVIEW_CHARS
                )
            })
        })
        .collect()
}

fn error_text(error: &ErrorInfo) -> String {
    let message = error.message.lines().next().unwrap_or_default();
    match &error.error_type {
        Some(kind) if message.is_empty() => kind.clone(),
        Some(kind) => format!("{kind}: {message}"),
        None => message.to_owned(),
    }
}

fn timeline(out: &mut dyn Write, trace: &Trace, full: bool) -> io::Result<()> {
    let bars = Bars::new(trace);
    let mut table = Table::new(&[
        ("#", true),
        ("STEP", false),
        ("DURATION", true),
        ("TIMELINE", false),
        ("TOKENS IN / OUT", true),
        ("COST", true),
    ]);
    for (index, depth) in tree_order(trace) {
        let step = &trace.steps[index];
        let failed = step.status == Status::Error;
        let mut label = format!("{}{}", "  ".repeat(depth), step.kind);
        if let Some(detail) = step
            .tool
            .as_ref()
            .map(|tool| tool.name.as_str())
            .or(step.model.as_deref())
            .or(step.name.as_deref())
        {
            label.push(' ');
            label.push_str(detail);
        }
        if step.status == Status::Running {
            label.push_str(" (running)");
        }
        let style = if failed { Style::Red } else { Style::Plain };
        table.row(vec![
            Cell::new((index + 1).to_string()),
            Cell::styled(label, style),
            Cell::new(if step.duration_us == 0 {
                String::new()
            } else {
                render::duration(step.duration_us as f64 / 1000.0)
            }),
            Cell::styled(bars.bar(step), if failed { Style::Red } else { Style::Dim }),
            Cell::new(render::tokens(
                step.usage.input_tokens,
                step.usage.output_tokens,
            )),
            Cell::new(render::usd_column(step.cost_nano_usd)),
        ]);
        if let Some(error) = &step.error {
            table.note(
                1,
                2 * depth + 2,
                Cell::styled(format!("✗ {}", error_text(error)), Style::Red),
            );
        } else if failed {
            table.note(1, 2 * depth + 2, Cell::styled("✗ failed", Style::Red));
        }
        for line in content_lines(step, full) {
            table.note(1, 2 * depth + 2, Cell::styled(line, Style::Dim));
        }
    }
    table.write(out, "")
}

/// Steps in tree order (each parent followed by its children, in recorded order) with
/// their depth. A step whose parent is unknown is a root; steps caught in a parent
/// cycle are shown from the first of them, so every step appears exactly once.
pub(crate) fn tree_order(trace: &Trace) -> Vec<(usize, usize)> {
    // Core decides which step is whose parent (duplicate ids, loops), so the tree drawn
    // here is the one the summary's totals were computed on.
    let parents = trace.step_parents();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); parents.len()];
    let mut roots = Vec::new();
    for (i, parent) in parents.iter().enumerate() {
        match parent {
            Some(parent) => children[*parent].push(i),
            None => roots.push(i),
        }
    }
    let mut order = Vec::with_capacity(parents.len());
    let mut stack: Vec<(usize, usize)> = roots.into_iter().rev().map(|root| (root, 0)).collect();
    while let Some((i, depth)) = stack.pop() {
        order.push((i, depth));
        stack.extend(children[i].iter().rev().map(|&child| (child, depth + 1)));
    }
    order
}

/// Places each step on a common time axis: from the earliest start to the latest end.
/// Without start times, bars are lengths relative to the longest step.
struct Bars {
    origin: i64,
    span: i64,
    timed: bool,
}

impl Bars {
    fn new(trace: &Trace) -> Bars {
        let timed: Vec<(i64, i64)> = trace
            .steps
            .iter()
            .filter_map(|s| s.started_at.map(|t| (t.as_micros(), duration_i64(s))))
            .collect();
        if timed.is_empty() {
            let longest = trace.steps.iter().map(duration_i64).max().unwrap_or(0);
            return Bars {
                origin: 0,
                span: longest,
                timed: false,
            };
        }
        let origin = timed.iter().map(|(start, _)| *start).min().unwrap_or(0);
        let end = timed
            .iter()
            .map(|(start, d)| start.saturating_add(*d))
            .max()
            .unwrap_or(origin);
        Bars {
            origin,
            span: end.saturating_sub(origin),
            timed: true,
        }
    }

    fn bar(&self, step: &Step) -> String {
        let scale = |micros: i64| -> usize {
            if self.span <= 0 {
                return 0;
            }
            ((micros.max(0) as f64 / self.span as f64) * BAR_WIDTH as f64).round() as usize
        };
        let offset = match (self.timed, step.started_at) {
            (true, Some(start)) => scale(start.as_micros() - self.origin).min(BAR_WIDTH - 1),
            _ => 0,
        };
        let length = match duration_i64(step) {
            0 => 0,
            d => scale(d).clamp(1, BAR_WIDTH - offset),
        };
        let mark = if length == 0 {
            "·".to_owned()
        } else {
            "█".repeat(length)
        };
        let used = offset + length.max(1);
        format!(
            "{}{mark}{}",
            " ".repeat(offset),
            " ".repeat(BAR_WIDTH - used)
        )
    }
}

fn duration_i64(step: &Step) -> i64 {
    i64::try_from(step.duration_us).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use trace_store::StepKind;

    fn step(id: &str, parent: Option<&str>) -> Step {
        let mut step = Step::new(StepKind::Chain).with_id(id);
        step.parent_id = parent.map(str::to_owned);
        step
    }

    #[test]
    fn tree_order_nests_children_under_parents() {
        let steps = vec![
            step("a", None),
            step("b", Some("a")),
            step("c", None),
            step("d", Some("b")),
            step("e", Some("a")),
            step("f", Some("missing")),
        ];
        let mut trace = Trace::new("r");
        trace.steps = steps;
        assert_eq!(
            tree_order(&trace),
            [(0, 0), (1, 1), (3, 2), (4, 1), (2, 0), (5, 0)]
        );
    }

    #[test]
    fn cycles_and_self_parents_show_every_step_once() {
        let steps = vec![
            step("x", Some("y")),
            step("y", Some("x")),
            step("z", Some("z")),
        ];
        let mut trace = Trace::new("r");
        trace.steps = steps;
        // Core cuts the x/y loop at its first step; z names itself and is a root.
        assert_eq!(tree_order(&trace), [(0, 0), (1, 1), (2, 0)]);
    }

    #[test]
    fn bars_are_positioned_and_sized() {
        let t = |micros| trace_store::Timestamp::from_micros(micros).unwrap();
        let trace = Trace::new("r")
            .with_step(step("a", None).with_started_at(t(0)).with_duration_us(1000))
            .with_step(
                step("b", None)
                    .with_started_at(t(500))
                    .with_duration_us(500),
            )
            .with_step(step("c", None).with_started_at(t(1000)));
        let bars = Bars::new(&trace);
        let drawn: Vec<String> = trace.steps.iter().map(|s| bars.bar(s)).collect();
        assert_eq!(drawn[0], "█".repeat(30));
        assert_eq!(drawn[1], format!("{}{}", " ".repeat(15), "█".repeat(15)));
        assert_eq!(drawn[2], format!("{}·", " ".repeat(29)));
        assert!(drawn.iter().all(|bar| bar.chars().count() == BAR_WIDTH));
    }
}
