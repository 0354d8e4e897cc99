//! selectools formats: `AgentTrace.to_dict()` JSON, the lines of selectools'
//! `JSONLTraceStore`, and the workload lines `{created_at, trace}`.
//!
//! # Mapping
//!
//! | selectools | trace-store |
//! |---|---|
//! | `run_id`, `parent_run_id`, `metadata` | the same fields of [`Trace`] |
//! | line `created_at`, else `start_time` | [`Trace::created_at`] |
//! | step `type` | [`Step::kind`]: `llm_call`, `tool_execution` → `tool_call`, `tool_selection`, `cache_hit`, `error`, `guardrail` known; any other name kept as [`StepKind::Other`] |
//! | `timestamp` (float seconds) | [`Step::started_at`] |
//! | `duration_ms` | [`Step::duration_us`] |
//! | `tool_name`, `tool_args`, `tool_result` | [`Step::tool`], [`Step::input`], [`Step::output`] |
//! | `model`, `prompt_tokens`, `completion_tokens` | [`Step::model`], [`Step::usage`] (except in `prompt_compressed` steps, where selectools writes the conversation's estimated size before and after compression there: those stay attributes, so token totals match what was billed) |
//! | `cost_usd` | [`Step::cost_nano_usd`], rounded to the nano-dollar |
//! | `error` (a string) | [`Step::error`], with [`Step::status`] `error` |
//! | any other step field (`reasoning`, `summary`, ...) | `attributes["selectools.<field>"]` |
//!
//! Nothing of the input is dropped. Values selectools derives (`step_count`,
//! `total_duration_ms`, and the store line's `steps`, `total_ms`, `metadata`) are checked
//! against the trace: when they agree they carry no information and are not kept; when
//! they disagree the stated value is kept in the trace's metadata under
//! `selectools.<field>` (trace fields) or `selectools.line.<field>` (store line fields),
//! as are unknown top-level fields. Times are kept to the microsecond, the precision of
//! the data model and of Python's datetimes; digits below it in `time.time()` floats are
//! float noise.
//!
//! ```
//! use trace_store_core::{StepKind, TraceSummary};
//!
//! let line = br#"{"created_at": "2026-01-01T06:36:17.075216+00:00", "trace": {
//!     "run_id": "8c72", "start_time": 1767249377.075216, "total_duration_ms": 913.478,
//!     "step_count": 1, "metadata": {"user_id": "user_071"},
//!     "steps": [{"type": "llm_call", "timestamp": 1767249377.075216, "duration_ms": 913.478,
//!                "model": "gpt-4o-mini", "prompt_tokens": 1935, "completion_tokens": 610,
//!                "cost_usd": 0.033709, "summary": "answered"}]}}"#;
//! let trace = trace_store_interop::selectools::trace_from_line(line)?;
//! assert_eq!(trace.steps[0].kind, StepKind::LlmCall);
//! assert_eq!(trace.steps[0].duration_us, 913_478);
//! assert_eq!(trace.steps[0].attributes["selectools.summary"], "answered");
//! let summary = TraceSummary::from(&trace);
//! assert_eq!((summary.input_tokens, summary.cost_nano_usd), (1935, 33_709_000));
//! assert!(trace.metadata.keys().all(|k| k == "user_id"), "derived fields agree, so none is kept");
//! # Ok::<(), trace_store_core::Error>(())
//! ```

use std::collections::BTreeMap;

use chrono::{NaiveDateTime, TimeZone, Utc};
use serde_json::{Map, Value};
use trace_store_core::{
    Error, ErrorInfo, Result, Status, Step, StepKind, Timestamp, ToolCall, Trace, json_eq,
};

/// Prefix of keys that hold selectools fields with no field of their own here.
pub const PREFIX: &str = "selectools.";
/// Prefix of metadata keys that hold fields of a selectools store line.
pub const LINE_PREFIX: &str = "selectools.line.";

/// Converts one line of any selectools format into a [`Trace`], detecting which:
/// `AgentTrace.to_dict()` JSON, a `JSONLTraceStore` line
/// `{run_id, steps, total_ms, created_at, metadata, trace}`, or a workload line
/// `{created_at, trace}`.
///
/// Returns [`Error::InvalidInput`] naming the problem for anything else, including a
/// native trace-store trace (read those with [`crate::read_traces`] and
/// [`crate::Format::Native`]).
pub fn trace_from_line(line: &[u8]) -> Result<Trace> {
    let value: Value = serde_json::from_slice(line)
        .map_err(|error| Error::invalid(format!("not a JSON value: {error}")))?;
    trace_from_value(value)
}

/// [`trace_from_line`] for an already parsed JSON value.
pub fn trace_from_value(value: Value) -> Result<Trace> {
    let Value::Object(mut outer) = value else {
        return Err(Error::invalid(format!(
            "expected a JSON object, found {}",
            kind_of(&value)
        )));
    };
    match outer.remove("trace") {
        Some(Value::Object(inner)) => {
            if looks_native(&inner) {
                return Err(Error::invalid(
                    "this is a line of a trace-store JSONL store, not selectools; \
                     open the file as a store with --store jsonl://FILE",
                ));
            }
            convert(inner, Some(outer))
        }
        Some(other) => Err(Error::invalid(format!(
            "`trace` is {}, expected an object",
            kind_of(&other)
        ))),
        None if looks_native(&outer) => Err(Error::invalid(
            "this is a native trace-store trace, not selectools; import it with format native",
        )),
        None => convert(outer, None),
    }
}

/// True if this object is a native trace (it has the fields only native traces have),
/// rather than a selectools `AgentTrace.to_dict()`.
pub(crate) fn looks_native(object: &Map<String, Value>) -> bool {
    object.contains_key("schema_version")
        || (object.contains_key("created_at") && !object.contains_key("start_time"))
}

pub(crate) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Removes `key`; a JSON `null` counts as absent, as Python's `None` does.
fn take(object: &mut Map<String, Value>, key: &str) -> Option<Value> {
    object.remove(key).filter(|value| !value.is_null())
}

fn string(field: &str, value: Value) -> Result<String> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(Error::invalid(format!(
            "`{field}` is {}, expected a string",
            kind_of(&other)
        ))),
    }
}

fn number(field: &str, value: &Value) -> Result<f64> {
    value
        .as_f64()
        .filter(|n| n.is_finite())
        .ok_or_else(|| Error::invalid(format!("`{field}` is {value}, expected a finite number")))
}

fn count(field: &str, value: &Value) -> Result<u64> {
    value.as_u64().ok_or_else(|| {
        Error::invalid(format!(
            "`{field}` is {value}, expected a non-negative integer"
        ))
    })
}

/// A Python `datetime.isoformat()` string (with or without offset; naive means UTC) or
/// float seconds since the epoch.
fn timestamp(field: &str, value: &Value) -> Result<Timestamp> {
    match value {
        Value::String(text) => text.parse::<Timestamp>().or_else(|_| {
            ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
                .iter()
                .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
                .ok_or_else(|| {
                    Error::invalid(format!("`{field}` {text:?} is not an ISO 8601 date-time"))
                })
                .and_then(|naive| Timestamp::from_datetime(Utc.from_utc_datetime(&naive)))
        }),
        Value::Number(_) => Timestamp::from_unix_seconds_f64(number(field, value)?),
        other => Err(Error::invalid(format!(
            "`{field}` is {}, expected a date-time",
            kind_of(other)
        ))),
    }
}

fn object(field: &str, value: Value) -> Result<Map<String, Value>> {
    match value {
        Value::Object(map) => Ok(map),
        other => Err(Error::invalid(format!(
            "`{field}` is {}, expected an object",
            kind_of(&other)
        ))),
    }
}

/// Milliseconds as selectools states them vs. the microseconds we keep: equal up to the
/// half-microsecond rounding of each step (and float summation noise).
fn same_ms(stated: f64, micros: u64, steps: usize) -> bool {
    let ours = micros as f64 / 1000.0;
    (stated - ours).abs() <= 0.0005 * steps.max(1) as f64 + 1e-9 * stated.abs()
}

fn convert(mut t: Map<String, Value>, line: Option<Map<String, Value>>) -> Result<Trace> {
    // Values that have no field of their own: (metadata key, value).
    let mut kept: Vec<(String, Value)> = Vec::new();

    let mut line = line.unwrap_or_default();
    let line_created = take(&mut line, "created_at")
        .map(|v| timestamp("created_at", &v))
        .transpose()?;
    let line_run_id = take(&mut line, "run_id")
        .map(|v| string("run_id", v))
        .transpose()?;

    let run_id = match (
        take(&mut t, "run_id")
            .map(|v| string("run_id", v))
            .transpose()?,
        line_run_id,
    ) {
        (Some(inner), Some(outer)) if inner != outer => {
            return Err(Error::invalid(format!(
                "the line's run_id {outer:?} differs from its trace's run_id {inner:?}"
            )));
        }
        (Some(run_id), _) | (None, Some(run_id)) => run_id,
        (None, None) => return Err(Error::invalid("no `run_id`")),
    };
    let mut trace = Trace::new(run_id);

    if let Some(parent) = take(&mut t, "parent_run_id") {
        trace.parent_run_id = Some(string("parent_run_id", parent)?);
    }
    let trace_metadata = take(&mut t, "metadata")
        .map(|v| object("metadata", v))
        .transpose()?;
    let line_metadata = take(&mut line, "metadata");
    match (trace_metadata, line_metadata) {
        (Some(metadata), line_metadata) => {
            if let Some(stated) = line_metadata
                && !json_eq(&stated, &Value::Object(metadata.clone()))
            {
                kept.push((format!("{LINE_PREFIX}metadata"), stated));
            }
            trace.metadata = metadata.into_iter().collect();
        }
        // `to_dict()` leaves out empty metadata; the store line carries it anyway.
        (None, Some(stated)) => {
            trace.metadata = object("metadata", stated)?.into_iter().collect();
        }
        (None, None) => {}
    }

    let start_time = take(&mut t, "start_time");
    let start = start_time
        .as_ref()
        .map(|v| timestamp("start_time", v))
        .transpose()?;
    trace.created_at = line_created
        .or(start)
        .ok_or_else(|| Error::invalid("neither `created_at` nor `start_time` is set"))?;
    if let (Some(start), Some(value)) = (start, start_time)
        && start != trace.created_at
    {
        kept.push((format!("{PREFIX}start_time"), value));
    }

    trace.steps = match take(&mut t, "steps") {
        Some(Value::Array(steps)) => steps
            .into_iter()
            .enumerate()
            .map(|(index, step)| {
                convert_step(step).map_err(|error| {
                    Error::invalid(format!("step {index}: {}", crate::reason(&error)))
                })
            })
            .collect::<Result<_>>()?,
        Some(other) => {
            return Err(Error::invalid(format!(
                "`steps` is {}, expected an array",
                kind_of(&other)
            )));
        }
        None => Vec::new(),
    };
    let steps = trace.steps.len();
    let micros = trace
        .steps
        .iter()
        .fold(0u64, |sum, step| sum.saturating_add(step.duration_us));

    // Derived values: kept only when they disagree with what the steps say.
    let same_count = |v: &Value| v.as_u64() == Some(steps as u64);
    let same_total = |v: &Value| v.as_f64().is_some_and(|ms| same_ms(ms, micros, steps));
    let derived = [
        (PREFIX, "step_count", take(&mut t, "step_count"), true),
        (
            PREFIX,
            "total_duration_ms",
            take(&mut t, "total_duration_ms"),
            false,
        ),
        (LINE_PREFIX, "steps", take(&mut line, "steps"), true),
        (LINE_PREFIX, "total_ms", take(&mut line, "total_ms"), false),
    ];
    for (prefix, field, value, is_count) in derived {
        if let Some(value) = value
            && !(if is_count {
                same_count(&value)
            } else {
                same_total(&value)
            })
        {
            kept.push((format!("{prefix}{field}"), value));
        }
    }

    kept.extend(t.into_iter().map(|(k, v)| (format!("{PREFIX}{k}"), v)));
    kept.extend(
        line.into_iter()
            .map(|(k, v)| (format!("{LINE_PREFIX}{k}"), v)),
    );
    for (key, value) in kept {
        if trace.metadata.contains_key(&key) {
            return Err(Error::invalid(format!(
                "metadata already has the key {key:?}, where the selectools field it names would be kept"
            )));
        }
        trace.metadata.insert(key, value);
    }

    trace.validate()?;
    Ok(trace)
}

/// The step kind for a selectools step `type`.
pub fn step_kind(step_type: &str) -> StepKind {
    match step_type {
        "tool_execution" => StepKind::ToolCall,
        other => StepKind::from_name(other),
    }
}

/// The selectools step `type` a kind reads back as (the inverse of [`step_kind`]).
pub fn step_type(kind: &StepKind) -> &str {
    match kind {
        StepKind::ToolCall => "tool_execution",
        other => other.as_str(),
    }
}

/// The selectools step type whose token fields are sizes, not usage.
const COMPRESSION_STEP: &str = "prompt_compressed";

fn convert_step(value: Value) -> Result<Step> {
    let mut s = object("step", value)?;
    let name = match s.remove("type") {
        Some(Value::String(name)) => name,
        Some(other) => {
            return Err(Error::invalid(format!(
                "`type` is {}, expected a string",
                kind_of(&other)
            )));
        }
        None => return Err(Error::invalid("no `type`")),
    };
    let mut step = Step::new(step_kind(&name));
    let tokens_are_usage = name != COMPRESSION_STEP;
    let mut attributes = BTreeMap::new();
    if step_type(&step.kind) != name {
        // A spelling that maps onto a kind whose selectools name differs (`tool_call`).
        attributes.insert(format!("{PREFIX}type"), Value::String(name));
    }

    if let Some(v) = take(&mut s, "timestamp") {
        step.started_at = Some(timestamp("timestamp", &v)?);
    }
    if let Some(v) = take(&mut s, "duration_ms") {
        let ms = number("duration_ms", &v)?;
        let micros = (ms * 1000.0).round();
        if !(0.0..=u64::MAX as f64).contains(&micros) {
            return Err(Error::invalid(format!(
                "`duration_ms` is {v}, expected a non-negative number"
            )));
        }
        step.duration_us = micros as u64;
    }
    if let Some(v) = take(&mut s, "tool_name") {
        step.tool = Some(ToolCall::new(string("tool_name", v)?));
    }
    step.input = take(&mut s, "tool_args");
    step.output = take(&mut s, "tool_result");
    if let Some(v) = take(&mut s, "model") {
        step.model = Some(string("model", v)?);
    }
    // selectools' memory manager records the conversation's estimated size before and
    // after compression in a `prompt_compressed` step's token fields: no model was paid
    // for them, so they stay attributes instead of adding to the trace's token totals.
    if tokens_are_usage {
        if let Some(v) = take(&mut s, "prompt_tokens") {
            step.usage.input_tokens = count("prompt_tokens", &v)?;
        }
        if let Some(v) = take(&mut s, "completion_tokens") {
            step.usage.output_tokens = count("completion_tokens", &v)?;
        }
    }
    if let Some(v) = take(&mut s, "cost_usd") {
        let nano = (number("cost_usd", &v)? * 1e9).round();
        if nano.abs() >= i64::MAX as f64 {
            return Err(Error::invalid(format!("`cost_usd` {v} is out of range")));
        }
        step.cost_nano_usd = nano as i64;
    }
    if let Some(v) = take(&mut s, "error") {
        step.error = Some(ErrorInfo::new(string("error", v)?));
        step.status = Status::Error;
    }
    attributes.extend(s.into_iter().map(|(k, v)| (format!("{PREFIX}{k}"), v)));
    step.attributes = attributes;
    Ok(step)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use trace_store_core::TraceSummary;

    fn line(value: Value) -> Result<Trace> {
        trace_from_line(&serde_json::to_vec(&value).unwrap())
    }

    fn agent_trace() -> Value {
        json!({
            "run_id": "r1",
            "start_time": 1767249377.075216,
            "total_duration_ms": 1500.25,
            "step_count": 3,
            "metadata": {"user_id": "u1"},
            "steps": [
                {"type": "tool_selection", "timestamp": 1767249377.075216, "duration_ms": 500.0,
                 "tool_name": "search", "reasoning": "needs facts"},
                {"type": "tool_execution", "timestamp": 1767249377.575216, "duration_ms": 1000.25,
                 "tool_name": "search", "tool_args": {"q": "x", "n": 3}, "tool_result": "found"},
                {"type": "error", "timestamp": 1767249378.6, "duration_ms": 0, "error": "boom"}
            ]
        })
    }

    #[test]
    fn to_dict_maps_every_field() {
        let trace = line(agent_trace()).unwrap();
        assert_eq!(trace.run_id, "r1");
        assert_eq!(trace.created_at.as_micros(), 1_767_249_377_075_216);
        assert_eq!(
            trace.metadata,
            BTreeMap::from([("user_id".into(), json!("u1"))])
        );
        let [selection, execution, error] = &trace.steps[..] else {
            panic!("3 steps")
        };
        assert_eq!(selection.kind, StepKind::ToolSelection);
        assert_eq!(selection.tool.as_ref().unwrap().name, "search");
        assert_eq!(
            selection.attributes["selectools.reasoning"],
            json!("needs facts")
        );
        assert_eq!(execution.kind, StepKind::ToolCall);
        assert_eq!(execution.duration_us, 1_000_250);
        assert_eq!(execution.input, Some(json!({"q": "x", "n": 3})));
        assert_eq!(execution.output, Some(json!("found")));
        assert!(execution.attributes.is_empty());
        assert_eq!(error.kind, StepKind::Error);
        assert_eq!(error.status, Status::Error);
        assert_eq!(error.error.as_ref().unwrap().message, "boom");
        assert_eq!(TraceSummary::from(&trace).error_count, 1);
    }

    #[test]
    fn store_line_and_workload_line() {
        let mut store_line = json!({
            "run_id": "r1", "steps": 3, "total_ms": 1500.25,
            "created_at": "2026-02-01T10:00:00.000001+00:00",
            "metadata": {"user_id": "u1"}, "trace": agent_trace()
        });
        let trace = line(store_line.clone()).unwrap();
        assert_eq!(trace.created_at.to_string(), "2026-02-01T10:00:00.000001Z");
        // The run began earlier than it was saved: start_time is kept, as given.
        assert_eq!(
            trace.metadata["selectools.start_time"],
            json!(1767249377.075216)
        );
        assert_eq!(trace.metadata.len(), 2);

        store_line["steps"] = json!(4);
        store_line["total_ms"] = json!(99.0);
        store_line["metadata"] = json!({"user_id": "u2"});
        store_line["extra"] = json!([1]);
        let trace = line(store_line).unwrap();
        assert_eq!(trace.metadata["user_id"], json!("u1"));
        assert_eq!(trace.metadata["selectools.line.steps"], json!(4));
        assert_eq!(trace.metadata["selectools.line.total_ms"], json!(99.0));
        assert_eq!(
            trace.metadata["selectools.line.metadata"],
            json!({"user_id": "u2"})
        );
        assert_eq!(trace.metadata["selectools.line.extra"], json!([1]));

        let workload =
            json!({"created_at": "2026-01-01T06:36:17.075216+00:00", "trace": agent_trace()});
        let trace = line(workload).unwrap();
        assert_eq!(trace.created_at.as_micros(), 1_767_249_377_075_216);
        assert_eq!(trace.metadata.len(), 1, "{:?}", trace.metadata);
    }

    #[test]
    fn inconsistent_and_unknown_trace_fields_are_kept() {
        let mut value = agent_trace();
        value["step_count"] = json!(7);
        value["total_duration_ms"] = json!(1.0);
        value["parent_run_id"] = json!("p0");
        value["name"] = json!("planner");
        let trace = line(value).unwrap();
        assert_eq!(trace.parent_run_id.as_deref(), Some("p0"));
        assert_eq!(trace.metadata["selectools.step_count"], json!(7));
        assert_eq!(trace.metadata["selectools.total_duration_ms"], json!(1.0));
        assert_eq!(trace.metadata["selectools.name"], json!("planner"));
    }

    #[test]
    fn llm_step_usage_cost_and_unknown_kinds() {
        let value = json!({"run_id": "r", "start_time": 0.5, "steps": [
            {"type": "llm_call", "model": "m", "prompt_tokens": 10, "completion_tokens": 2,
             "cost_usd": 0.0000012345, "summary": "s"},
            {"type": "structured_retry", "error": "bad json", "attempt": null},
            {"type": "tool_call", "tool_name": "t"},
            {"type": "guardrail"}
        ]});
        let trace = line(value).unwrap();
        let llm = &trace.steps[0];
        assert_eq!((llm.usage.input_tokens, llm.usage.output_tokens), (10, 2));
        assert_eq!(llm.cost_nano_usd, 1235);
        assert_eq!(llm.model.as_deref(), Some("m"));
        let retry = &trace.steps[1];
        assert_eq!(retry.kind, StepKind::Other("structured_retry".into()));
        assert_eq!(retry.status, Status::Error);
        assert_eq!(retry.attributes["selectools.attempt"], Value::Null);
        assert_eq!(trace.steps[2].kind, StepKind::ToolCall);
        assert_eq!(
            trace.steps[2].attributes["selectools.type"],
            json!("tool_call")
        );
        assert_eq!(trace.steps[3].kind, StepKind::Guardrail);
        trace.validate().unwrap();
    }

    #[test]
    fn compression_sizes_are_not_token_usage() {
        // selectools' memory manager writes the conversation's estimated size before and
        // after compression into a `prompt_compressed` step's token fields.
        let value = json!({"run_id": "r", "start_time": 1.0, "steps": [
            {"type": "llm_call", "model": "m", "prompt_tokens": 100, "completion_tokens": 20},
            {"type": "prompt_compressed", "prompt_tokens": 12000, "completion_tokens": 3000,
             "summary": "Compressed 9 messages: 12000→3000 tokens"}
        ]});
        let trace = line(value).unwrap();
        let summary = TraceSummary::from(&trace);
        assert_eq!((summary.input_tokens, summary.output_tokens), (100, 20));
        let compressed = &trace.steps[1];
        assert!(compressed.usage.is_zero());
        assert_eq!(
            compressed.attributes["selectools.prompt_tokens"],
            json!(12000)
        );
        assert_eq!(
            compressed.attributes["selectools.completion_tokens"],
            json!(3000)
        );
    }

    #[test]
    fn naive_and_numeric_created_at() {
        let naive = json!({"created_at": "2026-01-01T00:00:00.5", "trace": {"run_id": "r"}});
        assert_eq!(
            line(naive).unwrap().created_at.to_string(),
            "2026-01-01T00:00:00.500000Z"
        );
        let numeric = json!({"created_at": 1.5, "trace": {"run_id": "r"}});
        assert_eq!(line(numeric).unwrap().created_at.as_micros(), 1_500_000);
    }

    #[test]
    fn bad_input_names_the_problem() {
        let cases = [
            (json!([1]), "expected a JSON object"),
            (json!({"start_time": 1.0}), "no `run_id`"),
            (
                json!({"run_id": "r"}),
                "neither `created_at` nor `start_time`",
            ),
            (json!({"run_id": "r", "start_time": "soon"}), "`start_time`"),
            (
                json!({"run_id": "r", "start_time": 1, "steps": {}}),
                "`steps` is an object",
            ),
            (
                json!({"run_id": "r", "start_time": 1, "steps": [{}]}),
                "step 0: no `type`",
            ),
            (
                json!({"run_id": "r", "start_time": 1, "steps": [{"type": "llm_call", "prompt_tokens": -1}]}),
                "step 0: `prompt_tokens` is -1",
            ),
            (
                json!({"run_id": "r", "start_time": 1, "steps": [{"type": "x", "duration_ms": -5}]}),
                "`duration_ms` is -5",
            ),
            (
                json!({"run_id": "r", "start_time": 1, "steps": [{"type": "x", "error": {"m": 1}}]}),
                "`error` is an object",
            ),
            (json!({"run_id": "", "start_time": 1}), "run_id is empty"),
            (
                json!({"run_id": "a", "trace": {"run_id": "b", "start_time": 1}}),
                "differs",
            ),
            (json!({"trace": 5}), "`trace` is a number"),
            (
                json!({"schema_version": 1, "run_id": "r", "created_at": "2026-01-01T00:00:00Z"}),
                "native trace-store trace",
            ),
            (
                json!({"run_id": "r", "steps": 0, "trace": {"run_id": "r", "created_at": "2026-01-01T00:00:00Z"}}),
                "--store jsonl://",
            ),
            (
                json!({"run_id": "r", "start_time": 1, "metadata": {"selectools.x": 1}, "x": 2}),
                "already has the key",
            ),
        ];
        for (value, expected) in cases {
            let error = line(value.clone()).unwrap_err();
            assert!(
                matches!(error, Error::InvalidInput { .. }) && error.to_string().contains(expected),
                "{value}: {error}"
            );
        }
        assert!(trace_from_line(b"{not json").is_err());
    }
}
