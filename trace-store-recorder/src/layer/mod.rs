//! `TraceLayer`: `tracing` span trees with OpenTelemetry GenAI fields, recorded as traces.

mod build;
mod fields;
mod record;
mod table;

use std::sync::Arc;

use trace_store_core::{Timestamp, Trace};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

pub(crate) use self::build::add_span_steps;
pub(crate) use self::record::SpanRecord;
use self::record::{EventRecord, EventVisitor, RecordVisitor, Ticks, callsite_flags};
use self::table::SpanTable;
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
/// The layer never blocks the instrumented task, and does little on it: an open span
/// keeps a compact record in the layer's table of open spans (a step number, raw field
/// values with short strings inline, raw clock readings), a closed span's record joins its run's
/// in memory, and a finished run goes to the recorder's queue (dropped and counted in
/// [`Recorder::health`] when it is full). Everything else (the GenAI mapping, step ids,
/// JSON, the [`Capture`](crate::Capture) policy, pricing) happens on the writer thread,
/// before anything is stored.
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
    open: SpanTable,
}

impl TraceLayer {
    /// A layer recording into `recorder`, keeping non-GenAI spans only on the path to a
    /// GenAI span.
    pub fn new(recorder: Recorder) -> TraceLayer {
        TraceLayer {
            recorder,
            spans: GenAiSpans::OnPath,
            open: SpanTable::new(),
        }
    }

    /// Which spans without GenAI fields to keep.
    #[must_use]
    pub fn spans(mut self, spans: GenAiSpans) -> TraceLayer {
        self.spans = spans;
        self
    }
}

/// An open span's state, kept in the layer's table until it closes.
struct SpanState {
    run: Arc<RunBuffer>,
    record: SpanRecord,
    /// The id of the span whose step is this one's parent (`None` for the run's root).
    parent: Option<u64>,
    /// What each field of the span's callsite means to the agent's side.
    flags: &'static [u8],
    /// The root named its run (`trace_store.run_id`): kept even without GenAI spans.
    named: bool,
    /// The span has a GenAI field or a descendant that has one.
    on_genai_path: bool,
}

/// What a new span takes from its parent's state.
struct ParentLink {
    id: u64,
    run: Arc<RunBuffer>,
    number: u64,
    on_genai_path: bool,
}

impl<S> Layer<S> for TraceLayer
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if table::in_user_code() {
            return;
        }
        let metadata = attrs.metadata();
        let flags = callsite_flags(metadata);
        let mut fields = record::Fields::with_capacity(metadata.fields().len());
        let mut visitor = RecordVisitor::new(&mut fields, flags);
        attrs.record(&mut visitor);
        let RecordVisitor {
            genai,
            run_id,
            session_id,
            ..
        } = visitor;
        let start = Ticks::now();
        let parent = self.parent_link(attrs, id, &ctx);
        let is_root = parent.is_none();
        let named = is_root && run_id.is_some();
        let (run, parent_id, parent_number, parent_on_genai_path) = match parent {
            Some(link) => (link.run, Some(link.id), link.number, link.on_genai_path),
            None => (self.start_run(run_id, start), None, 0, false),
        };
        if let Some(session_id) = session_id {
            run.update_header(|header| header.session_id = Some(session_id));
        }
        if genai {
            if parent_on_genai_path || is_root {
                // Every ancestor is marked already (or there is none): skip the walk.
                run.set_publishable();
            } else {
                self.mark_genai_path(parent_id, &run);
            }
        }
        let record = SpanRecord {
            id: run.next_step_number(),
            parent: parent_number,
            name: metadata.name(),
            start,
            end: start,
            is_root,
            panicked: false,
            fields,
            events: Vec::new(),
        };
        let key = id.into_u64();
        self.open.shard(key).insert(
            key,
            SpanState {
                run,
                record,
                parent: parent_id,
                flags,
                named,
                on_genai_path: genai,
            },
        );
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        if table::in_user_code() {
            return;
        }
        let key = id.into_u64();
        let newly_genai = {
            let mut shard = self.open.shard(key);
            let Some(state) = shard.get_mut(&key) else {
                return;
            };
            let mut visitor = RecordVisitor::new(&mut state.record.fields, state.flags);
            // A value's `Debug` is user code, run here under the shard's lock.
            table::run_user_code(|| values.record(&mut visitor));
            let RecordVisitor {
                genai,
                run_id,
                session_id,
                ..
            } = visitor;
            if let Some(session_id) = session_id {
                state
                    .run
                    .update_header(|header| header.session_id = Some(session_id));
            }
            if state.record.is_root
                && let Some(run_id) = run_id
            {
                state.named = true;
                state.run.update_header(|header| header.run_id = run_id);
                state.run.set_publishable();
            }
            (genai && !state.on_genai_path).then(|| {
                state.on_genai_path = true;
                (state.parent, state.run.clone())
            })
        };
        match newly_genai {
            Some((None, run)) => run.set_publishable(),
            Some((parent, run)) => self.mark_genai_path(parent, &run),
            None => {}
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if table::in_user_code() {
            return;
        }
        let Some(span) = ctx.event_span(event) else {
            return;
        };
        let mut visitor = EventVisitor {
            message: None,
            fields: Vec::new(),
        };
        event.record(&mut visitor);
        let metadata = event.metadata();
        let record = EventRecord {
            message: visitor.message,
            name: metadata.name(),
            level: *metadata.level(),
            time: Ticks::now(),
            fields: visitor.fields,
        };
        let key = span.id().into_u64();
        if let Some(state) = self.open.shard(key).get_mut(&key) {
            state.record.events.push(record);
        }
    }

    fn on_close(&self, id: Id, _ctx: Context<'_, S>) {
        if table::in_user_code() {
            return;
        }
        let key = id.into_u64();
        let Some(state) = self.open.shard(key).remove(&key) else {
            return;
        };
        let SpanState {
            run,
            mut record,
            named,
            on_genai_path,
            ..
        } = state;
        record.end = Ticks::now();
        record.panicked = std::thread::panicking();
        let is_root = record.is_root;
        if !(on_genai_path || named || self.spans == GenAiSpans::KeepAll) {
            if is_root {
                // Nothing of this tree is worth a trace; forget it.
                run.finish(|_| {});
            }
            return;
        }
        if let Some(late) = run.push_span(record) {
            // The registry keeps a root open while its children live, so this only
            // happens to a span whose parent was not the layer's root; fold it in anyway.
            self.recorder
                .shared
                .enqueue(Message::MergeRun(Box::new(late)));
            return;
        }
        if is_root && let Some(parts) = run.finish(|_| {}) {
            // The writer fills the header from the root's record.
            self.recorder
                .shared
                .enqueue(Message::SaveRun(Box::new(parts)));
        }
    }
}

impl TraceLayer {
    fn start_run(&self, run_id: Option<String>, start: Ticks) -> Arc<RunBuffer> {
        let publishable = run_id.is_some() || self.spans == GenAiSpans::KeepAll;
        let mut header = Trace::new(run_id.unwrap_or_else(new_run_id));
        if let Ok(created_at) = Timestamp::from_micros(start.unix_ns().div_euclid(1_000)) {
            // The same clock as the steps', so the root never starts before its run.
            header.created_at = created_at;
        }
        let run = RunBuffer::new(header, publishable);
        if let Some(live) = &self.recorder.shared.live {
            live.register(&run);
        }
        run
    }

    /// The state a new span hangs from: its parent's, found by the parent's id (the
    /// same parent the registry records), or else that of the nearest ancestor the
    /// layer saw (a parent a per-layer filter hid). `None`: the span starts a run.
    fn parent_link<S>(
        &self,
        attrs: &Attributes<'_>,
        id: &Id,
        ctx: &Context<'_, S>,
    ) -> Option<ParentLink>
    where
        S: Subscriber + for<'lookup> LookupSpan<'lookup>,
    {
        let direct = if attrs.is_root() {
            return None;
        } else if attrs.is_contextual() {
            ctx.current_span().id().map(Id::into_u64)
        } else {
            attrs.parent().map(Id::into_u64)
        };
        if let Some(link) = self.link_to(direct?) {
            return Some(link);
        }
        let span = ctx.span(id)?;
        span.scope()
            .skip(1)
            .find_map(|ancestor| self.link_to(ancestor.id().into_u64()))
    }

    fn link_to(&self, parent: u64) -> Option<ParentLink> {
        let shard = self.open.shard(parent);
        let state = shard.get(&parent)?;
        Some(ParentLink {
            id: parent,
            run: state.run.clone(),
            number: state.record.id,
            on_genai_path: state.on_genai_path,
        })
    }

    /// Marks every ancestor of a GenAI span, from its parent `parent` up, as on a GenAI
    /// path, stopping at the first one already marked (its ancestors are too); the run
    /// may be shown once the path reaches its root.
    fn mark_genai_path(&self, parent: Option<u64>, run: &RunBuffer) {
        let mut reached_root = parent.is_none();
        let mut next = parent;
        while let Some(id) = next {
            let mut shard = self.open.shard(id);
            let Some(state) = shard.get_mut(&id) else {
                break;
            };
            if state.on_genai_path {
                reached_root = true;
                break;
            }
            state.on_genai_path = true;
            reached_root = state.record.is_root;
            next = state.parent;
        }
        if reached_root {
            run.set_publishable();
        }
    }
}
