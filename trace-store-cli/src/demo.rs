//! `demo`: a deterministic, realistic sample of agent runs.
//!
//! Four agents (a flat support bot, a research agent with a nested sub-agent, a code
//! reviewer chain, a SQL analyst that retries its own mistakes), eight users, tool
//! failures that are recovered and runs that fail, spread over the last 30 days. The
//! content depends only on the run number, so running `demo` twice replaces the same
//! run_ids instead of adding more; only the times move with the clock.

use std::io::Write;

use serde_json::{Value, json};
use trace_store::{
    ErrorInfo, Score, ScoreSource, Status, Step, StepKind, Timestamp, Trace, TraceStore,
};

use crate::error::CliResult;
use crate::store::{Need, command_for, open};

/// The run `demo` suggests to `show`: a research run with nesting and a failed tool call.
const SHOWCASE: usize = 7;
const MINUTE: i64 = 60_000_000;
const DAY: i64 = 24 * 60 * MINUTE;

/// Top-level runs `demo` and `serve --demo` create by default.
pub(crate) const DEFAULT_RUNS: usize = 120;

pub(crate) fn run(url: &str, runs: usize, json: bool, out: &mut dyn Write) -> CliResult {
    let store = open(url, Need::Create)?;
    let traces = generate(runs, Timestamp::now());
    store.save_many(&traces)?;
    let cmd = command_for(url);
    let showcase = run_id(SHOWCASE.min(runs));
    let next = [
        format!("{cmd} list"),
        format!("{cmd} query --name research-agent --meta env=prod --since 14d"),
        format!("{cmd} show {showcase}"),
    ];
    if json {
        return crate::print_json(
            out,
            &json!({"saved": traces.len(), "store": crate::store::display(url), "try_next": next}),
        );
    }
    writeln!(
        out,
        "saved {} sample agent runs (4 agents, 8 users, the last 30 days) to {}",
        traces.len(),
        crate::store::display(url)
    )?;
    if url.starts_with("memory:") {
        writeln!(
            out,
            "note: memory:// keeps nothing after this command; use sqlite://traces.db or jsonl://traces.jsonl to keep them"
        )?;
    }
    writeln!(out, "\ntry next:")?;
    for line in &next {
        writeln!(out, "  {line}")?;
    }
    Ok(())
}

fn run_id(number: usize) -> String {
    format!("demo-{number:04}")
}

/// The sample: `runs` top-level runs (`demo-0001`...) plus the sub-runs some of them
/// start (`demo-0012.escalation`), created before `now`.
pub(crate) fn generate(runs: usize, now: Timestamp) -> Vec<Trace> {
    let mut traces = Vec::with_capacity(runs + runs / 5);
    for number in 1..=runs {
        let mut rng = Rng(0x5EED_0000 + number as u64);
        let age = rng.below((30 * DAY) as u64) as i64;
        let created_at = now.saturating_add_micros(-age - MINUTE);
        let user = format!("u_{:02}", 1 + rng.below(8));
        let env = if rng.chance(0.8) { "prod" } else { "staging" };
        let agent = if number == SHOWCASE { 1 } else { rng.below(4) };
        let mut run = Run::new(rng, created_at);
        let mut trace = Trace::new(run_id(number))
            .with_created_at(created_at)
            .with_metadata("user_id", user.as_str())
            .with_metadata("env", env);
        let escalate = match agent {
            0 => {
                trace = trace.with_name("support-bot");
                support_bot(&mut run, &mut trace)
            }
            1 => {
                trace = trace.with_name("research-agent");
                research_agent(&mut run, &mut trace, number == SHOWCASE);
                false
            }
            2 => {
                trace = trace.with_name("code-reviewer");
                code_reviewer(&mut run, &mut trace);
                false
            }
            _ => {
                trace = trace
                    .with_name("sql-analyst")
                    .with_metadata("database", "analytics");
                sql_analyst(&mut run);
                false
            }
        };
        let failed = number != SHOWCASE && run.rng.chance(0.07);
        let running = number != SHOWCASE && !failed && age < 20 * MINUTE;
        finish(&mut run, &mut trace, failed, running);
        sessions_and_scores(&mut trace, number, &user, created_at);
        if escalate {
            let started = Timestamp::from_micros(run.clock).unwrap_or(created_at);
            let mut sub = Run::new(run.rng.clone(), started);
            let mut child = Trace::new(format!("{}.escalation", trace.run_id))
                .with_name("sql-analyst")
                .with_parent_run_id(trace.run_id.clone())
                .with_created_at(started)
                .with_metadata("user_id", user.as_str())
                .with_metadata("env", env)
                .with_metadata("database", "orders");
            sql_analyst(&mut sub);
            finish(&mut sub, &mut child, false, false);
            traces.push(child);
        }
        traces.push(trace);
    }
    traces
}

/// Support conversations of one user on one day are one session; some runs carry a
/// user's thumbs up or down and research runs an LLM judge's grade. Derived from the
/// run's number, not drawn from its generator, so the rest of the sample stays as it was.
fn sessions_and_scores(trace: &mut Trace, number: usize, user: &str, created_at: Timestamp) {
    if trace.name.as_deref() == Some("support-bot") {
        let day = created_at.to_datetime().format("%Y%m%d");
        trace.session_id = Some(format!("chat-{user}-{day}"));
    }
    let at = trace.ended_at.unwrap_or(created_at);
    if number.is_multiple_of(5) {
        let thumbs_up = trace.status != Status::Error && !number.is_multiple_of(3);
        let mut score = Score::new("user_feedback")
            .with_value(if thumbs_up { 1.0 } else { 0.0 })
            .with_created_at(at);
        if !thumbs_up {
            score = score.with_comment("the answer did not solve my problem");
        }
        trace.add_score(score);
    }
    if trace.name.as_deref() == Some("research-agent") {
        let grade = 0.55 + (number % 9) as f64 * 0.05;
        trace.add_score(
            Score::new("faithfulness")
                .with_source(ScoreSource::Llm)
                .with_value((grade * 100.0).round() / 100.0)
                .with_created_at(at),
        );
    }
}

fn finish(run: &mut Run, trace: &mut Trace, failed: bool, running: bool) {
    if failed {
        let error = ErrorInfo::new("the model returned no tool call and no answer after 3 attempts")
            .with_type("AgentStalledError")
            .with_stacktrace(
                "Traceback (most recent call last):\n  File \"agent/loop.py\", line 212, in run\n    step = self._next_step(state)\n  File \"agent/loop.py\", line 148, in _next_step\n    raise AgentStalledError(attempts=3)\nAgentStalledError: the model returned no tool call and no answer after 3 attempts",
            );
        let mut step = Step::new(StepKind::Error).with_error(error.clone());
        step.started_at = Timestamp::from_micros(run.clock).ok();
        run.steps.push(step);
        trace.status = Status::Error;
        trace.error = Some(error);
    } else {
        trace.status = if running { Status::Running } else { Status::Ok };
    }
    if !running {
        trace.ended_at = Timestamp::from_micros(run.clock + 1_500).ok();
    }
    trace.steps = std::mem::take(&mut run.steps);
}

/// splitmix64: tiny, fast and deterministic, which is all a sample needs.
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high - low + 1)
    }

    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

struct Model {
    name: &'static str,
    provider: &'static str,
    /// nano-USD per input and per output token.
    input_price: i64,
    output_price: i64,
}

const GPT_4O_MINI: Model = Model {
    name: "gpt-4o-mini",
    provider: "openai",
    input_price: 150,
    output_price: 600,
};
const GPT_4O: Model = Model {
    name: "gpt-4o",
    provider: "openai",
    input_price: 2_500,
    output_price: 10_000,
};
const CLAUDE: Model = Model {
    name: "claude-3-5-sonnet",
    provider: "anthropic",
    input_price: 3_000,
    output_price: 15_000,
};
const LLAMA: Model = Model {
    name: "llama-3.1-70b",
    provider: "meta",
    input_price: 880,
    output_price: 880,
};

/// Builds the steps of one run on a clock that advances as work is recorded.
struct Run {
    rng: Rng,
    clock: i64,
    steps: Vec<Step>,
}

impl Run {
    fn new(rng: Rng, start: Timestamp) -> Run {
        Run {
            rng,
            clock: start.as_micros(),
            steps: Vec::new(),
        }
    }

    fn id(&self) -> String {
        format!("s{}", self.steps.len() + 1)
    }

    /// Records a finished step that took `micros`, under `parent`.
    fn leaf(&mut self, step: Step, parent: Option<&str>, micros: u64) -> String {
        let id = self.id();
        let mut step = step
            .with_id(id.clone())
            .with_duration_us(micros)
            .with_started_at(Timestamp::from_micros(self.clock).unwrap_or_default());
        if step.status == Status::Unset {
            step.status = Status::Ok;
        }
        step.parent_id = parent.map(str::to_owned);
        self.steps.push(step);
        self.clock += micros as i64 + self.rng.between(200, 3_000) as i64;
        id
    }

    /// Opens a span; its children follow; [`Run::close`] sets its duration.
    fn open(&mut self, step: Step, parent: Option<&str>) -> (usize, String) {
        let id = self.id();
        let mut step = step
            .with_id(id.clone())
            .with_status(Status::Ok)
            .with_started_at(Timestamp::from_micros(self.clock).unwrap_or_default());
        step.parent_id = parent.map(str::to_owned);
        self.steps.push(step);
        self.clock += self.rng.between(500, 4_000) as i64;
        (self.steps.len() - 1, id)
    }

    fn close(&mut self, index: usize) {
        self.clock += self.rng.between(300, 2_000) as i64;
        let start = self.steps[index]
            .started_at
            .map_or(self.clock, Timestamp::as_micros);
        self.steps[index].duration_us = (self.clock - start).max(0) as u64;
    }

    fn llm(&mut self, model: &Model, parent: Option<&str>, prompt: &str, answer: &str) -> String {
        let input_tokens = self.rng.between(300, 4_000);
        let output_tokens = self.rng.between(20, 700);
        let micros = 250_000 + output_tokens * self.rng.between(9_000, 25_000);
        let cost =
            input_tokens as i64 * model.input_price + output_tokens as i64 * model.output_price;
        let step = Step::llm_call(model.name)
            .with_provider(model.provider)
            .with_usage(input_tokens, output_tokens)
            .with_cost_nano_usd(cost)
            .with_input(json!({"messages": [{"role": "user", "content": prompt}]}))
            .with_output(json!({"role": "assistant", "content": answer}));
        self.leaf(step, parent, micros)
    }

    fn tool(
        &mut self,
        name: &str,
        parent: Option<&str>,
        args: Value,
        result: Value,
        micros: (u64, u64),
    ) -> String {
        let micros = self.rng.between(micros.0, micros.1);
        let step = Step::tool_call(name).with_input(args).with_output(result);
        self.leaf(step, parent, micros)
    }

    fn failed_tool(
        &mut self,
        name: &str,
        parent: Option<&str>,
        args: Value,
        error: ErrorInfo,
        micros: u64,
    ) {
        let step = Step::tool_call(name).with_input(args).with_error(error);
        self.leaf(step, parent, micros);
    }
}

/// A flat run: guardrail, model, tool choice, tool, answer. Returns whether it escalates
/// to a sub-run.
fn support_bot(run: &mut Run, trace: &mut Trace) -> bool {
    let questions = [
        "Where is my order #A-1042?",
        "Can I get a refund for a damaged item?",
        "How do I change my delivery address?",
        "My discount code does not work.",
    ];
    let question = *run.rng.pick(&questions);
    let channel = *run.rng.pick(&["web", "email", "slack"]);
    trace.metadata.insert("channel".into(), json!(channel));
    let model = if run.rng.chance(0.5) {
        &GPT_4O_MINI
    } else {
        &LLAMA
    };
    let micros = run.rng.between(8_000, 40_000);
    run.leaf(
        Step::new(StepKind::Guardrail)
            .with_name("input-policy")
            .with_output(json!({"allowed": true})),
        None,
        micros,
    );
    run.llm(model, None, question, "I will look that up.");
    let tool = *run
        .rng
        .pick(&["lookup_order", "search_kb", "refund_policy"]);
    let mut selection = Step::new(StepKind::ToolSelection).with_name("choose-tool");
    selection.tool = Some(trace_store::ToolCall::new(tool));
    let micros = run.rng.between(5_000, 30_000);
    run.leaf(selection, None, micros);
    if run.rng.chance(0.12) {
        let error = ErrorInfo::new("upstream did not answer within 5s").with_type("TimeoutError");
        run.failed_tool(tool, None, json!({"query": question}), error, 5_000_000);
    }
    run.tool(
        tool,
        None,
        json!({"query": question}),
        json!({"status": "found", "items": 1}),
        (40_000, 900_000),
    );
    if run.rng.chance(0.2) {
        let micros = run.rng.between(2_000, 9_000);
        run.leaf(
            Step::new(StepKind::CacheHit)
                .with_model(model.name)
                .with_name("answer-cache"),
            None,
            micros,
        );
    } else {
        run.llm(
            model,
            None,
            "Answer the customer with the tool result.",
            "Your order ships tomorrow.",
        );
    }
    run.rng.chance(0.15)
}

/// A nested run: agent span, planning call, a sub-agent with searches and retrieval,
/// then the final answer.
fn research_agent(run: &mut Run, trace: &mut Trace, showcase: bool) {
    let topics = [
        "vector databases",
        "battery recycling",
        "rust async runtimes",
        "EU AI act",
    ];
    let topic = *run.rng.pick(&topics);
    trace.metadata.insert("topic".into(), json!(topic));
    let (root, root_id) = run.open(Step::new(StepKind::Agent).with_name("research-agent"), None);
    run.llm(
        &CLAUDE,
        Some(&root_id),
        &format!("Plan a short report on {topic}."),
        "1. search 2. read 3. summarise",
    );
    let (sub, sub_id) = run.open(
        Step::new(StepKind::Agent).with_name("web-researcher"),
        Some(&root_id),
    );
    let searches = run.rng.between(2, 3);
    for i in 0..searches {
        if (showcase && i == 0) || run.rng.chance(0.08) {
            let error =
                ErrorInfo::new("429 Too Many Requests: retry after 2s").with_type("RateLimitError");
            run.failed_tool(
                "web_search",
                Some(&sub_id),
                json!({"q": topic, "page": i + 1}),
                error,
                310_000,
            );
        }
        run.tool(
            "web_search",
            Some(&sub_id),
            json!({"q": topic, "page": i + 1}),
            json!({"results": 10}),
            (300_000, 1_800_000),
        );
    }
    let micros = run.rng.between(20_000, 120_000);
    run.leaf(
        Step::new(StepKind::Retrieval)
            .with_name("vector-store")
            .with_input(json!({"query": topic, "k": 8}))
            .with_output(json!({"chunks": 8})),
        Some(&sub_id),
        micros,
    );
    run.llm(
        &GPT_4O_MINI,
        Some(&sub_id),
        "Summarise these sources.",
        "Five key findings...",
    );
    run.close(sub);
    run.llm(&CLAUDE, Some(&root_id), "Write the report.", "Report: ...");
    run.close(root);
}

/// A chain: fetch the diff, review each file, post a comment.
fn code_reviewer(run: &mut Run, trace: &mut Trace) {
    let pr = 100 + run.rng.below(400);
    trace.metadata.insert("repo".into(), json!("acme/webshop"));
    trace.metadata.insert("pr".into(), json!(pr));
    let (root, root_id) = run.open(Step::new(StepKind::Chain).with_name("review-pr"), None);
    let files = run.rng.between(2, 4);
    run.tool(
        "fetch_diff",
        Some(&root_id),
        json!({"pr": pr}),
        json!({"files": files}),
        (80_000, 400_000),
    );
    for file in 0..files {
        let id = run.llm(
            &GPT_4O,
            Some(&root_id),
            &format!("Review file {file} of PR {pr}."),
            "Two suggestions.",
        );
        if let Some(step) = run
            .steps
            .iter_mut()
            .find(|s| s.id.as_deref() == Some(id.as_str()))
        {
            step.name = Some(format!("review file {}", file + 1));
        }
    }
    run.tool(
        "post_comment",
        Some(&root_id),
        json!({"pr": pr, "body": "Looks good with two suggestions."}),
        json!({"comment_id": pr * 10 + 1}),
        (90_000, 300_000),
    );
    run.close(root);
}

/// Write SQL, run it, fix it when it fails, explain the result, remember it.
fn sql_analyst(run: &mut Run) {
    run.llm(
        &GPT_4O,
        None,
        "Weekly revenue by region?",
        "SELECT region, sum(total) FORM orders GROUP BY 1",
    );
    let query = json!({"sql": "SELECT region, sum(total) FROM orders GROUP BY 1"});
    if run.rng.chance(0.3) {
        let error =
            ErrorInfo::new("near \"FORM\": syntax error").with_type("sqlite3.OperationalError");
        run.failed_tool("run_sql", None, query.clone(), error, 12_000);
        run.llm(
            &GPT_4O_MINI,
            None,
            "Fix this SQL error.",
            "SELECT region, sum(total) FROM orders GROUP BY 1",
        );
    }
    run.tool(
        "run_sql",
        None,
        query,
        json!({"rows": 6}),
        (30_000, 2_500_000),
    );
    run.llm(
        &GPT_4O_MINI,
        None,
        "Explain the result.",
        "EMEA grew 12% week over week.",
    );
    let micros = run.rng.between(1_000, 8_000);
    run.leaf(
        Step::new(StepKind::Memory)
            .with_name("remember-answer")
            .with_input(json!({"key": "weekly-revenue"})),
        None,
        micros,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use trace_store::TraceSummary;

    #[test]
    fn deterministic_valid_and_varied() {
        let now: Timestamp = "2026-02-01T00:00:00Z".parse().unwrap();
        let a = generate(120, now);
        assert_eq!(a, generate(120, now));
        assert!(a.len() > 120, "some runs start sub-runs");
        let mut names = std::collections::BTreeSet::new();
        let mut statuses = std::collections::BTreeSet::new();
        for trace in &a {
            trace.validate().unwrap();
            assert!(trace.created_at < now);
            assert!(now.as_micros() - trace.created_at.as_micros() <= 30 * DAY + MINUTE);
            names.insert(trace.name.clone().unwrap());
            statuses.insert(trace.status);
            if let Some(parent) = &trace.parent_run_id {
                assert!(a.iter().any(|t| &t.run_id == parent));
            }
        }
        assert_eq!(names.len(), 4);
        assert!(statuses.contains(&Status::Ok) && statuses.contains(&Status::Error));

        let showcase = a.iter().find(|t| t.run_id == run_id(SHOWCASE)).unwrap();
        let summary = TraceSummary::from(showcase);
        assert_eq!(showcase.name.as_deref(), Some("research-agent"));
        assert!(summary.error_count >= 1);
        assert!(showcase.steps.iter().any(|s| s.parent_id.is_some()));
        // The root agent span covers its children.
        let root = &showcase.steps[0];
        let end = |s: &Step| s.started_at.unwrap().as_micros() + s.duration_us as i64;
        assert!(showcase.steps.iter().all(|s| end(s) <= end(root)));
    }
}
