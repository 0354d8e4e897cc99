//! The OpenTelemetry GenAI mapping that every producer of steps shares: which
//! [`StepKind`] a span's `gen_ai.operation.name` stands for, which operation name a kind
//! is written as, and how a USD cost becomes integer nano-USD.
//!
//! The recorder's `TraceLayer` and the OTLP importer both read foreign spans through
//! these functions, so one span gives the same step whichever way it arrives.
//!
//! Decisions, made once here:
//! - `chat_streaming` is a model call, like `chat` (DESIGN section 13's list).
//! - An operation name outside the list keeps its own name as the kind when it is
//!   one of [`StepKind`]'s names (`retrieval`, `guardrail`, ...), and is otherwise
//!   `StepKind::Other(name)` (so `rerank` is `other("rerank")`): the producer's word is
//!   kept rather than folded into `chain`. An empty name counts as none.
//! - A span with no operation name is a tool call when it names a tool, a model call
//!   when it names a model (request or response), and a chain otherwise.
//! - Costs arrive as USD floats; [`nano_usd_from_usd`] multiplies by 1e9 in `f64` and
//!   rounds to the nearest integer, halves away from zero; NaN, infinities and amounts
//!   beyond `i64` give `None`. Every nano-USD amount under 2^51 in size (about
//!   2.2 million USD) survives [`usd_from_nano_usd`] and back unchanged.
//! - Not unified: which model a span names. The recorder keeps the model that answered
//!   (`gen_ai.response.model`, else the request's); the OTLP importer reads
//!   `gen_ai.request.model` first, because its exporter writes the model there and an
//!   OTLP round trip must give back the same attributes.

use crate::StepKind;

/// The operation: `chat`, `embeddings`, `execute_tool`, `invoke_agent`, ...
pub const OPERATION_NAME: &str = "gen_ai.operation.name";
/// The model asked for.
pub const REQUEST_MODEL: &str = "gen_ai.request.model";
/// The model that answered.
pub const RESPONSE_MODEL: &str = "gen_ai.response.model";
/// The provider: `openai`, `anthropic`, ...
pub const PROVIDER_NAME: &str = "gen_ai.provider.name";
/// The provider under its older name.
pub const SYSTEM: &str = "gen_ai.system";
/// Prompt tokens.
pub const USAGE_INPUT_TOKENS: &str = "gen_ai.usage.input_tokens";
/// Completion tokens.
pub const USAGE_OUTPUT_TOKENS: &str = "gen_ai.usage.output_tokens";
/// Prompt tokens read from the provider's cache.
pub const USAGE_CACHE_READ_INPUT_TOKENS: &str = "gen_ai.usage.cache_read.input_tokens";
/// Prompt tokens written to the provider's cache.
pub const USAGE_CACHE_CREATION_INPUT_TOKENS: &str = "gen_ai.usage.cache_creation.input_tokens";
/// Reasoning tokens.
pub const USAGE_REASONING_OUTPUT_TOKENS: &str = "gen_ai.usage.reasoning.output_tokens";
/// Reasoning tokens, as rig names them.
pub const USAGE_REASONING_TOKENS: &str = "gen_ai.usage.reasoning_tokens";
/// Cost in USD, a float (see [`nano_usd_from_usd`]).
pub const USAGE_COST: &str = "gen_ai.usage.cost";
/// The tool's name.
pub const TOOL_NAME: &str = "gen_ai.tool.name";
/// The provider's id of the tool call.
pub const TOOL_CALL_ID: &str = "gen_ai.tool.call.id";
/// Tool arguments.
pub const TOOL_CALL_ARGUMENTS: &str = "gen_ai.tool.call.arguments";
/// Tool result.
pub const TOOL_CALL_RESULT: &str = "gen_ai.tool.call.result";
/// The messages sent to the model.
pub const INPUT_MESSAGES: &str = "gen_ai.input.messages";
/// The messages the model answered.
pub const OUTPUT_MESSAGES: &str = "gen_ai.output.messages";
/// The prompt, under its legacy name.
pub const PROMPT: &str = "gen_ai.prompt";
/// The completion, under its legacy name.
pub const COMPLETION: &str = "gen_ai.completion";
/// The system instructions given to the model.
pub const SYSTEM_INSTRUCTIONS: &str = "gen_ai.system_instructions";
/// The agent's name.
pub const AGENT_NAME: &str = "gen_ai.agent.name";
/// The conversation (session) a run belongs to.
pub const CONVERSATION_ID: &str = "gen_ai.conversation.id";
/// The session, in the general conventions.
pub const SESSION_ID: &str = "session.id";
/// The class of an error.
pub const ERROR_TYPE: &str = "error.type";

/// Values of [`OPERATION_NAME`] with a kind of their own.
pub mod operation {
    /// A chat completion.
    pub const CHAT: &str = "chat";
    /// A streamed chat completion.
    pub const CHAT_STREAMING: &str = "chat_streaming";
    /// A text completion.
    pub const TEXT_COMPLETION: &str = "text_completion";
    /// Gemini's content generation.
    pub const GENERATE_CONTENT: &str = "generate_content";
    /// An embeddings call.
    pub const EMBEDDINGS: &str = "embeddings";
    /// A tool execution.
    pub const EXECUTE_TOOL: &str = "execute_tool";
    /// An agent invocation.
    pub const INVOKE_AGENT: &str = "invoke_agent";
    /// An agent creation.
    pub const CREATE_AGENT: &str = "create_agent";
    /// A workflow invocation.
    pub const INVOKE_WORKFLOW: &str = "invoke_workflow";
    /// A retrieval from a data source.
    pub const RETRIEVAL: &str = "retrieval";
}

/// The kind a `gen_ai.operation.name` stands for (see the module docs for names
/// outside the list).
pub fn kind_of_operation(operation: &str) -> StepKind {
    use operation::*;
    match operation {
        CHAT | CHAT_STREAMING | TEXT_COMPLETION | GENERATE_CONTENT => StepKind::LlmCall,
        EMBEDDINGS => StepKind::Embedding,
        EXECUTE_TOOL => StepKind::ToolCall,
        INVOKE_AGENT | CREATE_AGENT => StepKind::Agent,
        INVOKE_WORKFLOW | "" => StepKind::Chain,
        RETRIEVAL => StepKind::Retrieval,
        other => StepKind::from_name(other),
    }
}

/// The kind of a span from its operation name, or, without one, from whether it names
/// a tool or a model.
pub fn infer_kind(operation: Option<&str>, names_tool: bool, names_model: bool) -> StepKind {
    match operation {
        Some(operation) if !operation.is_empty() => kind_of_operation(operation),
        _ if names_tool => StepKind::ToolCall,
        _ if names_model => StepKind::LlmCall,
        _ => StepKind::Chain,
    }
}

/// The `gen_ai.operation.name` a kind is written as, when the conventions name one;
/// [`kind_of_operation`] reads it back as the same kind.
pub fn operation_of_kind(kind: &StepKind) -> Option<&'static str> {
    Some(match kind {
        StepKind::LlmCall => operation::CHAT,
        StepKind::Embedding => operation::EMBEDDINGS,
        StepKind::ToolCall => operation::EXECUTE_TOOL,
        StepKind::Agent => operation::INVOKE_AGENT,
        StepKind::Retrieval => operation::RETRIEVAL,
        _ => return None,
    })
}

/// A USD amount as integer nano-USD: `usd * 1e9` rounded to the nearest integer,
/// halves away from zero; `None` for NaN, infinities and amounts beyond `i64`.
pub fn nano_usd_from_usd(usd: f64) -> Option<i64> {
    // 2^63 is exact in f64; i64::MAX as f64 rounds up to it.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    let nano = (usd * 1e9).round();
    (nano.is_finite() && (-LIMIT..LIMIT).contains(&nano)).then_some(nano as i64)
}

/// Nano-USD as a USD float, as `gen_ai.usage.cost` carries it.
pub fn usd_from_nano_usd(nano: i64) -> f64 {
    nano as f64 / 1e9
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn operations_map_to_the_design_list() {
        let cases = [
            ("chat", StepKind::LlmCall),
            ("chat_streaming", StepKind::LlmCall),
            ("text_completion", StepKind::LlmCall),
            ("generate_content", StepKind::LlmCall),
            ("embeddings", StepKind::Embedding),
            ("execute_tool", StepKind::ToolCall),
            ("invoke_agent", StepKind::Agent),
            ("create_agent", StepKind::Agent),
            ("invoke_workflow", StepKind::Chain),
            ("retrieval", StepKind::Retrieval),
            ("guardrail", StepKind::Guardrail),
            ("rerank", StepKind::Other("rerank".to_owned())),
            ("", StepKind::Chain),
        ];
        for (operation, kind) in cases {
            assert_eq!(kind_of_operation(operation), kind, "{operation:?}");
        }
    }

    #[test]
    fn without_an_operation_a_tool_wins_over_a_model() {
        assert_eq!(infer_kind(None, true, true), StepKind::ToolCall);
        assert_eq!(infer_kind(None, false, true), StepKind::LlmCall);
        assert_eq!(infer_kind(Some(""), false, true), StepKind::LlmCall);
        assert_eq!(infer_kind(None, false, false), StepKind::Chain);
        assert_eq!(infer_kind(Some("chat"), true, false), StepKind::LlmCall);
    }

    #[test]
    fn written_operations_read_back_as_their_kind() {
        let kinds = [
            StepKind::LlmCall,
            StepKind::ToolCall,
            StepKind::Embedding,
            StepKind::Agent,
            StepKind::Retrieval,
            StepKind::Chain,
            StepKind::Guardrail,
            StepKind::Other("rerank".to_owned()),
        ];
        for kind in kinds {
            if let Some(operation) = operation_of_kind(&kind) {
                assert_eq!(kind_of_operation(operation), kind);
            }
        }
        assert_eq!(operation_of_kind(&StepKind::Chain), None);
    }

    #[test]
    fn usd_rounds_to_the_nearest_nano_halves_away_from_zero() {
        assert_eq!(nano_usd_from_usd(0.000_123), Some(123_000));
        assert_eq!(nano_usd_from_usd(1.5), Some(1_500_000_000));
        assert_eq!(nano_usd_from_usd(2.5e-9), Some(3));
        assert_eq!(nano_usd_from_usd(-2.5e-9), Some(-3));
        assert_eq!(nano_usd_from_usd(0.4e-9), Some(0));
        assert_eq!(nano_usd_from_usd(f64::NAN), None);
        assert_eq!(nano_usd_from_usd(f64::INFINITY), None);
        assert_eq!(nano_usd_from_usd(9.3e9), None);
        assert_eq!(nano_usd_from_usd(-9.3e9), None);
        assert_eq!(nano_usd_from_usd(9.2e9), Some(9_200_000_000_000_000_000));
    }

    proptest! {
        #[test]
        fn nano_usd_survives_a_trip_through_usd(nano in -(1_i64 << 51)..(1_i64 << 51)) {
            prop_assert_eq!(nano_usd_from_usd(usd_from_nano_usd(nano)), Some(nano));
        }
    }
}
