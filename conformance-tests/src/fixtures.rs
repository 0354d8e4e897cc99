//! Traces the cases save, and small helpers to check answers.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use trace_store_core::{
    Error, ErrorInfo, Result, Status, Step, StepKind, Timestamp, ToolCall, Trace, TraceFilter,
    TraceSummary, Usage,
};

/// A fixed instant, `micros` µs after 2026-01-01T00:00:00Z, so runs are reproducible.
pub fn at(micros: i64) -> Timestamp {
    const BASE: i64 = 1_767_225_600_000_000;
    Timestamp::from_micros(BASE + micros).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// A trace with `steps` plain steps, created at `at(micros)`.
pub fn trace(run_id: &str, micros: i64, steps: usize) -> Trace {
    let mut trace = Trace::new(run_id).with_created_at(at(micros));
    trace.steps = (0..steps)
        .map(|i| {
            Step::llm_call("gpt-4o-mini")
                .with_usage(10 + i as u64, 5)
                .with_cost_nano_usd(1_000 + i as i64)
                .with_duration_us(1_000)
        })
        .collect();
    trace
}

/// A trace with one metadata entry.
pub fn with_meta(run_id: &str, micros: i64, key: &str, value: Value) -> Trace {
    trace(run_id, micros, 1).with_metadata(key, value)
}

/// A trace that sets every field of the model, with every JSON type and every step kind.
pub fn everything(run_id: &str) -> Trace {
    let every_json = json!({
        "null": null, "true": true, "false": false,
        "zero": 0, "neg": -42, "u64_max": u64::MAX, "i64_min": i64::MIN,
        "float": 0.1, "tiny": 1e-300, "huge": 1.7976931348623157e308, "neg_float": -2.5,
        "string": "line\nbreak\t\"quoted\" \\ back \u{0} nul \u{1f} unit",
        "unicode": "héllo wörld — 日本語 — 🦀👩‍💻 — مرحبا",
        "empty_string": "", "empty_array": [], "empty_object": {},
        "nested": {"b": [1, [2, [3, {"c": null}]]], "a": {"z": 1, "y": [true, false]}}
    });
    let kinds = [
        "llm_call",
        "tool_call",
        "tool_selection",
        "retrieval",
        "embedding",
        "agent",
        "chain",
        "guardrail",
        "cache_hit",
        "memory",
        "error",
        "planner",
        "custom.kind/with:odd chars",
    ];
    let mut steps: Vec<Step> = kinds
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut step = Step::new(StepKind::from_name(name))
                .with_id(format!("s{i}"))
                .with_name(format!("step {i} «{name}»"))
                .with_started_at(at(1_000 + i as i64))
                .with_duration_us(1 + i as u64 * 1_000)
                .with_status(Status::Ok)
                .with_attribute("index", i)
                .with_attribute("every_json", every_json.clone());
            if i > 0 {
                step = step.with_parent_id(format!("s{}", i / 2));
            }
            step
        })
        .collect();
    steps[0] = steps[0]
        .clone()
        .with_model("claude-3-5-sonnet")
        .with_provider("anthropic")
        .with_cost_nano_usd(-7)
        .with_input(Value::Null)
        .with_output(every_json.clone());
    let usage = &mut steps[0].usage;
    *usage = Usage::new(1, 2);
    usage.cache_read_input_tokens = 3;
    usage.cache_creation_input_tokens = 4;
    usage.reasoning_tokens = u64::MAX;
    steps[1].tool = Some(ToolCall::new("search").with_call_id("call_123"));
    steps[1].input = Some(json!({"q": "rust", "n": 3}));
    steps[1].output = Some(json!(["a", 1, null]));
    steps[2] = steps[2].clone().with_error(
        ErrorInfo::new("timed out")
            .with_type("TimeoutError")
            .with_stacktrace("Traceback (most recent call last):\n  File \"x.py\", line 1"),
    );
    let mut trace = Trace::new(run_id)
        .with_name("everything-agent")
        .with_parent_run_id("parent/run:1")
        .with_created_at(at(123_456))
        .with_ended_at(at(9_999_999))
        .with_error(ErrorInfo::new("run failed").with_type("RuntimeError"))
        .with_metadata("every_json", every_json)
        .with_metadata("user_id", "u_1");
    trace.steps = steps;
    trace
}

/// run_ids that are legal and must work in every backend.
pub fn odd_run_ids() -> Vec<String> {
    let mut ids: Vec<String> = [
        "a b",
        "x:y*{z}",
        "%_",
        "'",
        "\"",
        "'; DROP TABLE traces; --",
        "\"); redis.call('FLUSHALL'); --",
        "{prefix}:trace:1",
        "*",
        "?",
        "[a-z]",
        "\\",
        "/",
        "../../etc/passwd",
        " leading and trailing ",
        "é",
        "日本語のラン",
        "🦀",
        "NULL",
        "0",
        "-1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    ids.push("x".repeat(256));
    ids.push("é".repeat(128));
    ids
}

/// run_ids that every store must reject on save.
pub fn invalid_run_ids() -> Vec<String> {
    vec![
        String::new(),
        "x".repeat(257),
        "é".repeat(128) + "x",
        "line\nbreak".into(),
        "nul\0byte".into(),
        "tab\t".into(),
        "del\u{7f}".into(),
        "\u{1b}[31m".into(),
    ]
}

/// The run_ids of summaries, in order.
pub fn ids(summaries: &[TraceSummary]) -> Vec<&str> {
    summaries.iter().map(|s| s.run_id.as_str()).collect()
}

/// Panics unless `result` is `Error::InvalidInput`.
#[track_caller]
pub fn assert_invalid<T: std::fmt::Debug>(result: Result<T>, what: &str) {
    match result {
        Err(Error::InvalidInput { message }) => {
            assert!(
                !message.is_empty(),
                "{what}: InvalidInput without a message"
            )
        }
        other => panic!("{what}: expected Error::InvalidInput, got {other:?}"),
    }
}

/// Panics unless `result` is `Error::NotFound` naming `run_id`.
#[track_caller]
pub fn assert_not_found<T: std::fmt::Debug>(result: Result<T>, run_id: &str) {
    match result {
        Err(Error::NotFound { run_id: found }) => {
            assert_eq!(found, run_id, "NotFound names the wrong run_id")
        }
        other => panic!("load({run_id:?}): expected Error::NotFound, got {other:?}"),
    }
}

/// Unwraps a store answer, naming the operation that failed.
#[track_caller]
pub fn ok<T>(result: Result<T>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("{what} failed: {error}"),
    }
}

/// Metadata of a summary as a sorted map, for comparisons.
pub fn metadata(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// Panics unless `got == expected`, with a message that names the rule and shows both
/// sides: `C3 newest first: expected [..], store returned [..]`.
#[track_caller]
pub fn assert_answer<E, G>(rule: &str, expected: E, got: G)
where
    E: std::fmt::Debug,
    G: PartialEq<E> + std::fmt::Debug,
{
    assert!(
        got == expected,
        "{rule}: expected {expected:?}, store returned {got:?}"
    );
}

/// The run_ids `query(filter)` returns, after checking that `count(filter)` agrees.
#[track_caller]
pub fn query_ids(store: &dyn trace_store_core::TraceStore, filter: &TraceFilter) -> Vec<String> {
    let found = ok(store.query(filter), "query");
    let counted = ok(store.count(filter), "count");
    assert!(
        counted == found.len() as u64,
        "C4 count equals query: query({filter:?}) returned {} traces, count returned {counted}",
        found.len()
    );
    found.into_iter().map(|s| s.run_id).collect()
}

/// A trace with nested steps whose totals are known by hand: an `agent` span (5 ms,
/// 100/10 tokens, 700 nano-USD, failed) over two model calls (`model-a`: 2 ms, 60/6,
/// 400; `model-b`: 2.5 ms, 40/4, 300, failed), and a tool step whose parent does not
/// exist (1.5 ms). The run failed.
///
/// Its summary, by the contract: 4 steps, `total_ms` 6.5 (agent + orphan, the roots),
/// tokens 100/10 and cost 700 (the calls; the agent span repeats them), `error_count` 3
/// (two failed steps and the run), `failed_steps` 1 (`model-b`; the agent failed only
/// because of it).
pub fn nested(run_id: &str, micros: i64) -> Trace {
    Trace::new(run_id)
        .with_created_at(at(micros))
        .with_status(Status::Error)
        .with_error(ErrorInfo::new("the run failed"))
        .with_step(
            Step::new(StepKind::Agent)
                .with_id("agent")
                .with_duration_us(5_000)
                .with_usage(100, 10)
                .with_cost_nano_usd(700)
                .with_status(Status::Error),
        )
        .with_step(
            Step::llm_call("model-a")
                .with_id("call-a")
                .with_parent_id("agent")
                .with_duration_us(2_000)
                .with_usage(60, 6)
                .with_cost_nano_usd(400),
        )
        .with_step(
            Step::llm_call("model-b")
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
        )
}

/// Input tokens of [`trace`]`(_, _, steps)`, computed from its definition: step `i`
/// has `10 + i` input tokens, 5 output tokens and costs `1_000 + i` nano-USD.
pub fn trace_input_tokens(steps: u64) -> u64 {
    (0..steps).map(|i| 10 + i).sum()
}

/// Cost of [`trace`]`(_, _, steps)` in nano-USD.
pub fn trace_cost(steps: u64) -> i64 {
    (0..steps as i64).map(|i| 1_000 + i).sum()
}
