//! The step fields carried by span attributes, shared by import and export: what each
//! field writes, and how it is read back.
//!
//! A span attribute is consumed into a field only when writing that field back would give
//! the very same attribute; anything else stays in [`Step::attributes`], so a foreign
//! span keeps every attribute it came with.

use std::collections::BTreeMap;

use serde_json::Value;
use trace_store_core::{ErrorInfo, Status, Step, StepKind, ToolCall, genai};

use crate::proto::{STATUS_CODE_ERROR, STATUS_CODE_OK, STATUS_CODE_UNSET};
use crate::semconv;

/// Span attributes as a map (a repeated key keeps its last value).
pub(crate) type Attributes = BTreeMap<String, Value>;

/// The usage counters with their attribute names.
pub(crate) const USAGE_KEYS: [&str; 5] = [
    semconv::GEN_AI_USAGE_INPUT_TOKENS,
    semconv::GEN_AI_USAGE_OUTPUT_TOKENS,
    semconv::GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    semconv::GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
    semconv::GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
];

/// The usage counters of a step, in the order of [`USAGE_KEYS`].
pub(crate) fn usage_values(step: &Step) -> [u64; 5] {
    let u = &step.usage;
    [
        u.input_tokens,
        u.output_tokens,
        u.cache_read_input_tokens,
        u.cache_creation_input_tokens,
        u.reasoning_tokens,
    ]
}

fn set_usage(step: &mut Step, values: [u64; 5]) {
    let u = &mut step.usage;
    [
        u.input_tokens,
        u.output_tokens,
        u.cache_read_input_tokens,
        u.cache_creation_input_tokens,
        u.reasoning_tokens,
    ] = values;
}

/// The kind a span without `trace_store.step.kind` reads as: core's one GenAI mapping,
/// from the operation name, else from whether a tool or a model is named.
pub(crate) fn infer_kind(attributes: &Attributes) -> StepKind {
    genai::infer_kind(
        attributes
            .get(semconv::GEN_AI_OPERATION_NAME)
            .and_then(Value::as_str),
        attributes.contains_key(semconv::GEN_AI_TOOL_NAME),
        attributes.contains_key(semconv::GEN_AI_REQUEST_MODEL)
            || attributes.contains_key(semconv::GEN_AI_RESPONSE_MODEL),
    )
}

fn input_key(kind: &StepKind) -> (&'static str, &'static str) {
    if *kind == StepKind::ToolCall {
        (
            semconv::GEN_AI_TOOL_CALL_ARGUMENTS,
            semconv::GEN_AI_INPUT_MESSAGES,
        )
    } else {
        (
            semconv::GEN_AI_INPUT_MESSAGES,
            semconv::GEN_AI_TOOL_CALL_ARGUMENTS,
        )
    }
}

fn output_key(kind: &StepKind) -> (&'static str, &'static str) {
    if *kind == StepKind::ToolCall {
        (
            semconv::GEN_AI_TOOL_CALL_RESULT,
            semconv::GEN_AI_OUTPUT_MESSAGES,
        )
    } else {
        (
            semconv::GEN_AI_OUTPUT_MESSAGES,
            semconv::GEN_AI_TOOL_CALL_RESULT,
        )
    }
}

/// Cost in USD as written to `gen_ai.usage.cost`.
pub(crate) fn cost_usd(nano: i64) -> Value {
    serde_json::Number::from_f64(genai::usd_from_nano_usd(nano)).map_or(Value::Null, Value::Number)
}

/// Adds the attributes of the mapped fields of `step` (kind, model, provider, usage,
/// cost, tool, input, output) to `out`, which already holds the step's own attributes:
/// those win, and a key is only written when reading it back needs it.
pub(crate) fn write_fields(step: &Step, out: &mut Attributes) {
    let mut put = |key: &str, value: Value| {
        out.entry(key.to_owned()).or_insert(value);
    };
    for (key, value) in USAGE_KEYS.iter().zip(usage_values(step)) {
        if value != 0 {
            put(key, value.into());
        }
    }
    if step.cost_nano_usd != 0 {
        let usd = cost_usd(step.cost_nano_usd);
        if cost_from_usd(&usd) != Some(step.cost_nano_usd) {
            put(
                semconv::TRACE_STORE_COST_NANO_USD,
                step.cost_nano_usd.into(),
            );
        }
        put(semconv::GEN_AI_USAGE_COST, usd);
    }
    if let Some(tool) = &step.tool {
        put(semconv::GEN_AI_TOOL_NAME, tool.name.clone().into());
        if let Some(call_id) = &tool.call_id {
            put(semconv::GEN_AI_TOOL_CALL_ID, call_id.clone().into());
        }
    }
    if let Some(input) = &step.input {
        put(input_key(&step.kind).0, input.clone());
    }
    if let Some(output) = &step.output {
        put(output_key(&step.kind).0, output.clone());
    }
    for (value, key, fallback) in [
        (
            &step.model,
            semconv::GEN_AI_REQUEST_MODEL,
            semconv::GEN_AI_RESPONSE_MODEL,
        ),
        (
            &step.provider,
            semconv::GEN_AI_PROVIDER_NAME,
            semconv::GEN_AI_SYSTEM,
        ),
    ] {
        if let Some(value) = value
            && !out.contains_key(key)
            && out.get(fallback).and_then(Value::as_str) != Some(value.as_str())
        {
            out.insert(key.to_owned(), value.clone().into());
        }
    }
    // The conventions require the operation name, so it is written even where the other
    // attributes already tell the kind.
    if let Some(op) = genai::operation_of_kind(&step.kind)
        && !out.contains_key(semconv::GEN_AI_OPERATION_NAME)
    {
        out.insert(semconv::GEN_AI_OPERATION_NAME.into(), op.into());
    }
    if infer_kind(out) != step.kind {
        out.insert(
            semconv::TRACE_STORE_STEP_KIND.into(),
            step.kind.as_str().into(),
        );
    }
}

fn cost_from_usd(usd: &Value) -> Option<i64> {
    usd.as_f64().and_then(genai::nano_usd_from_usd)
}

/// Reads the mapped fields from `attributes` into `step`, removing exactly the
/// attributes [`write_fields`] would write back.
pub(crate) fn read_fields(step: &mut Step, attributes: &mut Attributes) {
    step.kind = match attributes
        .get(semconv::TRACE_STORE_STEP_KIND)
        .and_then(Value::as_str)
    {
        Some(name) => {
            let kind = StepKind::from_name(name);
            attributes.remove(semconv::TRACE_STORE_STEP_KIND);
            kind
        }
        None => infer_kind(attributes),
    };
    let operation = attributes
        .get(semconv::GEN_AI_OPERATION_NAME)
        .and_then(Value::as_str);
    if operation.is_some() && operation == genai::operation_of_kind(&step.kind) {
        attributes.remove(semconv::GEN_AI_OPERATION_NAME);
    }
    step.model = string_with_fallback(
        attributes,
        semconv::GEN_AI_REQUEST_MODEL,
        semconv::GEN_AI_RESPONSE_MODEL,
    );
    step.provider = string_with_fallback(
        attributes,
        semconv::GEN_AI_PROVIDER_NAME,
        semconv::GEN_AI_SYSTEM,
    );
    let mut usage = [0u64; 5];
    for (slot, key) in usage.iter_mut().zip(USAGE_KEYS) {
        if let Some(n) = attributes.get(key).and_then(Value::as_u64) {
            *slot = n;
            if n != 0 {
                attributes.remove(key);
            }
        }
    }
    set_usage(step, usage);
    read_cost(step, attributes);
    if let Some(name) = take_string(attributes, semconv::GEN_AI_TOOL_NAME) {
        let call_id = take_string(attributes, semconv::GEN_AI_TOOL_CALL_ID);
        step.tool = Some(ToolCall::new(name).with_call_id_opt(call_id));
    }
    step.input = value_with_fallback(attributes, input_key(&step.kind));
    step.output = value_with_fallback(attributes, output_key(&step.kind));
}

trait WithCallId {
    fn with_call_id_opt(self, call_id: Option<String>) -> ToolCall;
}

impl WithCallId for ToolCall {
    fn with_call_id_opt(self, call_id: Option<String>) -> ToolCall {
        match call_id {
            Some(id) => self.with_call_id(id),
            None => self,
        }
    }
}

fn read_cost(step: &mut Step, attributes: &mut Attributes) {
    let exact = attributes
        .get(semconv::TRACE_STORE_COST_NANO_USD)
        .and_then(Value::as_i64);
    step.cost_nano_usd = match exact {
        Some(nano) => {
            if nano != 0 {
                attributes.remove(semconv::TRACE_STORE_COST_NANO_USD);
            }
            nano
        }
        None => attributes
            .get(semconv::GEN_AI_USAGE_COST)
            .and_then(cost_from_usd)
            .unwrap_or(0),
    };
    if step.cost_nano_usd != 0
        && attributes.get(semconv::GEN_AI_USAGE_COST) == Some(&cost_usd(step.cost_nano_usd))
    {
        attributes.remove(semconv::GEN_AI_USAGE_COST);
    }
}

fn take_string(attributes: &mut Attributes, key: &str) -> Option<String> {
    match attributes.get(key) {
        Some(Value::String(_)) => match attributes.remove(key) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        },
        _ => None,
    }
}

/// The string at `key`, else at `fallback`; `key` is consumed unless `fallback` holds
/// the same string (then writing back needs only `fallback`).
fn string_with_fallback(attributes: &mut Attributes, key: &str, fallback: &str) -> Option<String> {
    let fallback_value = attributes
        .get(fallback)
        .and_then(Value::as_str)
        .map(str::to_owned);
    match attributes
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
    {
        Some(value) => {
            if fallback_value.as_deref() != Some(value.as_str()) {
                attributes.remove(key);
            }
            Some(value)
        }
        None => fallback_value,
    }
}

fn value_with_fallback(
    attributes: &mut Attributes,
    (key, fallback): (&str, &str),
) -> Option<Value> {
    attributes
        .remove(key)
        .or_else(|| attributes.get(fallback).cloned())
}

/// The OTLP status code and message of a status and error, plus the attributes that
/// carry what those cannot: `trace_store.status` for Running, `error.type`, and the
/// whole error as `trace_store.error` when the status and `error.type` cannot hold it.
pub(crate) fn write_status(
    status: Status,
    error: Option<&ErrorInfo>,
    out: &mut Attributes,
) -> (i32, String) {
    let code = match status {
        Status::Unset => STATUS_CODE_UNSET,
        Status::Running => {
            out.insert(semconv::TRACE_STORE_STATUS.into(), "running".into());
            STATUS_CODE_UNSET
        }
        Status::Ok => STATUS_CODE_OK,
        Status::Error => STATUS_CODE_ERROR,
    };
    let Some(error) = error else {
        return (code, String::new());
    };
    let plain = status == Status::Error
        && error.stacktrace.is_none()
        && (error.error_type.is_some() || !error.message.is_empty());
    if plain {
        if let Some(error_type) = &error.error_type {
            out.insert(semconv::ERROR_TYPE.into(), error_type.clone().into());
        }
        (code, error.message.clone())
    } else {
        out.insert(
            semconv::TRACE_STORE_ERROR.into(),
            serde_json::to_value(error).unwrap_or(Value::Null),
        );
        (code, String::new())
    }
}

/// Reads a status and error back; an unconsumed status message goes to
/// `trace_store.otlp.status_message`.
pub(crate) fn read_status(
    code: i32,
    message: &str,
    attributes: &mut Attributes,
) -> (Status, Option<ErrorInfo>) {
    let running = attributes
        .get(semconv::TRACE_STORE_STATUS)
        .and_then(Value::as_str)
        == Some("running");
    let status = match code {
        STATUS_CODE_OK => Status::Ok,
        STATUS_CODE_ERROR => Status::Error,
        _ if running => Status::Running,
        _ => Status::Unset,
    };
    if status == Status::Running {
        attributes.remove(semconv::TRACE_STORE_STATUS);
    }
    if let Some(raw) = attributes.get(semconv::TRACE_STORE_ERROR)
        && let Ok(error) = serde_json::from_value::<ErrorInfo>(raw.clone())
        && message.is_empty()
    {
        attributes.remove(semconv::TRACE_STORE_ERROR);
        return (status, Some(error));
    }
    if status == Status::Error {
        let error_type = take_string(attributes, semconv::ERROR_TYPE);
        if error_type.is_some() || !message.is_empty() {
            let mut error = ErrorInfo::new(message);
            error.error_type = error_type;
            return (status, Some(error));
        }
    } else if !message.is_empty() {
        attributes.insert(semconv::otlp::STATUS_MESSAGE.into(), message.into());
    }
    (status, None)
}
