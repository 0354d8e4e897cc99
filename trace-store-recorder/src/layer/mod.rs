//! `TraceLayer`: `tracing` span trees with OpenTelemetry GenAI fields, recorded as traces.

mod fields;

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value};
use trace_store_core::{Step, StepKind, Timestamp, Trace};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use self::fields::{JsonVisitor, SpanFields, StepVisitor};
use crate::Recorder;
use crate::live::RunBuffer;
use crate::recorder::Message;
use crate::run::new_run_id;

/// Which spans without GenAI fields a [`TraceLayer`] keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum GenAiSpans {
    /// Keep a span without GenAI fields only when it lies between its root and a GenAI
    /// span, so the tree stays whole; a root with no GenAI span under it records
    /// nothing unless it names its run with a `trace_store.run_id` field (the default).
    #[default]
    OnPath,
    /// Keep every span of every tree.
    KeepAll,
}

/// A [`tracing_subscriber::Layer`] that records span trees as traces through a
/// [`Recorder`], with no OpenTelemetry dependency.
///
/// Each root span is one run: its run_id is the root's `trace_store.run_id` field,
/// else a fresh time-ordered UUIDv7. Each span is a step whose `id` is unique in the
/// run and whose `parent_id` is its parent span's step. The GenAI fields of the
/// OpenTelemetry semantic conventions, and the aliases rig, genai and others emit,
/// fill the step:
///
/// | field | step |
/// |---|---|
/// | `gen_ai.operation.name` | `kind`: chat, text_completion, generate_content, chat_streaming -> `llm_call`; embeddings -> `embedding`; execute_tool -> `tool_call`; invoke_agent, create_agent -> `agent`; invoke_workflow -> `chain`; retrieval -> `retrieval`; another name of a kind -> that kind, else `other(name)`; none: `tool_call` if the span names a tool, `llm_call` if it names a model, else `chain` (the mapping is [`trace_store_core::genai`]'s; the name is kept in `attributes` too) |
/// | `gen_ai.response.model`, else `gen_ai.request.model` | `model` (a differing request model stays in `attributes`) |
/// | `gen_ai.provider.name`, `gen_ai.system` | `provider` |
/// | `gen_ai.usage.input_tokens`, `output_tokens`, `cache_read.input_tokens`, `cache_creation.input_tokens`, `reasoning.output_tokens` (and rig's `reasoning_tokens`) | `usage` |
/// | `gen_ai.usage.cost` (USD) | `cost_nano_usd` |
/// | `gen_ai.tool.name`, `gen_ai.tool.call.id` | `tool` |
/// | `gen_ai.tool.call.arguments`, `gen_ai.input.messages`, `gen_ai.prompt` | `input` (JSON strings parsed) |
/// | `gen_ai.tool.call.result`, `gen_ai.output.messages`, `gen_ai.completion` | `output` (JSON strings parsed) |
/// | `gen_ai.conversation.id`, `session.id` | the run's `session_id` |
/// | `gen_ai.agent.name` on the root | the run's `name` (else the root step's name) |
/// | `error.type`, `otel.status_code = ERROR`, `otel.status_message` | `status` error and `error` |
/// | `otel.name` | `name` (else the span's name) |
/// | anything else | `attributes` |
///
/// Events inside a span are kept on its step, in `attributes["events"]` as
/// `[{"name", "time", "fields"}]`. A span closed while its thread panics is an error.
/// Spans without GenAI fields are kept as [`GenAiSpans`] says.
///
/// The layer never blocks the instrumented task: each span's state lives in its span's
/// extensions, finished steps gather in memory per run, and a finished run goes to the
/// recorder's queue (dropped and counted in [`Recorder::health`] when it is full).
///
/// ```
/// use std::sync::Arc;
/// use tracing_subscriber::layer::SubscriberExt;
/// use trace_store_core::{StepKind, TraceStore};
/// use trace_store_memory::MemoryStore;
/// use trace_store_recorder::{Recorder, RecorderOptions, TraceLayer};
///
/// let store = Arc::new(MemoryStore::unbounded());
/// let recorder = Recorder::spawn(store.clone(), RecorderOptions::new());
/// let subscriber = tracing_subscriber::registry().with(TraceLayer::new(recorder.clone()));
/// tracing::subscriber::with_default(subscriber, || {
///     let agent = tracing::info_span!("invoke_agent", trace_store.run_id = "run-7",
///         gen_ai.operation.name = "invoke_agent");
///     let _entered = agent.enter();
///     tracing::info_span!("chat", gen_ai.operation.name = "chat",
///         gen_ai.request.model = "gpt-4o-mini", gen_ai.usage.input_tokens = 12_u64,
///         gen_ai.usage.output_tokens = 3_u64).in_scope(|| {});
/// });
/// recorder.flush()?;
/// let trace = store.load("run-7")?;
/// assert_eq!(trace.steps[1].kind, StepKind::LlmCall);
/// assert_eq!(trace.steps[1].usage.input_tokens, 12);
/// # Ok::<(), trace_store_core::Error>(())
/// ```
#[derive(Debug)]
pub struct TraceLayer {
    recorder: Recorder,
    spans: GenAiSpans,
}

impl TraceLayer {
    /// A layer recording into `recorder`, keeping non-GenAI spans only on the path to a
    /// GenAI span.
    pub fn new(recorder: Recorder) -> TraceLayer {
        TraceLayer {
            recorder,
            spans: GenAiSpans::OnPath,
        }
    }

    /// Which spans without GenAI fields to keep.
    #[must_use]
    pub fn spans(mut self, spans: GenAiSpans) -> TraceLayer {
        self.spans = spans;
        self
    }
}

/// A span's state, kept in its extensions while it is open.
struct SpanState {
    run: Arc<RunBuffer>,
    step: Step,
    fields: SpanFields,
    started: Instant,
    is_root: bool,
    /// The span has a GenAI field or a descendant that has one.
    on_genai_path: bool,
}

impl<S> Layer<S> for TraceLayer
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let parent = span.parent().and_then(|parent| {
            let extensions = parent.extensions();
            extensions.get::<SpanState>().map(|state| {
                (
                    state.run.clone(),
                    state.step.id.clone(),
                    state.on_genai_path,
                )
            })
        });
        // Filled in place: the builder methods move the (large) step once per call.
        let mut step = Step::new(StepKind::Chain);
        step.name = Some(attrs.metadata().name().to_owned());
        step.started_at = Some(Timestamp::now());
        let mut fields = SpanFields::default();
        attrs.record(&mut StepVisitor {
            step: &mut step,
            fields: &mut fields,
        });
        let is_root = parent.is_none();
        let (run, parent_on_genai_path) = match parent {
            Some((run, parent_id, parent_on_genai_path)) => {
                step.parent_id = parent_id;
                (run, parent_on_genai_path)
            }
            None => (self.start_run(&fields), false),
        };
        step.id = Some(run.next_step_id());
        if let Some(session_id) = fields.session_id.take() {
            run.update_header(|header| header.session_id = Some(session_id));
        }
        let on_genai_path = fields.is_genai;
        if on_genai_path {
            if parent_on_genai_path {
                // Every ancestor is marked already; skip the walk up the tree.
                run.set_publishable();
            } else {
                mark_genai_path(&span, &run);
            }
        }
        span.extensions_mut().insert(SpanState {
            run,
            step,
            fields,
            started: Instant::now(),
            is_root,
            on_genai_path,
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let newly_genai = {
            let mut extensions = span.extensions_mut();
            let Some(state) = extensions.get_mut::<SpanState>() else {
                return;
            };
            let was_genai = state.fields.is_genai;
            values.record(&mut StepVisitor {
                step: &mut state.step,
                fields: &mut state.fields,
            });
            if let Some(session_id) = state.fields.session_id.take() {
                state
                    .run
                    .update_header(|header| header.session_id = Some(session_id));
            }
            if state.is_root
                && let Some(run_id) = state.fields.run_id.clone()
            {
                state.run.update_header(|header| header.run_id = run_id);
                state.run.set_publishable();
            }
            (!was_genai && state.fields.is_genai).then(|| {
                state.on_genai_path = true;
                state.run.clone()
            })
        };
        if let Some(run) = newly_genai {
            mark_genai_path(&span, &run);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.event_span(event) else {
            return;
        };
        let mut extensions = span.extensions_mut();
        let Some(state) = extensions.get_mut::<SpanState>() else {
            return;
        };
        let mut visitor = JsonVisitor::default();
        event.record(&mut visitor);
        let mut entry = Map::new();
        let name = visitor
            .message
            .unwrap_or_else(|| event.metadata().name().to_owned());
        entry.insert("name".to_owned(), Value::String(name));
        entry.insert(
            "time".to_owned(),
            serde_json::to_value(Timestamp::now()).unwrap_or(Value::Null),
        );
        entry.insert(
            "level".to_owned(),
            Value::String(event.metadata().level().to_string()),
        );
        if !visitor.fields.is_empty() {
            entry.insert("fields".to_owned(), Value::Object(visitor.fields));
        }
        let events = state
            .step
            .attributes
            .entry("events".to_owned())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(events) = events {
            events.push(Value::Object(entry));
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else {
            return;
        };
        let Some(mut state) = span.extensions_mut().remove::<SpanState>() else {
            return;
        };
        let mut step = state.step;
        step.duration_us = u64::try_from(state.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        state.fields.resolve(&mut step, std::thread::panicking());
        let keep_all = self.spans == GenAiSpans::KeepAll;
        let named_run = state.fields.run_id.is_some();
        if !(state.on_genai_path || keep_all || (state.is_root && named_run)) {
            if state.is_root {
                // Nothing of this tree is worth a trace; forget it.
                state.run.finish(|_| {});
            }
            return;
        }
        let root_status = step.status;
        // Only a root's name and error go into the run's header.
        let (root_error, root_name) = if state.is_root {
            (step.error.clone(), step.name.clone())
        } else {
            (None, None)
        };
        self.recorder.shared.capture.apply_to_step(&mut step);
        if let Some(late) = state.run.push_step(step) {
            // The registry keeps a root open while its children live, so this only
            // happens to a span whose parent was not the layer's root; fold it in anyway.
            self.recorder.shared.enqueue(Message::Merge(Box::new(late)));
            return;
        }
        if !state.is_root {
            return;
        }
        let agent_name = state.fields.agent_name.take();
        let finished = state.run.finish(|trace| {
            trace.name = agent_name.or(root_name);
            trace.status = root_status;
            trace.error = root_error;
            trace.ended_at = Some(Timestamp::now());
        });
        if let Some(mut trace) = finished {
            self.recorder
                .shared
                .capture
                .apply_to_trace_header(&mut trace);
            self.recorder.shared.enqueue(Message::Save(Box::new(trace)));
        }
    }
}

impl TraceLayer {
    fn start_run(&self, fields: &SpanFields) -> Arc<RunBuffer> {
        let run_id = fields.run_id.clone().unwrap_or_else(new_run_id);
        let named = fields.run_id.is_some();
        let run = RunBuffer::new(
            Trace::new(run_id),
            named || self.spans == GenAiSpans::KeepAll,
        );
        if let Some(live) = &self.recorder.shared.live {
            live.register(&run);
        }
        run
    }
}

/// Marks every ancestor of a GenAI span as on a GenAI path, stopping at the first one
/// already marked (its ancestors are too).
fn mark_genai_path<S>(span: &tracing_subscriber::registry::SpanRef<'_, S>, run: &RunBuffer)
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
{
    let mut reached_root = span.parent().is_none();
    for ancestor in span.scope().skip(1) {
        let mut extensions = ancestor.extensions_mut();
        let Some(state) = extensions.get_mut::<SpanState>() else {
            break;
        };
        if state.on_genai_path {
            reached_root = true;
            break;
        }
        state.on_genai_path = true;
        reached_root = state.is_root;
    }
    if reached_root {
        run.set_publishable();
    }
}
