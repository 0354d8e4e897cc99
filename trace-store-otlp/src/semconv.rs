//! Attribute names: the OpenTelemetry GenAI semantic conventions this crate reads and
//! writes, and the `trace_store.*` names it adds for what the conventions do not cover.
//!
//! Defined here rather than taken from `opentelemetry-semantic-conventions`, whose GenAI
//! items are still incubating and have been renamed between releases (`gen_ai.system` ->
//! `gen_ai.provider.name`); the strings below are what travels on the wire.

/// The operation: `chat`, `embeddings`, `execute_tool`, `invoke_agent`, ...
pub const GEN_AI_OPERATION_NAME: &str = "gen_ai.operation.name";
/// The model asked for.
pub const GEN_AI_REQUEST_MODEL: &str = "gen_ai.request.model";
/// The model that answered (read when `gen_ai.request.model` is missing).
pub const GEN_AI_RESPONSE_MODEL: &str = "gen_ai.response.model";
/// The provider: `openai`, `anthropic`, ...
pub const GEN_AI_PROVIDER_NAME: &str = "gen_ai.provider.name";
/// The provider under its older name (read when `gen_ai.provider.name` is missing).
pub const GEN_AI_SYSTEM: &str = "gen_ai.system";
/// Prompt tokens.
pub const GEN_AI_USAGE_INPUT_TOKENS: &str = "gen_ai.usage.input_tokens";
/// Completion tokens.
pub const GEN_AI_USAGE_OUTPUT_TOKENS: &str = "gen_ai.usage.output_tokens";
/// Prompt tokens read from the provider's cache.
pub const GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: &str = "gen_ai.usage.cache_read.input_tokens";
/// Prompt tokens written to the provider's cache.
pub const GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: &str =
    "gen_ai.usage.cache_creation.input_tokens";
/// Reasoning tokens.
pub const GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: &str = "gen_ai.usage.reasoning.output_tokens";
/// Cost in USD, a double: written for other tools, read when
/// [`TRACE_STORE_COST_NANO_USD`] is missing.
pub const GEN_AI_USAGE_COST: &str = "gen_ai.usage.cost";
/// The tool's name.
pub const GEN_AI_TOOL_NAME: &str = "gen_ai.tool.name";
/// The provider's id of the tool call.
pub const GEN_AI_TOOL_CALL_ID: &str = "gen_ai.tool.call.id";
/// Tool arguments (read as the input of a tool step when no input messages are set).
pub const GEN_AI_TOOL_CALL_ARGUMENTS: &str = "gen_ai.tool.call.arguments";
/// Tool result (read as the output of a tool step).
pub const GEN_AI_TOOL_CALL_RESULT: &str = "gen_ai.tool.call.result";
/// The messages sent to the model.
pub const GEN_AI_INPUT_MESSAGES: &str = "gen_ai.input.messages";
/// The messages the model answered.
pub const GEN_AI_OUTPUT_MESSAGES: &str = "gen_ai.output.messages";
/// The conversation (session) a run belongs to.
pub const GEN_AI_CONVERSATION_ID: &str = "gen_ai.conversation.id";
/// The session, in the general conventions (read when `gen_ai.conversation.id` is missing).
pub const SESSION_ID: &str = "session.id";
/// The class of an error.
pub const ERROR_TYPE: &str = "error.type";
/// Name of the span event that records an exception.
pub const EXCEPTION_EVENT: &str = "exception";
/// Exception class, on an `exception` event.
pub const EXCEPTION_TYPE: &str = "exception.type";
/// Exception message, on an `exception` event.
pub const EXCEPTION_MESSAGE: &str = "exception.message";
/// Traceback, on an `exception` event.
pub const EXCEPTION_STACKTRACE: &str = "exception.stacktrace";
/// The resource attribute naming the service.
pub const SERVICE_NAME: &str = "service.name";

/// Operation names of [`GEN_AI_OPERATION_NAME`]: core's, the one list the recorder
/// and this crate map to step kinds.
pub use trace_store_core::genai::operation;

/// Marks the span that carries a trace's header fields; it is not a step.
pub const TRACE_STORE_RUN: &str = "trace_store.run";
/// The run_id, on every span of a trace whose run_id is not 32 lower-case hex digits.
pub const TRACE_STORE_RUN_ID: &str = "trace_store.run_id";
/// The parent run, on the run span.
pub const TRACE_STORE_PARENT_RUN_ID: &str = "trace_store.parent_run_id";
/// The trace metadata (a map), on the run span.
pub const TRACE_STORE_METADATA: &str = "trace_store.metadata";
/// The trace scores (an array of score objects), on the run span.
pub const TRACE_STORE_SCORES: &str = "trace_store.scores";
/// The schema version, on the run span, when it is not the current one.
pub const TRACE_STORE_SCHEMA_VERSION: &str = "trace_store.schema_version";
/// The trace's `created_at` in µs, on a span that starts earlier or has no start time.
pub const TRACE_STORE_CREATED_AT_US: &str = "trace_store.created_at_us";
/// `true` on a span whose step or run has no name (the span is named after its kind).
pub const TRACE_STORE_UNNAMED: &str = "trace_store.unnamed";
/// `true` on a span whose step has no `started_at`.
pub const TRACE_STORE_NO_START: &str = "trace_store.no_start";
/// `true` on the run span when the trace has no `ended_at`.
pub const TRACE_STORE_NO_END: &str = "trace_store.no_end";
/// `true` on a span whose step had no id (its span id is generated).
pub const TRACE_STORE_GENERATED_ID: &str = "trace_store.generated_id";
/// The step id, when it is not 16 lower-case hex digits (its span id is then a hash).
pub const TRACE_STORE_STEP_ID: &str = "trace_store.step_id";
/// The parent step id, when it is not 16 lower-case hex digits.
pub const TRACE_STORE_PARENT_ID: &str = "trace_store.parent_id";
/// The step kind, when `gen_ai.operation.name` does not tell it.
pub const TRACE_STORE_STEP_KIND: &str = "trace_store.step.kind";
/// `running`, when the status is Running (OTLP has no such code).
pub const TRACE_STORE_STATUS: &str = "trace_store.status";
/// The cost in nano-USD, an exact integer.
pub const TRACE_STORE_COST_NANO_USD: &str = "trace_store.cost_nano_usd";
/// The error of a step or run, as an object `{type, message, stacktrace}`, when the span
/// status and `error.type` cannot carry it exactly.
pub const TRACE_STORE_ERROR: &str = "trace_store.error";
/// The whole step as JSON text: the lossless fallback for a step whose fields the
/// mapping above cannot carry exactly (for example an attribute named like a mapped one).
pub const TRACE_STORE_STEP: &str = "trace_store.step";
/// The whole trace header as JSON text: the same fallback for the run span.
pub const TRACE_STORE_HEADER: &str = "trace_store.header";
/// Prefix of a step attribute whose own name is reserved by the mapping.
pub const TRACE_STORE_ATTR_PREFIX: &str = "trace_store.attr.";

/// Step attributes that keep what a foreign span has beyond the model's fields, so that
/// OTLP -> trace-store -> OTLP gives back the same spans.
pub mod otlp {
    /// Span start and end in ns, as decimal strings, when they are not whole µs.
    pub const TIME_NS: &str = "trace_store.otlp.time_ns";
    /// Span kind (an integer), when it is not INTERNAL.
    pub const SPAN_KIND: &str = "trace_store.otlp.span_kind";
    /// W3C trace state.
    pub const TRACE_STATE: &str = "trace_store.otlp.trace_state";
    /// Span flags.
    pub const FLAGS: &str = "trace_store.otlp.flags";
    /// Span events: `[{name, time_unix_nano, attributes, dropped_attributes_count}]`.
    pub const EVENTS: &str = "trace_store.otlp.events";
    /// Span links: `[{trace_id, span_id, trace_state, attributes, dropped_attributes_count, flags}]`.
    pub const LINKS: &str = "trace_store.otlp.links";
    /// Dropped counts: `{attributes, events, links}`.
    pub const DROPPED: &str = "trace_store.otlp.dropped";
    /// The status message, when the step has no error to carry it.
    pub const STATUS_MESSAGE: &str = "trace_store.otlp.status_message";
    /// Resource: `{attributes, dropped_attributes_count, schema_url}`.
    pub const RESOURCE: &str = "trace_store.otlp.resource";
    /// Instrumentation scope: `{name, version, attributes, dropped_attributes_count, schema_url}`.
    pub const SCOPE: &str = "trace_store.otlp.scope";
}
