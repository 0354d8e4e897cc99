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
    fn add(&mut self, other: &ModelUsage) {
        self.calls += other.calls;
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

impl From<&Trace> for TraceSummary {
    /// Derives the summary.
    ///
    /// - `total_ms`: sum of `duration_us` of root steps, whose `parent_id` is unset or
    ///   names no step of this trace, so nested spans are not counted twice;
    /// - tokens and cost: summed over steps, skipping a step any of whose descendants
    ///   also carries usage or cost (an aggregate span that repeats its children);
    /// - `error_count`: steps with status error, plus one if the run's status is error.
    fn from(trace: &Trace) -> TraceSummary {
        let steps = &trace.steps;
        let index_of: HashMap<&str, usize> = steps
            .iter()
            .enumerate()
            .filter_map(|(i, step)| step.id.as_deref().map(|id| (id, i)))
            .collect();
        let parent_of = |step: &Step| {
            step.parent_id
                .as_deref()
                .and_then(|parent| index_of.get(parent).copied())
        };

        // Mark every ancestor of a step that carries usage; the bound on the walk makes
        // parent cycles in bad input harmless.
        let mut covered_by_descendant = vec![false; steps.len()];
        for step in steps.iter().filter(|s| carries_usage(s)) {
            let mut current = parent_of(step);
            let mut hops = 0;
            while let Some(parent) = current {
                if covered_by_descendant[parent] || hops > steps.len() {
                    break;
                }
                covered_by_descendant[parent] = true;
                current = parent_of(&steps[parent]);
                hops += 1;
            }
        }

        let mut summary = TraceSummary {
            run_id: trace.run_id.clone(),
            name: trace.name.clone(),
            status: trace.status,
            created_at: trace.created_at,
            steps: steps.len(),
            total_ms: 0.0,
            error_count: u64::from(trace.status == Status::Error),
            input_tokens: 0,
            output_tokens: 0,
            cost_nano_usd: 0,
            models: BTreeMap::new(),
            metadata: trace.metadata.clone(),
        };
        let mut root_us: u64 = 0;
        for (i, step) in steps.iter().enumerate() {
            if parent_of(step).is_none() {
                root_us = root_us.saturating_add(step.duration_us);
            }
            if step.status == Status::Error {
                summary.error_count += 1;
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
    /// Traces per status (statuses with no trace are absent).
    pub by_status: BTreeMap<Status, u64>,
    /// Calls, tokens and cost per model.
    pub by_model: BTreeMap<String, ModelUsage>,
}

impl TraceStats {
    /// Adds one trace.
    pub fn add(&mut self, summary: &TraceSummary) {
        self.count += 1;
        self.steps += summary.steps as u64;
        self.input_tokens = self.input_tokens.saturating_add(summary.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(summary.output_tokens);
        self.cost_nano_usd = self.cost_nano_usd.saturating_add(summary.cost_nano_usd);
        self.total_ms += summary.total_ms;
        self.error_count += summary.error_count;
        *self.by_status.entry(summary.status).or_default() += 1;
        for (model, usage) in &summary.models {
            self.by_model.entry(model.clone()).or_default().add(usage);
        }
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
    fn parent_cycles_terminate() {
        let trace = Trace::new("r")
            .with_step(
                Step::llm_call("m")
                    .with_id("x")
                    .with_parent_id("y")
                    .with_usage(1, 1),
            )
            .with_step(
                Step::llm_call("m")
                    .with_id("y")
                    .with_parent_id("x")
                    .with_usage(2, 2),
            );
        let s = TraceSummary::from(&trace);
        assert_eq!(s.total_ms, 0.0);
        assert_eq!(
            s.input_tokens, 0,
            "each step of a cycle has a descendant with usage"
        );
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
