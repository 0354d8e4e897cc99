//! The mapping of span fields (OpenTelemetry GenAI semantic conventions and the
//! aliases agent frameworks use) onto a [`Step`].

use serde_json::{Map, Value};
use trace_store_core::{ErrorInfo, Status, Step, ToolCall, genai};
use tracing::field::{Field, Visit};

/// Field values as `tracing` hands them over.
#[derive(Debug)]
pub(super) enum FieldValue<'a> {
    Str(&'a str),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
    Debug(String),
}

impl FieldValue<'_> {
    fn to_json(&self) -> Value {
        match self {
            FieldValue::Str(text) => Value::String((*text).to_owned()),
            FieldValue::Debug(text) => Value::String(text.clone()),
            FieldValue::I64(number) => Value::from(*number),
            FieldValue::U64(number) => Value::from(*number),
            FieldValue::F64(number) => Value::from(*number),
            FieldValue::Bool(flag) => Value::Bool(*flag),
        }
    }

    /// Content fields (messages, arguments, results) are often JSON serialised into a
    /// string: store the JSON itself when it parses.
    fn to_content(&self) -> Value {
        let text = match self {
            FieldValue::Str(text) => *text,
            FieldValue::Debug(text) => text.as_str(),
            _ => return self.to_json(),
        };
        let trimmed = text.trim_start();
        if trimmed.starts_with(['{', '[', '"'])
            && let Ok(value) = serde_json::from_str(text)
        {
            return value;
        }
        Value::String(text.to_owned())
    }

    fn as_u64(&self) -> Option<u64> {
        match self {
            FieldValue::U64(number) => Some(*number),
            FieldValue::I64(number) => u64::try_from(*number).ok(),
            FieldValue::F64(number) if *number >= 0.0 => Some(*number as u64),
            FieldValue::Str(text) => text.trim().parse().ok(),
            FieldValue::Debug(text) => text.trim().parse().ok(),
            _ => None,
        }
    }

    /// A USD amount as nano-USD, rounded by core's one rule.
    fn as_nano_usd(&self) -> Option<i64> {
        let usd = match self {
            FieldValue::F64(number) => *number,
            FieldValue::I64(number) => *number as f64,
            FieldValue::U64(number) => *number as f64,
            FieldValue::Str(text) => text.trim().parse().ok()?,
            FieldValue::Debug(text) => text.trim().parse().ok()?,
            FieldValue::Bool(_) => return None,
        };
        genai::nano_usd_from_usd(usd)
    }

    fn as_string(&self) -> String {
        match self {
            FieldValue::Str(text) => (*text).to_owned(),
            FieldValue::Debug(text) => text.clone(),
            other => other.to_json().to_string(),
        }
    }
}

/// What a span's fields say beyond the step itself; resolved when the span closes.
#[derive(Debug, Default)]
pub(super) struct SpanFields {
    pub(super) is_genai: bool,
    has_operation: bool,
    pub(super) run_id: Option<String>,
    pub(super) session_id: Option<String>,
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
    if name.starts_with("gen_ai.") {
        fields.is_genai = true;
    }
    match name {
        "gen_ai.operation.name" => {
            let operation = value.as_string();
            step.kind = genai::kind_of_operation(&operation);
            fields.has_operation = !operation.is_empty();
            // The kind is coarser than the operation (chat vs generate_content): keep both.
            step.attributes
                .insert(name.to_owned(), Value::String(operation));
        }
        "gen_ai.request.model" => fields.request_model = Some(value.as_string()),
        "gen_ai.response.model" => fields.response_model = Some(value.as_string()),
        "gen_ai.provider.name" | "gen_ai.system" => step.provider = Some(value.as_string()),
        "gen_ai.usage.input_tokens" => set_count(&mut step.usage.input_tokens, &value),
        "gen_ai.usage.output_tokens" => set_count(&mut step.usage.output_tokens, &value),
        "gen_ai.usage.cache_read.input_tokens" => {
            set_count(&mut step.usage.cache_read_input_tokens, &value);
        }
        "gen_ai.usage.cache_creation.input_tokens" => {
            set_count(&mut step.usage.cache_creation_input_tokens, &value);
        }
        "gen_ai.usage.reasoning.output_tokens" | "gen_ai.usage.reasoning_tokens" => {
            set_count(&mut step.usage.reasoning_tokens, &value);
        }
        "gen_ai.usage.cost" => match value.as_nano_usd() {
            Some(nano) => step.cost_nano_usd = nano,
            None => keep_attribute(step, name, &value),
        },
        "gen_ai.tool.name" => fields.tool_name = Some(value.as_string()),
        "gen_ai.tool.call.id" => fields.tool_call_id = Some(value.as_string()),
        "gen_ai.tool.call.arguments" | "gen_ai.input.messages" | "gen_ai.prompt" => {
            step.input = Some(value.to_content());
        }
        "gen_ai.tool.call.result" | "gen_ai.output.messages" | "gen_ai.completion" => {
            step.output = Some(value.to_content());
        }
        "gen_ai.conversation.id" | "session.id" => fields.session_id = Some(value.as_string()),
        "gen_ai.agent.name" => {
            fields.agent_name = Some(value.as_string());
            keep_attribute(step, name, &value);
        }
        "error.type" => fields.error_type = Some(value.as_string()),
        "otel.name" => step.name = Some(value.as_string()),
        "otel.status_code" => {
            fields.status_error = value.as_string().eq_ignore_ascii_case("error");
        }
        "otel.status_message" => fields.status_message = Some(value.as_string()),
        "trace_store.run_id" => fields.run_id = Some(value.as_string()),
        "gen_ai.system_instructions" => {
            step.attributes.insert(name.to_owned(), value.to_content());
        }
        _ => keep_attribute(step, name, &value),
    }
}

fn set_count(slot: &mut u64, value: &FieldValue<'_>) {
    if let Some(count) = value.as_u64() {
        *slot = count;
    }
}

fn keep_attribute(step: &mut Step, name: &str, value: &FieldValue<'_>) {
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
                        .insert("gen_ai.request.model".to_owned(), Value::String(request));
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
                .insert("gen_ai.tool.call.id".to_owned(), Value::String(call_id));
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

/// Visits a span's or event's fields into a step.
pub(super) struct StepVisitor<'a> {
    pub(super) step: &'a mut Step,
    pub(super) fields: &'a mut SpanFields,
}

impl Visit for StepVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        apply_field(self.step, self.fields, field.name(), FieldValue::Str(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        apply_field(self.step, self.fields, field.name(), FieldValue::I64(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        apply_field(self.step, self.fields, field.name(), FieldValue::U64(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        apply_field(self.step, self.fields, field.name(), FieldValue::F64(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        apply_field(
            self.step,
            self.fields,
            field.name(),
            FieldValue::Bool(value),
        );
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        apply_field(
            self.step,
            self.fields,
            field.name(),
            FieldValue::Debug(format!("{value:?}")),
        );
    }
}

/// Collects an event's fields as a JSON object.
#[derive(Default)]
pub(super) struct JsonVisitor {
    pub(super) message: Option<String>,
    pub(super) fields: Map<String, Value>,
}

impl JsonVisitor {
    fn put(&mut self, field: &Field, value: FieldValue<'_>) {
        if field.name() == "message" {
            self.message = Some(value.as_string());
        } else {
            self.fields.insert(field.name().to_owned(), value.to_json());
        }
    }
}

impl Visit for JsonVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, FieldValue::Str(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, FieldValue::I64(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, FieldValue::U64(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, FieldValue::F64(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, FieldValue::Bool(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, FieldValue::Debug(format!("{value:?}")));
    }
}
