//! Values derived from a trace, computed here and nowhere else.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Cursor, Status, Step, Timestamp, Trace};

/// What `list` and `query` return for each trace: its identity, ordering key, size,
/// totals and metadata, without the step bodies.
///
/// Built only by [`TraceSummary::from`]; backends store it beside the body so listings
/// never decode a whole trace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TraceSummary {
    /// The trace's run_id.
    pub run_id: String,
    /// The trace's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The trace's session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The run that started this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_run_id: Option<String>,
    /// The trace's status.
    #[serde(default, skip_serializing_if = "Status::is_unset")]
    pub status: Status,
    /// The trace's `created_at`.
    pub created_at: Timestamp,
    /// Number of steps.
    pub steps: usize,
    /// Milliseconds spent in root steps (steps with no parent in this trace).
    pub total_ms: f64,
    /// Steps with status error, plus one if the run itself failed.
    #[serde(default)]
    pub error_count: u64,
    /// Steps with status error none of whose descendants has status error: each
    /// failure counted once, however many enclosing spans it also failed. What the CLI
    /// and the viewer show.
    #[serde(default)]
    pub failed_steps: u64,
    /// Input tokens, each counted once (see [`TraceSummary::from`]).
    #[serde(default)]
    pub input_tokens: u64,
    /// Output tokens, each counted once.
    #[serde(default)]
    pub output_tokens: u64,
    /// Cost in nano-USD, each step counted once.
    #[serde(default)]
    pub cost_nano_usd: i64,
    /// Calls, tokens and cost per model, counted like the totals.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub models: BTreeMap<String, ModelUsage>,
    /// The trace's metadata.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, Value>,
    /// Trace-level scores (no `step_id`) that carry a value, by name. When several
    /// sources scored the same name, the one recorded last in `Trace::scores` wins.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scores: BTreeMap<String, f64>,
}

/// Calls, tokens and cost of one model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ModelUsage {
    /// Steps naming this model that were counted.
    pub calls: u64,
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Cost in nano-USD.
    pub cost_nano_usd: i64,
}

impl ModelUsage {
    /// Adds `other`'s calls, tokens and cost to these, each saturating: how
    /// [`TraceStats`] totals usage, for backends that total it themselves.
    pub fn add(&mut self, other: &ModelUsage) {
        self.calls = self.calls.saturating_add(other.calls);
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
        self.cost_nano_usd = self.cost_nano_usd.saturating_add(other.cost_nano_usd);
    }
}

impl TraceSummary {
    /// The keyset position of this trace, for [`TraceFilter::after`](crate::TraceFilter).
    pub fn cursor(&self) -> Cursor {
        Cursor::new(self.created_at, self.run_id.clone())
    }
}

fn carries_usage(step: &Step) -> bool {
    !step.usage.is_zero() || step.cost_nano_usd != 0
}

impl Trace {
    /// Each step's parent, as an index into `steps`, with the nesting made a forest:
    /// the one reading of `parent_id` that [`TraceSummary::from`] uses, for anything
    /// that walks the step tree (a timeline view, say).
    ///
    /// A `parent_id` that is unset or names no step makes a root (`None`). A `parent_id`
    /// naming several steps (a duplicated id, as when a span is recorded at its start
    /// and again, with totals, at its end) names the last of them. A chain of parents
    /// that loops back on itself (bad input, but accepted) is cut at its first-recorded
    /// step, which becomes a root, so every step of a loop is still reachable from a
    /// root. Linear in the number of steps.
    ///
    /// ```
    /// use trace_store_core::{Step, Trace};
    ///
    /// let trace = Trace::new("r")
    ///     .with_step(Step::llm_call("m").with_id("a").with_parent_id("b"))
    ///     .with_step(Step::llm_call("m").with_id("b").with_parent_id("a"))
    ///     .with_step(Step::llm_call("m").with_parent_id("b"))
    ///     .with_step(Step::llm_call("m").with_parent_id("nowhere"));
    /// assert_eq!(trace.step_parents(), [None, Some(0), Some(1), None]);
    /// ```
    pub fn step_parents(&self) -> Vec<Option<usize>> {
        let steps = &self.steps;
        // Collecting overwrites earlier entries: the last step with an id wins.
        let index_of: HashMap<&str, usize> = steps
            .iter()
            .enumerate()
            .filter_map(|(i, step)| step.id.as_deref().map(|id| (id, i)))
            .collect();
        let mut parent: Vec<Option<usize>> = steps
            .iter()
            .map(|step| {
                let id = step.parent_id.as_deref()?;
                index_of.get(id).copied()
            })
            .collect();
        cut_cycles(&mut parent);
        parent
    }
}

/// For each step, whether any of its descendants is `marked`. The parent graph is a
/// forest, so a walk up stops at the first step already set: everything above it was
/// set by the walk that set it. Linear in the number of steps.
fn mark_ancestors(parent: &[Option<usize>], marked: impl Iterator<Item = bool>) -> Vec<bool> {
    let mut below = vec![false; parent.len()];
    for (i, _) in marked.enumerate().filter(|(_, m)| *m) {
        let mut current = parent[i];
        while let Some(p) = current {
            if below[p] {
                break;
            }
            below[p] = true;
            current = parent[p];
        }
    }
    below
}

/// Turns every cycle of the parent graph into a chain by making its lowest index a
/// root. Each step is walked once: a walk stops at the first step an earlier walk
/// finished, or at a step already on its own path (a cycle).
fn cut_cycles(parent: &mut [Option<usize>]) {
    #[derive(Clone, Copy, PartialEq)]
    enum Seen {
        Not,
        OnPath,
        Done,
    }
    let mut seen = vec![Seen::Not; parent.len()];
    let mut path = Vec::new();
    for start in 0..parent.len() {
        let mut current = Some(start);
        while let Some(step) = current {
            match seen[step] {
                Seen::Not => {
                    seen[step] = Seen::OnPath;
                    path.push(step);
                    current = parent[step];
                }
                Seen::OnPath => {
                    let cycle = path.iter().position(|&s| s == step).map(|at| &path[at..]);
                    if let Some(&first) = cycle.and_then(|cycle| cycle.iter().min()) {
                        parent[first] = None;
                    }
                    break;
                }
                Seen::Done => break,
            }
        }
        for step in path.drain(..) {
            seen[step] = Seen::Done;
        }
    }
}

impl From<&Trace> for TraceSummary {
    /// Derives the summary.
    ///
    /// - `total_ms`: sum of `duration_us` of root steps, whose `parent_id` is unset or
    ///   names no step of this trace, so nested spans are not counted twice;
    /// - tokens and cost (and `models`): summed over steps, skipping a step any of whose
    ///   descendants also carries usage or cost (an aggregate span that repeats its
    ///   children);
    /// - `error_count`: steps with status error, plus one if the run's status is error;
    /// - `failed_steps`: steps with status error that have no descendant with status
    ///   error;
    /// - `scores`: trace-level scores with a value, the last recorded per name.
    ///
    /// Nesting is read by [`Trace::step_parents`]: a `parent_id` shared by several
    /// steps names the last of them; a loop of parents is cut at its first-recorded
    /// step, which then counts as a root. Linear in the number of steps, whatever their
    /// nesting.
    fn from(trace: &Trace) -> TraceSummary {
        let steps = &trace.steps;
        let parent = trace.step_parents();

        let covered_by_descendant = mark_ancestors(&parent, steps.iter().map(carries_usage));
        let error_below = mark_ancestors(&parent, steps.iter().map(|s| s.status == Status::Error));

        let mut summary = TraceSummary {
            run_id: trace.run_id.clone(),
            name: trace.name.clone(),
            session_id: trace.session_id.clone(),
            parent_run_id: trace.parent_run_id.clone(),
            status: trace.status,
            created_at: trace.created_at,
            steps: steps.len(),
            total_ms: 0.0,
            error_count: u64::from(trace.status == Status::Error),
            failed_steps: 0,
            input_tokens: 0,
            output_tokens: 0,
            cost_nano_usd: 0,
            models: BTreeMap::new(),
            metadata: trace.metadata.clone(),
            scores: trace
                .scores
                .iter()
                .filter(|score| score.step_id.is_none())
                .filter_map(|score| Some((score.name.clone(), score.value?)))
                .collect(),
        };
        let mut root_us: u64 = 0;
        for (i, step) in steps.iter().enumerate() {
            if parent[i].is_none() {
                root_us = root_us.saturating_add(step.duration_us);
            }
            if step.status == Status::Error {
                summary.error_count += 1;
                if !error_below[i] {
                    summary.failed_steps += 1;
                }
            }
            if covered_by_descendant[i] || !carries_usage(step) {
                continue;
            }
            let usage = ModelUsage {
                calls: 1,
                input_tokens: step.usage.input_tokens,
                output_tokens: step.usage.output_tokens,
                cost_nano_usd: step.cost_nano_usd,
            };
            summary.input_tokens = summary.input_tokens.saturating_add(usage.input_tokens);
            summary.output_tokens = summary.output_tokens.saturating_add(usage.output_tokens);
            summary.cost_nano_usd = summary.cost_nano_usd.saturating_add(usage.cost_nano_usd);
            if let Some(model) = &step.model {
                summary.models.entry(model.clone()).or_default().add(&usage);
            }
        }
        summary.total_ms = root_us as f64 / 1000.0;
        summary
    }
}

/// Totals over a set of traces, as [`TraceStore::stats`](crate::TraceStore::stats)
/// returns them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TraceStats {
    /// Number of traces.
    pub count: u64,
    /// Steps over all traces.
    pub steps: u64,
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Cost in nano-USD.
    pub cost_nano_usd: i64,
    /// Sum of every trace's `total_ms`.
    pub total_ms: f64,
    /// Sum of every trace's `error_count`.
    pub error_count: u64,
    /// Sum of every trace's `failed_steps`.
    #[serde(default)]
    pub failed_steps: u64,
    /// Traces per status (statuses with no trace are absent).
    pub by_status: BTreeMap<Status, u64>,
    /// Calls, tokens and cost per model.
    pub by_model: BTreeMap<String, ModelUsage>,
}

impl TraceStats {
    /// Adds one trace.
    pub fn add(&mut self, summary: &TraceSummary) {
        self.add_trace_counts(summary);
        self.input_tokens = self.input_tokens.saturating_add(summary.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(summary.output_tokens);
        self.cost_nano_usd = self.cost_nano_usd.saturating_add(summary.cost_nano_usd);
        for (model, usage) in &summary.models {
            self.by_model.entry(model.clone()).or_default().add(usage);
        }
    }

    /// Adds one trace to the group of `model` ([`GroupBy::Model`](crate::GroupBy)):
    /// the trace's count, steps, duration, errors and status as [`TraceStats::add`]
    /// adds them, but tokens, cost and `by_model` from that model's counted steps
    /// only. A trace without a counted step of `model` is not added.
    pub fn add_for_model(&mut self, summary: &TraceSummary, model: &str) {
        let Some(usage) = summary.models.get(model) else {
            return;
        };
        self.add_trace_counts(summary);
        self.input_tokens = self.input_tokens.saturating_add(usage.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(usage.output_tokens);
        self.cost_nano_usd = self.cost_nano_usd.saturating_add(usage.cost_nano_usd);
        self.by_model
            .entry(model.to_owned())
            .or_default()
            .add(usage);
    }

    fn add_trace_counts(&mut self, summary: &TraceSummary) {
        self.count = self.count.saturating_add(1);
        self.steps = self.steps.saturating_add(summary.steps as u64);
        self.total_ms += summary.total_ms;
        self.error_count = self.error_count.saturating_add(summary.error_count);
        self.failed_steps = self.failed_steps.saturating_add(summary.failed_steps);
        let by_status = self.by_status.entry(summary.status).or_default();
        *by_status = by_status.saturating_add(1);
    }

    /// Cost in USD, for display.
    pub fn cost_usd(&self) -> f64 {
        self.cost_nano_usd as f64 / 1e9
    }
}

impl<'a> FromIterator<&'a TraceSummary> for TraceStats {
    fn from_iter<I: IntoIterator<Item = &'a TraceSummary>>(summaries: I) -> TraceStats {
        let mut stats = TraceStats::default();
        summaries.into_iter().for_each(|s| stats.add(s));
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorInfo, Step};

    #[test]
    fn aggregate_spans_are_not_counted_twice() {
        let trace = Trace::new("r")
            .with_error(ErrorInfo::new("boom"))
            .with_step(
                Step::new(crate::StepKind::Agent)
                    .with_id("agent")
                    .with_duration_us(5_000)
                    .with_usage(100, 10)
                    .with_cost_nano_usd(700),
            )
            .with_step(
                Step::llm_call("a")
                    .with_id("c1")
                    .with_parent_id("agent")
                    .with_duration_us(2_000)
                    .with_usage(60, 6)
                    .with_cost_nano_usd(400),
            )
            .with_step(
                Step::llm_call("b")
                    .with_parent_id("agent")
                    .with_duration_us(2_500)
                    .with_usage(40, 4)
                    .with_cost_nano_usd(300)
                    .with_status(Status::Error),
            )
            .with_step(
                Step::tool_call("orphan")
                    .with_parent_id("missing")
                    .with_duration_us(1_500),
            );
        let s = TraceSummary::from(&trace);
        assert_eq!(s.steps, 4);
        assert_eq!(s.total_ms, 6.5);
        assert_eq!(
            (s.input_tokens, s.output_tokens, s.cost_nano_usd),
            (100, 10, 700)
        );
        assert_eq!(s.error_count, 2);
        assert_eq!(s.models["a"].calls, 1);
        assert_eq!(s.models["b"].input_tokens, 40);
        assert!(!s.models.contains_key("agent"));
    }

    #[test]
    fn parent_cycles_are_cut_at_their_first_recorded_step() {
        // x -> y -> x: x, recorded first, counts as the root of the cycle.
        let trace = Trace::new("r")
            .with_step(
                Step::llm_call("m")
                    .with_id("x")
                    .with_parent_id("y")
                    .with_duration_us(3_000)
                    .with_usage(1, 1),
            )
            .with_step(
                Step::llm_call("m")
                    .with_id("y")
                    .with_parent_id("x")
                    .with_duration_us(2_000)
                    .with_usage(2, 2),
            );
        let s = TraceSummary::from(&trace);
        assert_eq!(s.total_ms, 3.0, "the cut step is a root");
        assert_eq!(s.input_tokens, 2, "x aggregates its child y");
        assert_eq!(s.models["m"].calls, 1);
    }

    #[test]
    fn a_cycle_never_hides_the_only_usage_in_it() {
        // Only x carries usage; its usage must not vanish because the cycle makes x
        // its own descendant.
        let trace = Trace::new("r")
            .with_step(
                Step::new(crate::StepKind::Chain)
                    .with_id("y")
                    .with_parent_id("x"),
            )
            .with_step(
                Step::llm_call("m")
                    .with_id("x")
                    .with_parent_id("y")
                    .with_usage(7, 3)
                    .with_cost_nano_usd(11),
            )
            .with_step(
                Step::llm_call("self")
                    .with_id("s")
                    .with_parent_id("s")
                    .with_duration_us(4_000)
                    .with_usage(5, 0),
            );
        let s = TraceSummary::from(&trace);
        assert_eq!(
            (s.input_tokens, s.output_tokens, s.cost_nano_usd),
            (12, 3, 11)
        );
        assert_eq!(s.models["self"].input_tokens, 5);
        assert_eq!(s.total_ms, 4.0, "y (cut root, 0 µs) and s (its own parent)");
    }

    #[test]
    fn duplicate_step_ids_name_the_last_step_recorded_with_them() {
        // A span logged at its start and again at its end, with the totals of its
        // children: the children belong to the end record, which is not counted again.
        let trace = Trace::new("r")
            .with_step(Step::new(crate::StepKind::Agent).with_id("a"))
            .with_step(
                Step::llm_call("m")
                    .with_parent_id("a")
                    .with_duration_us(1_000)
                    .with_usage(10, 1),
            )
            .with_step(
                Step::llm_call("m")
                    .with_parent_id("a")
                    .with_duration_us(1_000)
                    .with_usage(20, 2),
            )
            .with_step(
                Step::new(crate::StepKind::Agent)
                    .with_id("a")
                    .with_duration_us(2_500)
                    .with_usage(30, 3),
            );
        let s = TraceSummary::from(&trace);
        assert_eq!((s.input_tokens, s.output_tokens), (30, 3));
        assert_eq!(s.total_ms, 2.5);
    }

    #[test]
    fn a_long_chain_is_linear_not_quadratic() {
        // 200k nested steps, each with usage: only the deepest is counted. A quadratic
        // walk would take minutes here; this must take milliseconds.
        let mut trace = Trace::new("r");
        trace.steps = (0..200_000)
            .map(|i| {
                let step = Step::llm_call("m").with_id(i.to_string()).with_usage(1, 0);
                if i == 0 {
                    step.with_duration_us(1_000)
                } else {
                    step.with_parent_id((i - 1).to_string())
                }
            })
            .collect();
        let s = TraceSummary::from(&trace);
        assert_eq!((s.input_tokens, s.total_ms), (1, 1.0));
    }

    /// The rules of [`TraceSummary::from`], spelled out the slow way.
    fn reference(trace: &Trace) -> (u64, u64, f64) {
        let steps = &trace.steps;
        let n = steps.len();
        let named = |id: &str| steps.iter().rposition(|s| s.id.as_deref() == Some(id));
        let mut parent: Vec<Option<usize>> = steps
            .iter()
            .map(|s| s.parent_id.as_deref().and_then(named))
            .collect();
        // A step is on a loop if its parents lead back to it; cut each loop at its
        // lowest index.
        for i in 0..n {
            let mut lp = vec![i];
            let mut cur = parent[i];
            while let Some(p) = cur {
                if p == i {
                    if let Some(&first) = lp.iter().min() {
                        parent[first] = None;
                    }
                    break;
                }
                if lp.len() > n {
                    break;
                }
                lp.push(p);
                cur = parent[p];
            }
        }
        let ancestors = |i: usize| {
            let mut out = Vec::new();
            let mut cur = parent[i];
            while let Some(p) = cur.filter(|_| out.len() <= n) {
                out.push(p);
                cur = parent[p];
            }
            out
        };
        let covered: Vec<bool> = (0..n)
            .map(|a| (0..n).any(|s| carries_usage(&steps[s]) && ancestors(s).contains(&a)))
            .collect();
        let counted = (0..n).filter(|&i| !covered[i] && carries_usage(&steps[i]));
        let tokens = counted.clone().map(|i| steps[i].usage.input_tokens).sum();
        let calls = counted.count() as u64;
        let root_us: u64 = (0..n)
            .filter(|&i| parent[i].is_none())
            .map(|i| steps[i].duration_us)
            .sum();
        (tokens, calls, root_us as f64 / 1000.0)
    }

    proptest::proptest! {
        #[test]
        fn summary_follows_its_definition(
            shape in proptest::collection::vec(
                (0usize..6, 0usize..7, 0u64..3, 0u64..4),
                0..9,
            )
        ) {
            let ids = ["a", "b", "c", "d", "e"];
            let mut trace = Trace::new("r");
            trace.steps = shape
                .iter()
                .map(|&(id, parent, tokens, ms)| {
                    let mut step = Step::llm_call("m").with_usage(tokens, 0).with_duration_us(ms * 1000);
                    step.id = ids.get(id).map(|s| s.to_string());
                    step.parent_id = ids.get(parent).map(|s| s.to_string());
                    step
                })
                .collect();
            let s = TraceSummary::from(&trace);
            let (tokens, calls, total_ms) = reference(&trace);
            proptest::prop_assert_eq!(s.input_tokens, tokens);
            proptest::prop_assert_eq!(s.models.get("m").map_or(0, |m| m.calls), calls);
            proptest::prop_assert_eq!(s.total_ms, total_ms);
        }
    }

    #[test]
    fn stats_saturate_on_summaries_read_back_from_storage() {
        // Backends read summaries back from their own bytes; huge counts there must
        // saturate, not overflow (a panic in debug builds).
        let huge: TraceSummary = serde_json::from_value(serde_json::json!({
            "run_id": "r", "created_at": "2026-01-01T00:00:00Z", "steps": usize::MAX,
            "total_ms": 1.0, "error_count": u64::MAX, "input_tokens": u64::MAX,
            "models": {"m": {"calls": u64::MAX, "input_tokens": 1, "output_tokens": 1,
                             "cost_nano_usd": i64::MAX}}
        }))
        .unwrap();
        let stats: TraceStats = [&huge, &huge].into_iter().collect();
        assert_eq!(
            (
                stats.count,
                stats.steps,
                stats.error_count,
                stats.input_tokens
            ),
            (2, u64::MAX, u64::MAX, u64::MAX)
        );
        assert_eq!(stats.by_model["m"].calls, u64::MAX);
        assert_eq!(stats.by_model["m"].cost_nano_usd, i64::MAX);
    }

    #[test]
    fn stats_accumulate() {
        let a = TraceSummary::from(
            &Trace::new("a")
                .with_status(Status::Ok)
                .with_step(Step::llm_call("m").with_usage(3, 4).with_cost_nano_usd(5)),
        );
        let b = TraceSummary::from(&Trace::new("b").with_error(ErrorInfo::new("x")));
        let stats: TraceStats = [&a, &b].into_iter().collect();
        assert_eq!(stats.count, 2);
        assert_eq!(stats.by_status[&Status::Ok], 1);
        assert_eq!(stats.by_status[&Status::Error], 1);
        assert_eq!(stats.error_count, 1);
        assert_eq!(stats.by_model["m"].output_tokens, 4);
    }
}
