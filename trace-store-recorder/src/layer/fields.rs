//! The mapping of span fields (OpenTelemetry GenAI semantic conventions and the
//! aliases agent frameworks use) onto a [`Step`], run on the writer thread over the
//! values a [`SpanRecord`](super::record::SpanRecord) kept.

use serde_json::Value;
use trace_store_core::{ErrorInfo, Status, Step, ToolCall, genai};

use super::record::Val;

/// A recorded field value, borrowed.
#[derive(Clone, Copy, Debug)]
pub(super) enum FieldValue<'a> {
    Str(&'a str),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
}

impl<'a> From<&'a Val> for FieldValue<'a> {
    fn from(value: &'a Val) -> FieldValue<'a> {
        match value {
            Val::Str(text) => FieldValue::Str(text.as_str()),
            Val::I64(number) => FieldValue::I64(*number),
            Val::U64(number) => FieldValue::U64(*number),
            Val::F64(number) => FieldValue::F64(*number),
            Val::Bool(flag) => FieldValue::Bool(*flag),
        }
    }
}

impl FieldValue<'_> {
    pub(super) fn to_json(self) -> Value {
        match self {
            FieldValue::Str(text) => Value::String(text.to_owned()),
            FieldValue::I64(number) => Value::from(number),
            FieldValue::U64(number) => Value::from(number),
            FieldValue::F64(number) => Value::from(number),
            FieldValue::Bool(flag) => Value::Bool(flag),
        }
    }

    /// Content fields (messages, arguments, results) are often JSON serialised into a
    /// string: store the JSON itself when it parses.
    fn to_content(self) -> Value {
        let FieldValue::Str(text) = self else {
            return self.to_json();
        };
        let trimmed = text.trim_start();
        if trimmed.starts_with(['{', '[', '"'])
            && let Ok(value) = serde_json::from_str(text)
        {
            return value;
        }
        Value::String(text.to_owned())
    }

    fn as_u64(self) -> Option<u64> {
        match self {
            FieldValue::U64(number) => Some(number),
            FieldValue::I64(number) => u64::try_from(number).ok(),
            FieldValue::F64(number) if number >= 0.0 => Some(number as u64),
            FieldValue::Str(text) => text.trim().parse().ok(),
            _ => None,
        }
    }

    /// A USD amount as nano-USD, rounded by core's one rule.
    fn as_nano_usd(self) -> Option<i64> {
        let usd = match self {
            FieldValue::F64(number) => number,
            FieldValue::I64(number) => number as f64,
            FieldValue::U64(number) => number as f64,
            FieldValue::Str(text) => text.trim().parse().ok()?,
            FieldValue::Bool(_) => return None,
        };
        genai::nano_usd_from_usd(usd)
    }

    pub(super) fn as_string(self) -> String {
        match self {
            FieldValue::Str(text) => text.to_owned(),
            other => other.to_json().to_string(),
        }
    }
}

/// What a span's fields say beyond the step itself; resolved when the span closes.
#[derive(Debug, Default)]
pub(super) struct SpanFields {
    has_operation: bool,
    pub(super) agent_name: Option<String>,
    request_model: Option<String>,
    response_model: Option<String>,
    tool_name: Option<String>,
    tool_call_id: Option<String>,
    error_type: Option<String>,
    status_error: bool,
    status_message: Option<String>,
}

/// Applies one field to the step, or to what is resolved at close.
pub(super) fn apply_field(
    step: &mut Step,
    fields: &mut SpanFields,
    name: &str,
    value: FieldValue<'_>,
) {
    match name {
        genai::OPERATION_NAME => {
            let operation = value.as_string();
            step.kind = genai::kind_of_operation(&operation);
            fields.has_operation = !operation.is_empty();
            // The kind is coarser than the operation (chat vs generate_content): keep both.
            step.attributes
                .insert(name.to_owned(), Value::String(operation));
        }
        genai::REQUEST_MODEL => fields.request_model = Some(value.as_string()),
        genai::RESPONSE_MODEL => fields.response_model = Some(value.as_string()),
        genai::PROVIDER_NAME | genai::SYSTEM => step.provider = Some(value.as_string()),
        genai::USAGE_INPUT_TOKENS => set_count(&mut step.usage.input_tokens, value),
        genai::USAGE_OUTPUT_TOKENS => set_count(&mut step.usage.output_tokens, value),
        genai::USAGE_CACHE_READ_INPUT_TOKENS => {
            set_count(&mut step.usage.cache_read_input_tokens, value);
        }
        genai::USAGE_CACHE_CREATION_INPUT_TOKENS => {
            set_count(&mut step.usage.cache_creation_input_tokens, value);
        }
        genai::USAGE_REASONING_OUTPUT_TOKENS | genai::USAGE_REASONING_TOKENS => {
            set_count(&mut step.usage.reasoning_tokens, value);
        }
        genai::USAGE_COST => match value.as_nano_usd() {
            Some(nano) => step.cost_nano_usd = nano,
            None => keep_attribute(step, name, value),
        },
        genai::TOOL_NAME => fields.tool_name = Some(value.as_string()),
        genai::TOOL_CALL_ID => fields.tool_call_id = Some(value.as_string()),
        genai::TOOL_CALL_ARGUMENTS | genai::INPUT_MESSAGES | genai::PROMPT => {
            step.input = Some(value.to_content());
        }
        genai::TOOL_CALL_RESULT | genai::OUTPUT_MESSAGES | genai::COMPLETION => {
            step.output = Some(value.to_content());
        }
        genai::AGENT_NAME => {
            fields.agent_name = Some(value.as_string());
            keep_attribute(step, name, value);
        }
        genai::ERROR_TYPE => fields.error_type = Some(value.as_string()),
        "otel.name" => step.name = Some(value.as_string()),
        "otel.status_code" => {
            fields.status_error = value.as_string().eq_ignore_ascii_case("error");
        }
        "otel.status_message" => fields.status_message = Some(value.as_string()),
        genai::SYSTEM_INSTRUCTIONS => {
            step.attributes.insert(name.to_owned(), value.to_content());
        }
        _ => keep_attribute(step, name, value),
    }
}

fn set_count(slot: &mut u64, value: FieldValue<'_>) {
    if let Some(count) = value.as_u64() {
        *slot = count;
    }
}

fn keep_attribute(step: &mut Step, name: &str, value: FieldValue<'_>) {
    step.attributes.insert(name.to_owned(), value.to_json());
}

impl SpanFields {
    /// Settles model, tool and status on the step when its span closes.
    pub(super) fn resolve(&mut self, step: &mut Step, panicking: bool) {
        if !self.has_operation {
            step.kind = genai::infer_kind(
                None,
                self.tool_name.is_some(),
                self.request_model.is_some() || self.response_model.is_some(),
            );
        }
        match (self.response_model.take(), self.request_model.take()) {
            (Some(response), Some(request)) => {
                if response != request {
                    step.attributes
                        .insert(genai::REQUEST_MODEL.to_owned(), Value::String(request));
                }
                step.model = Some(response);
            }
            (response, request) => step.model = response.or(request),
        }
        if let Some(name) = self.tool_name.take() {
            let tool = ToolCall::new(name);
            step.tool = Some(match self.tool_call_id.take() {
                Some(call_id) => tool.with_call_id(call_id),
                None => tool,
            });
        } else if let Some(call_id) = self.tool_call_id.take() {
            step.attributes
                .insert(genai::TOOL_CALL_ID.to_owned(), Value::String(call_id));
        }
        let failed = self.status_error || self.error_type.is_some() || panicking;
        step.status = if failed { Status::Error } else { Status::Ok };
        if failed {
            let message = self
                .status_message
                .take()
                .or_else(|| self.error_type.clone())
                .unwrap_or_else(|| "panicked while the span was open".to_owned());
            let mut error = ErrorInfo::new(message);
            error.error_type = self
                .error_type
                .take()
                .or_else(|| panicking.then(|| "panic".to_owned()));
            step.error = Some(error);
        } else if let Some(message) = self.status_message.take() {
            step.attributes
                .insert("otel.status_message".to_owned(), Value::String(message));
        }
    }
}
