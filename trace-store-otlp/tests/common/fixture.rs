//! The hand-made trace with every field.

use serde_json::json;
use trace_store_core::{
    ErrorInfo, Score, ScoreSource, Status, Step, StepKind, Timestamp, ToolCall, Trace, Usage,
};

pub fn at(micros: i64) -> Timestamp {
    Timestamp::from_micros(micros).unwrap()
}

/// A trace that sets every field of Trace, Step and Score.
pub fn full_trace() -> Trace {
    let mut usage = Usage::new(1200, 80);
    usage.cache_read_input_tokens = 1000;
    usage.cache_creation_input_tokens = 3;
    usage.reasoning_tokens = 40;
    let mut llm = Step::llm_call("gpt-4o-mini")
        .with_id("b7ad6b7169203331")
        .with_name("plan")
        .with_provider("openai")
        .with_started_at(at(1_767_249_377_075_216))
        .with_duration_us(913_478)
        .with_cost_nano_usd(33_709_000)
        .with_status(Status::Ok)
        .with_input(json!([{"role": "user", "content": "hi"}]))
        .with_output(json!([{"role": "assistant", "content": "hello", "score": 0.5}]))
        .with_attribute("temperature", 0.2)
        .with_attribute("seed", 7)
        .with_attribute("big", u64::MAX)
        .with_attribute("tags", json!(["a", 1, null, {"x": [true]}]))
        .with_attribute("trace_store.user_key", "escaped");
    llm.usage = usage;
    let mut tool = Step::tool_call("search")
        .with_id("s2")
        .with_parent_id("b7ad6b7169203331")
        .with_started_at(at(1_767_249_378_000_000))
        .with_duration_us(35_000)
        .with_input(json!({"q": "rust"}))
        .with_output(json!(null))
        .with_error(
            ErrorInfo::new("timed out")
                .with_type("TimeoutError")
                .with_stacktrace("at search()"),
        );
    tool.tool = Some(ToolCall::new("search").with_call_id("call_1"));
    Trace::new("run-1")
        .with_name("support-bot")
        .with_parent_run_id("parent-run")
        .with_session_id("session-9")
        .with_created_at(at(1_767_249_377_000_000))
        .with_ended_at(at(1_767_249_379_000_000))
        .with_error(ErrorInfo::new("failed").with_type("AgentError"))
        .with_metadata("user_id", "u_42")
        .with_metadata("nested", json!({"a": [1, 2.5]}))
        .with_score(Score::new("helpful").with_value(1.0).with_created_at(at(5)))
        .with_score(
            Score::new("judge")
                .with_source(ScoreSource::Llm)
                .with_label("good")
                .with_comment("fine")
                .with_step_id("s2")
                .with_created_at(at(6)),
        )
        .with_step(llm)
        .with_step(tool)
        .with_step(Step::new(StepKind::Other("planner_v2".into())).with_status(Status::Running))
        .with_step(
            Step::new(StepKind::Retrieval)
                .with_name("docs")
                .with_parent_id("missing"),
        )
}
