//! Traces the browser tests load: shaped like the demo's agents (nested agents, tool
//! calls with arguments, failures, sessions, sub-runs), with a few marked values the
//! tests search and filter for.

use serde_json::json;
use trace_store_core::{ErrorInfo, Score, Status, Step, StepKind, Timestamp, ToolCall, Trace};

const MINUTE: i64 = 60_000_000;

/// The run text search must find alone.
pub const SEARCH_RUN: &str = "run-research-06";
/// Words only SEARCH_RUN contains (in a tool argument).
pub const SEARCH_WORDS: &str = "quantum gardening";
/// The two runs with `user_id = u_special`.
pub const SPECIAL_USER_RUNS: [&str; 2] = ["run-support-07", "run-sql-11"];
/// A run started by PARENT_RUN.
pub const CHILD_RUN: &str = "run-parent.escalation";
pub const PARENT_RUN: &str = "run-parent";
/// The session with three turns.
pub const SESSION: &str = "chat-42";

fn at(now: Timestamp, minutes_ago: i64) -> Timestamp {
    now.saturating_add_micros(-minutes_ago * MINUTE)
}

fn llm(model: &str, prompt: &str, answer: &str, start: Timestamp, ms: u64) -> Step {
    Step::llm_call(model)
        .with_provider("openai")
        .with_usage(1200, 180)
        .with_cost_nano_usd(1200 * 150 + 180 * 600)
        .with_started_at(start)
        .with_duration_us(ms * 1000)
        .with_status(Status::Ok)
        .with_input(json!([
            {"role": "system", "content": "You are a careful research assistant."},
            {"role": "user", "content": prompt}
        ]))
        .with_output(json!({"role": "assistant", "content": answer}))
        .with_attribute("cost.source", "computed")
}

fn tool(
    name: &str,
    args: serde_json::Value,
    result: serde_json::Value,
    start: Timestamp,
    ms: u64,
) -> Step {
    Step::tool_call(name)
        .with_started_at(start)
        .with_duration_us(ms * 1000)
        .with_status(Status::Ok)
        .with_input(args)
        .with_output(result)
}

/// A research run: agent > (plan, web-researcher > (failed search, searches, summary)).
pub fn research(run_id: &str, topic: &str, created: Timestamp) -> Trace {
    let t = |ms: i64| created.saturating_add_micros(ms * 1000);
    let mut failed = Step::tool_call("web_search")
        .with_id("s3")
        .with_parent_id("s2")
        .with_started_at(t(900))
        .with_duration_us(310_000)
        .with_input(json!({"q": topic, "page": 1}))
        .with_error(
            ErrorInfo::new("429 Too Many Requests: retry after 2s").with_type("RateLimitError"),
        );
    failed.tool = Some(ToolCall::new("web_search").with_call_id("call_1"));
    Trace::new(run_id)
        .with_name("research-agent")
        .with_created_at(created)
        .with_ended_at(t(5200))
        .with_status(Status::Ok)
        .with_metadata("user_id", "u_01")
        .with_metadata("env", "prod")
        .with_metadata("topic", topic)
        .with_step(
            Step::new(StepKind::Agent)
                .with_id("s1")
                .with_name("research-agent")
                .with_started_at(t(0))
                .with_duration_us(5_100_000)
                .with_status(Status::Ok),
        )
        .with_step(
            llm(
                "claude-3-5-sonnet",
                &format!("Plan a report on {topic}."),
                "1. search 2. read",
                t(20),
                700,
            )
            .with_id("p1")
            .with_parent_id("s1"),
        )
        .with_step(
            Step::new(StepKind::Agent)
                .with_id("s2")
                .with_parent_id("s1")
                .with_name("web-researcher")
                .with_started_at(t(800))
                .with_duration_us(3_900_000)
                .with_status(Status::Ok),
        )
        .with_step(failed)
        .with_step(
            tool(
                "web_search",
                json!({"q": topic, "page": 1}),
                json!({"results": 10}),
                t(1300),
                900,
            )
            .with_id("s4")
            .with_parent_id("s2"),
        )
        // Two searches in parallel: their bars overlap on the time axis.
        .with_step(
            tool(
                "web_search",
                json!({"q": topic, "page": 2}),
                json!({"results": 8}),
                t(2300),
                800,
            )
            .with_id("s5")
            .with_parent_id("s2"),
        )
        .with_step(
            tool(
                "fetch_page",
                json!({"url": "https://example.org/a"}),
                json!({"bytes": 5120}),
                t(2350),
                700,
            )
            .with_id("s6")
            .with_parent_id("s2"),
        )
        .with_step(
            llm(
                "gpt-4o-mini",
                "Summarise these sources.",
                "Five key findings...",
                t(3200),
                1400,
            )
            .with_id("s7")
            .with_parent_id("s2"),
        )
        .with_step(
            llm(
                "claude-3-5-sonnet",
                "Write the report.",
                &format!("Report on {topic}: ..."),
                t(4700),
                400,
            )
            .with_id("s8")
            .with_parent_id("s1"),
        )
}

fn support(run_id: &str, user: &str, created: Timestamp, failed: bool) -> Trace {
    let t = |ms: i64| created.saturating_add_micros(ms * 1000);
    let mut trace = Trace::new(run_id)
        .with_name("support-bot")
        .with_created_at(created)
        .with_ended_at(t(2600))
        .with_status(if failed { Status::Error } else { Status::Ok })
        .with_metadata("user_id", user)
        .with_metadata("env", "prod")
        .with_metadata("channel", "web")
        .with_step(
            llm(
                "gpt-4o-mini",
                "Where is my order #A-1042?",
                "Let me look that up.",
                t(0),
                800,
            )
            .with_id("a1"),
        )
        .with_step(
            tool(
                "lookup_order",
                json!({"order": "A-1042"}),
                json!({"status": "shipped"}),
                t(850),
                300,
            )
            .with_id("a2"),
        )
        .with_step(
            llm(
                "gpt-4o-mini",
                "Answer with the tool result.",
                "Your order ships tomorrow.",
                t(1200),
                1300,
            )
            .with_id("a3"),
        );
    if failed {
        trace = trace.with_error(
            ErrorInfo::new("the model returned no answer").with_type("AgentStalledError"),
        );
    }
    trace
}

fn sql(run_id: &str, user: &str, created: Timestamp) -> Trace {
    let t = |ms: i64| created.saturating_add_micros(ms * 1000);
    Trace::new(run_id)
        .with_name("sql-analyst")
        .with_created_at(created)
        .with_status(Status::Ok)
        .with_metadata("user_id", user)
        .with_metadata("env", "staging")
        .with_step(
            llm(
                "gpt-4o",
                "Weekly revenue by region?",
                "SELECT region, sum(total) FROM orders GROUP BY 1",
                t(0),
                900,
            )
            .with_id("q1"),
        )
        .with_step(
            tool(
                "run_sql",
                json!({"sql": "SELECT region, sum(total) FROM orders GROUP BY 1"}),
                json!({"rows": 6}),
                t(950),
                250,
            )
            .with_id("q2"),
        )
}

/// Sixty-five runs over the last two weeks (more than one page of 50), newest first in time order of creation.
pub fn sample(now: Timestamp) -> Vec<Trace> {
    let topics = [
        "vector databases",
        "battery recycling",
        "rust async runtimes",
        "EU AI act",
    ];
    let mut traces = Vec::new();
    for k in 0..60_i64 {
        let created = at(now, 30 + k * 300);
        let user = format!("u_{:02}", k % 5);
        let run_id = match k % 3 {
            0 => format!("run-research-{k:02}"),
            1 => format!("run-support-{k:02}"),
            _ => format!("run-sql-{k:02}"),
        };
        let mut trace = if run_id == SEARCH_RUN {
            research(&run_id, SEARCH_WORDS, created)
        } else if run_id.starts_with("run-research") {
            research(&run_id, topics[(k as usize / 3) % topics.len()], created)
        } else if run_id.starts_with("run-support") {
            support(&run_id, &user, created, k % 7 == 4)
        } else {
            sql(&run_id, &user, created)
        };
        if SPECIAL_USER_RUNS.contains(&run_id.as_str()) {
            trace.metadata.insert("user_id".into(), json!("u_special"));
        }
        if k % 9 == 2 {
            trace.add_score(
                Score::new("user_feedback")
                    .with_value(0.0)
                    .with_comment("wrong order"),
            );
        }
        traces.push(trace);
    }
    for (turn, question) in [
        "Hi, I need help with an order",
        "It is order A-1042",
        "Thanks, that works",
    ]
    .iter()
    .enumerate()
    {
        let created = at(now, 20 - turn as i64 * 5);
        let mut trace = support(
            &format!("chat-42-turn-{}", turn + 1),
            "u_03",
            created,
            false,
        )
        .with_session_id(SESSION);
        trace.steps[0].input = Some(json!([{"role": "user", "content": question}]));
        traces.push(trace);
    }
    let parent_at = at(now, 3 * 24 * 60);
    traces.push(support(PARENT_RUN, "u_04", parent_at, false));
    traces.push(
        sql(
            CHILD_RUN,
            "u_04",
            parent_at.saturating_add_micros(2_000_000),
        )
        .with_parent_run_id(PARENT_RUN),
    );
    traces
}

/// A run with `steps` steps: nested groups of ten, one failure near the end, and
/// `payload_steps` steps carrying about `payload_bytes` of chat text each.
pub fn large(
    run_id: &str,
    steps: usize,
    payload_steps: usize,
    payload_bytes: usize,
    now: Timestamp,
) -> Trace {
    let created = at(now, 2);
    let mut trace = Trace::new(run_id)
        .with_name("large-agent")
        .with_created_at(created)
        .with_status(Status::Ok);
    let filler = "lorem ipsum dolor sit amet ".repeat(payload_bytes / 27 + 1);
    for i in 0..steps {
        let start = created.saturating_add_micros(i as i64 * 2_000);
        let mut step = if i % 10 == 0 {
            Step::new(StepKind::Chain)
                .with_name(format!("group {}", i / 10))
                .with_duration_us(20_000)
        } else {
            Step::llm_call("gpt-4o-mini")
                .with_usage(100, 20)
                .with_cost_nano_usd(27_000)
                .with_duration_us(1_800)
        };
        step = step
            .with_id(format!("s{i}"))
            .with_started_at(start)
            .with_status(Status::Ok);
        if i % 10 != 0 {
            step = step.with_parent_id(format!("s{}", i - i % 10));
        }
        if i < payload_steps {
            step = step.with_input(json!([{"role": "user", "content": filler.clone()}]));
        }
        if i == steps - 5 {
            step = step.with_error(ErrorInfo::new("deep failure").with_type("DeepError"));
        }
        trace.steps.push(step);
    }
    trace
}
