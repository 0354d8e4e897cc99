//! The data model: a [`Trace`] is one agent run, made of [`Step`]s.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::{Score, Timestamp};

/// The schema version this library writes and the newest it reads.
pub const SCHEMA_VERSION: u32 = 1;

/// One execution of an agent or workflow: every model call, tool call, token, dollar
/// and error of the run.
///
/// ```
/// use trace_store_core::{Status, Step, Trace};
///
/// let trace = Trace::new("run-1")
///     .with_name("support-bot")
///     .with_metadata("user_id", "u_42")
///     .with_status(Status::Ok)
///     .with_step(Step::llm_call("gpt-4o-mini").with_usage(1200, 80).with_cost_nano_usd(1_250_000))
///     .with_step(Step::tool_call("search").with_duration_us(35_000));
/// assert_eq!(trace.steps.len(), 2);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Trace {
    /// Schema version of this value; [`SCHEMA_VERSION`] for traces made by this library.
    #[serde(default = "schema_version_default")]
    pub schema_version: u32,
    /// The primary key: 1..=256 bytes, no control characters.
    pub run_id: String,
    /// The run that started this one (sub-agents, chained runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_run_id: Option<String>,
    /// Agent or workflow name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The conversation or thread this run belongs to (OpenTelemetry `session.id`,
    /// `gen_ai.conversation.id`); runs sharing it are the turns of one session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// When the run began: the ordering key of every listing and the key of
    /// `since`/`until`. Stores keep it as given.
    pub created_at: Timestamp,
    /// When the run ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    /// Outcome of the run.
    #[serde(default, skip_serializing_if = "Status::is_unset")]
    pub status: Status,
    /// Run-level failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
    /// User metadata; what [`TraceFilter::metadata_match`](crate::TraceFilter) matches.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, Value>,
    /// Steps in recorded order; nesting is expressed by [`Step::parent_id`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
    /// Feedback, evaluations and rewards, at most one per identity
    /// `(name, step_id, source)`; add them with [`Trace::add_score`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scores: Vec<Score>,
}

fn schema_version_default() -> u32 {
    SCHEMA_VERSION
}

impl Trace {
    /// A trace with this run_id, created now, with no steps.
    pub fn new(run_id: impl Into<String>) -> Trace {
        Trace {
            schema_version: SCHEMA_VERSION,
            run_id: run_id.into(),
            parent_run_id: None,
            name: None,
            session_id: None,
            created_at: Timestamp::now(),
            ended_at: None,
            status: Status::Unset,
            error: None,
            metadata: BTreeMap::new(),
            steps: Vec::new(),
            scores: Vec::new(),
        }
    }

    /// Sets the agent or workflow name.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Trace {
        self.name = Some(name.into());
        self
    }

    /// Sets the session (conversation, thread) the run belongs to.
    #[must_use]
    pub fn with_session_id(mut self, session_id: impl Into<String>) -> Trace {
        self.session_id = Some(session_id.into());
        self
    }

    /// Adds a score, replacing the one with the same identity (see [`Trace::add_score`]).
    #[must_use]
    pub fn with_score(mut self, score: Score) -> Trace {
        self.add_score(score);
        self
    }

    /// Adds a score. A score with the same identity `(name, step_id, source)` is
    /// replaced in place; a new one is appended.
    ///
    /// ```
    /// use trace_store_core::{Score, ScoreSource, Trace};
    ///
    /// let mut trace = Trace::new("r").with_score(Score::new("helpful").with_value(0.0));
    /// trace.add_score(Score::new("helpful").with_value(1.0));
    /// trace.add_score(Score::new("helpful").with_source(ScoreSource::Llm).with_value(0.5));
    /// assert_eq!(trace.scores.len(), 2);
    /// assert_eq!(trace.scores[0].value, Some(1.0));
    /// ```
    pub fn add_score(&mut self, score: Score) {
        match self.scores.iter_mut().find(|s| s.same_identity(&score)) {
            Some(existing) => *existing = score,
            None => self.scores.push(score),
        }
    }

    /// Sets the parent run.
    #[must_use]
    pub fn with_parent_run_id(mut self, parent_run_id: impl Into<String>) -> Trace {
        self.parent_run_id = Some(parent_run_id.into());
        self
    }

    /// Sets when the run began.
    #[must_use]
    pub fn with_created_at(mut self, created_at: Timestamp) -> Trace {
        self.created_at = created_at;
        self
    }

    /// Sets when the run ended.
    #[must_use]
    pub fn with_ended_at(mut self, ended_at: Timestamp) -> Trace {
        self.ended_at = Some(ended_at);
        self
    }

    /// Sets the outcome.
    #[must_use]
    pub fn with_status(mut self, status: Status) -> Trace {
        self.status = status;
        self
    }

    /// Marks the run failed with this error.
    #[must_use]
    pub fn with_error(mut self, error: ErrorInfo) -> Trace {
        self.status = Status::Error;
        self.error = Some(error);
        self
    }

    /// Adds one metadata entry.
    #[must_use]
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<Value>) -> Trace {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Appends a step.
    #[must_use]
    pub fn with_step(mut self, step: Step) -> Trace {
        self.steps.push(step);
        self
    }
}

/// One unit of work inside a run: a model call, a tool call, a retrieval, ...
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Step {
    /// Identifier, unique within the trace, that children name in `parent_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The step this one is nested in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// What kind of work this is.
    pub kind: StepKind,
    /// Human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// When the step started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    /// Wall-clock duration in microseconds.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub duration_us: u64,
    /// Outcome of the step.
    #[serde(default, skip_serializing_if = "Status::is_unset")]
    pub status: Status,
    /// Model name, for model calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Model provider, for model calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Token counts.
    #[serde(default, skip_serializing_if = "Usage::is_zero")]
    pub usage: Usage,
    /// Cost in nano-USD (1e-9 USD).
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub cost_nano_usd: i64,
    /// The tool called, for tool steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<ToolCall>,
    /// Input of the step (prompt, tool arguments, ...). A JSON `null` is kept as `Some(Null)`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub input: Option<Value>,
    /// Output of the step. A JSON `null` is kept as `Some(Null)`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub output: Option<Value>,
    /// What went wrong, if the step failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
    /// Anything else, passed through untouched.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, Value>,
}

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}

/// A present field is `Some`, even when its value is `null`.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

impl Step {
    /// A step of this kind with nothing else set.
    pub fn new(kind: StepKind) -> Step {
        Step {
            id: None,
            parent_id: None,
            kind,
            name: None,
            started_at: None,
            duration_us: 0,
            status: Status::Unset,
            model: None,
            provider: None,
            usage: Usage::default(),
            cost_nano_usd: 0,
            tool: None,
            input: None,
            output: None,
            error: None,
            attributes: BTreeMap::new(),
        }
    }

    /// A model call to `model`.
    pub fn llm_call(model: impl Into<String>) -> Step {
        let mut step = Step::new(StepKind::LlmCall);
        step.model = Some(model.into());
        step
    }

    /// A call of the tool `tool_name`.
    pub fn tool_call(tool_name: impl Into<String>) -> Step {
        let mut step = Step::new(StepKind::ToolCall);
        step.tool = Some(ToolCall::new(tool_name));
        step
    }

    /// Sets the step id.
    #[must_use]
    pub fn with_id(mut self, id: impl Into<String>) -> Step {
        self.id = Some(id.into());
        self
    }

    /// Nests this step under the step with id `parent_id`.
    #[must_use]
    pub fn with_parent_id(mut self, parent_id: impl Into<String>) -> Step {
        self.parent_id = Some(parent_id.into());
        self
    }

    /// Sets the name.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Step {
        self.name = Some(name.into());
        self
    }

    /// Sets the start time.
    #[must_use]
    pub fn with_started_at(mut self, started_at: Timestamp) -> Step {
        self.started_at = Some(started_at);
        self
    }

    /// Sets the duration in microseconds.
    #[must_use]
    pub fn with_duration_us(mut self, duration_us: u64) -> Step {
        self.duration_us = duration_us;
        self
    }

    /// Sets the outcome.
    #[must_use]
    pub fn with_status(mut self, status: Status) -> Step {
        self.status = status;
        self
    }

    /// Sets the model.
    #[must_use]
    pub fn with_model(mut self, model: impl Into<String>) -> Step {
        self.model = Some(model.into());
        self
    }

    /// Sets the provider.
    #[must_use]
    pub fn with_provider(mut self, provider: impl Into<String>) -> Step {
        self.provider = Some(provider.into());
        self
    }

    /// Sets input and output token counts.
    #[must_use]
    pub fn with_usage(mut self, input_tokens: u64, output_tokens: u64) -> Step {
        self.usage.input_tokens = input_tokens;
        self.usage.output_tokens = output_tokens;
        self
    }

    /// Sets the cost in nano-USD.
    #[must_use]
    pub fn with_cost_nano_usd(mut self, cost_nano_usd: i64) -> Step {
        self.cost_nano_usd = cost_nano_usd;
        self
    }

    /// Sets the input.
    #[must_use]
    pub fn with_input(mut self, input: impl Into<Value>) -> Step {
        self.input = Some(input.into());
        self
    }

    /// Sets the output.
    #[must_use]
    pub fn with_output(mut self, output: impl Into<Value>) -> Step {
        self.output = Some(output.into());
        self
    }

    /// Marks the step failed with this error.
    #[must_use]
    pub fn with_error(mut self, error: ErrorInfo) -> Step {
        self.status = Status::Error;
        self.error = Some(error);
        self
    }

    /// Adds one attribute.
    #[must_use]
    pub fn with_attribute(mut self, key: impl Into<String>, value: impl Into<Value>) -> Step {
        self.attributes.insert(key.into(), value.into());
        self
    }
}

/// What kind of work a [`Step`] is. Serialised as its snake_case name; a name this
/// library does not know is kept in [`StepKind::Other`] and written back unchanged.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum StepKind {
    /// A call to a language model.
    LlmCall,
    /// A call of a tool.
    ToolCall,
    /// The model choosing a tool.
    ToolSelection,
    /// Document retrieval.
    Retrieval,
    /// An embedding call.
    Embedding,
    /// A sub-agent.
    Agent,
    /// A chain or workflow span.
    Chain,
    /// A guardrail check.
    Guardrail,
    /// An answer served from a cache.
    CacheHit,
    /// Memory read or write.
    Memory,
    /// An error event.
    Error,
    /// Any other kind, by name. Use [`StepKind::from_name`] to build one, so that a
    /// known name becomes its own variant; saving `Other` with a known name is rejected.
    Other(String),
}

const KNOWN_KINDS: [(StepKind, &str); 11] = [
    (StepKind::LlmCall, "llm_call"),
    (StepKind::ToolCall, "tool_call"),
    (StepKind::ToolSelection, "tool_selection"),
    (StepKind::Retrieval, "retrieval"),
    (StepKind::Embedding, "embedding"),
    (StepKind::Agent, "agent"),
    (StepKind::Chain, "chain"),
    (StepKind::Guardrail, "guardrail"),
    (StepKind::CacheHit, "cache_hit"),
    (StepKind::Memory, "memory"),
    (StepKind::Error, "error"),
];

impl StepKind {
    /// The kind with this snake_case name: a known variant, else `Other(name)`.
    pub fn from_name(name: &str) -> StepKind {
        Self::known(name).unwrap_or_else(|| StepKind::Other(name.to_owned()))
    }

    fn known(name: &str) -> Option<StepKind> {
        KNOWN_KINDS
            .iter()
            .find(|(_, known)| *known == name)
            .map(|(kind, _)| kind.clone())
    }

    /// The snake_case name, as written in JSON.
    pub fn as_str(&self) -> &str {
        match self {
            StepKind::Other(name) => name,
            known => KNOWN_KINDS
                .iter()
                .find(|(kind, _)| kind == known)
                .map_or("", |(_, name)| name),
        }
    }

    /// True for `Other(name)` where `name` is a known kind's name, which would not
    /// read back as itself.
    pub(crate) fn is_ambiguous(&self) -> bool {
        matches!(self, StepKind::Other(name) if Self::known(name).is_some())
    }
}

impl fmt::Display for StepKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for StepKind {
    fn from(name: &str) -> StepKind {
        StepKind::from_name(name)
    }
}

impl Serialize for StepKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for StepKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Ok(StepKind::from_name(&name))
    }
}

/// Outcome of a run or a step.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not recorded.
    #[default]
    Unset,
    /// Still running.
    Running,
    /// Finished successfully.
    Ok,
    /// Failed.
    Error,
}

impl Status {
    /// True for [`Status::Unset`].
    pub fn is_unset(&self) -> bool {
        *self == Status::Unset
    }

    /// The snake_case name, as written in JSON.
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Unset => "unset",
            Status::Running => "running",
            Status::Ok => "ok",
            Status::Error => "error",
        }
    }

    /// Every status, in order.
    pub const ALL: [Status; 4] = [Status::Unset, Status::Running, Status::Ok, Status::Error];
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Status {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<Status> {
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| {
                crate::Error::invalid(format!(
                    "unknown status {s:?} (expected unset, running, ok or error)"
                ))
            })
    }
}

/// Token counts of a step; 0 means "none recorded".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Usage {
    /// Prompt tokens.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub input_tokens: u64,
    /// Completion tokens.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub output_tokens: u64,
    /// Prompt tokens read from the provider's cache.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub cache_read_input_tokens: u64,
    /// Prompt tokens written to the provider's cache.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub cache_creation_input_tokens: u64,
    /// Reasoning tokens.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub reasoning_tokens: u64,
}

impl Usage {
    /// Usage with input and output tokens.
    pub fn new(input_tokens: u64, output_tokens: u64) -> Usage {
        Usage {
            input_tokens,
            output_tokens,
            ..Usage::default()
        }
    }

    /// True when no count is recorded.
    pub fn is_zero(&self) -> bool {
        *self == Usage::default()
    }
}

/// The tool of a tool step.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ToolCall {
    /// Tool name.
    pub name: String,
    /// The provider's id of this call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
}

impl ToolCall {
    /// A call of the tool `name`.
    pub fn new(name: impl Into<String>) -> ToolCall {
        ToolCall {
            name: name.into(),
            call_id: None,
        }
    }

    /// Sets the provider's call id.
    #[must_use]
    pub fn with_call_id(mut self, call_id: impl Into<String>) -> ToolCall {
        self.call_id = Some(call_id.into());
        self
    }
}

/// A failure of a run or a step.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ErrorInfo {
    /// Error class, such as `"TimeoutError"`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// Error message.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Traceback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stacktrace: Option<String>,
}

impl ErrorInfo {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> ErrorInfo {
        ErrorInfo {
            error_type: None,
            message: message.into(),
            stacktrace: None,
        }
    }

    /// Sets the error class.
    #[must_use]
    pub fn with_type(mut self, error_type: impl Into<String>) -> ErrorInfo {
        self.error_type = Some(error_type.into());
        self
    }

    /// Sets the traceback.
    #[must_use]
    pub fn with_stacktrace(mut self, stacktrace: impl Into<String>) -> ErrorInfo {
        self.stacktrace = Some(stacktrace.into());
        self
    }
}
