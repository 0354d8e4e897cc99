//! Live runs recorded step by step: [`Run`] and [`StepGuard`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;
use trace_store_core::{ErrorInfo, Status, Step, StepKind, Timestamp, Trace, Usage};

use crate::Recorder;
use crate::live::RunBuffer;
use crate::recorder::Message;

/// How a run started by [`Recorder::start_run`] is labelled, built from [`Default`]
/// (or [`RunOptions::new`]) with the `with_*` setters.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct RunOptions {
    /// The run_id; `None` for a fresh time-ordered one (UUIDv7).
    pub run_id: Option<String>,
    /// The run's name (agent or workflow).
    pub name: Option<String>,
    /// The conversation this run belongs to.
    pub session_id: Option<String>,
    /// The run that started this one.
    pub parent_run_id: Option<String>,
    /// Metadata entries (the keys `query` filters on).
    pub metadata: BTreeMap<String, Value>,
}

impl RunOptions {
    /// No name, a fresh time-ordered run_id (UUIDv7).
    pub fn new() -> RunOptions {
        RunOptions::default()
    }

    /// The run's name (agent or workflow).
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> RunOptions {
        self.name = Some(name.into());
        self
    }

    /// Use this run_id instead of a fresh one.
    #[must_use]
    pub fn with_run_id(mut self, run_id: impl Into<String>) -> RunOptions {
        self.run_id = Some(run_id.into());
        self
    }

    /// The conversation this run belongs to.
    #[must_use]
    pub fn with_session_id(mut self, session_id: impl Into<String>) -> RunOptions {
        self.session_id = Some(session_id.into());
        self
    }

    /// The run that started this one.
    #[must_use]
    pub fn with_parent_run_id(mut self, parent_run_id: impl Into<String>) -> RunOptions {
        self.parent_run_id = Some(parent_run_id.into());
        self
    }

    /// A metadata entry (the keys `query` filters on).
    #[must_use]
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<Value>) -> RunOptions {
        self.metadata.insert(key.into(), value.into());
        self
    }
}

/// A fresh time-ordered unique run_id.
pub(crate) fn new_run_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

impl Recorder {
    /// Starts recording a run. Steps are added with [`Run::step`]; the run ends with
    /// [`Run::finish`] or when its last clone (and last step guard) is dropped.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use trace_store_core::{Status, StepKind, TraceStore, Usage};
    /// use trace_store_memory::MemoryStore;
    /// use trace_store_recorder::{Recorder, RecorderOptions, RunOptions};
    ///
    /// let store = Arc::new(MemoryStore::unbounded());
    /// let recorder = Recorder::spawn(store.clone(), RecorderOptions::new());
    /// let run = recorder.start_run(RunOptions::new().with_name("support-bot").with_run_id("r1"));
    /// {
    ///     let mut agent = run.step(StepKind::Agent, "answer");
    ///     let mut call = agent.child(StepKind::LlmCall, "chat");
    ///     call.set_model("gpt-4o-mini").set_usage(Usage::new(120, 30));
    ///     call.set_output("Hello!");
    /// } // guards dropped: durations and status `ok` recorded
    /// run.finish(Status::Ok);
    /// recorder.flush()?;
    /// let trace = store.load("r1")?;
    /// assert_eq!(trace.steps.len(), 2);
    /// assert_eq!(trace.steps[1].parent_id, trace.steps[0].id); // chat is inside answer
    /// # Ok::<(), trace_store_core::Error>(())
    /// ```
    pub fn start_run(&self, options: RunOptions) -> Run {
        let mut header = Trace::new(options.run_id.unwrap_or_else(new_run_id));
        header.name = options.name;
        header.session_id = options.session_id;
        header.parent_run_id = options.parent_run_id;
        header.metadata = options.metadata;
        self.shared.capture.apply_to_trace(&mut header);
        let buffer = RunBuffer::new(header, true);
        if let Some(live) = &self.shared.live {
            live.register(&buffer);
        }
        Run {
            inner: Arc::new(RunInner {
                recorder: self.clone(),
                buffer,
            }),
        }
    }
}

/// A run being recorded. Cheap to clone, `Send + Sync`: every task of the agent can
/// add steps. Created by [`Recorder::start_run`].
#[derive(Clone, Debug)]
pub struct Run {
    inner: Arc<RunInner>,
}

#[derive(Debug)]
struct RunInner {
    recorder: Recorder,
    buffer: Arc<RunBuffer>,
}

impl Run {
    /// The run's id.
    pub fn run_id(&self) -> String {
        self.inner.buffer.run_id()
    }

    /// Starts a top-level step; it is recorded when the guard finishes or drops.
    pub fn step(&self, kind: impl Into<StepKind>, name: impl Into<String>) -> StepGuard {
        StepGuard::start(self.inner.clone(), None, kind.into(), name.into())
    }

    /// Adds a metadata entry to the run.
    pub fn set_metadata(&self, key: impl Into<String>, value: impl Into<Value>) {
        let (key, value) = (key.into(), value.into());
        let capture = &self.inner.recorder.shared.capture;
        self.inner.buffer.update_header(|header| {
            header.metadata.insert(key, value);
            // The header is captured again, as at the start: it is what gets queued.
            capture.apply_to_trace_header(header);
        });
    }

    /// Records the run-level error; the run will end with status `error`.
    pub fn set_error(&self, error: ErrorInfo) {
        let capture = &self.inner.recorder.shared.capture;
        self.inner.buffer.update_header(|header| {
            header.error = Some(error);
            capture.apply_to_trace_header(header);
        });
    }

    /// Ends the run with `status` and queues it to be saved. Steps still open are
    /// recorded by a live update only. Later calls, and clones dropped afterwards,
    /// change nothing.
    pub fn finish(self, status: Status) {
        self.inner.end(status);
    }
}

impl RunInner {
    fn end(&self, status: Status) {
        let ended = self.buffer.finish(|trace| {
            trace.status = if trace.error.is_some() {
                Status::Error
            } else {
                status
            };
            trace.ended_at = Some(Timestamp::now());
        });
        if let Some(parts) = ended {
            // Capture was applied to each part, header included, as it arrived.
            self.recorder
                .shared
                .enqueue(Message::SaveRun(Box::new(parts)));
        }
    }
}

impl Drop for RunInner {
    fn drop(&mut self) {
        let status = if std::thread::panicking() {
            Status::Error
        } else {
            Status::Ok
        };
        self.end(status);
    }
}

/// A step being recorded; its duration runs from [`Run::step`] (or
/// [`StepGuard::child`]) until [`StepGuard::finish`] or drop. Dropped during a panic,
/// the step is recorded with status `error`.
#[derive(Debug)]
pub struct StepGuard {
    run: Arc<RunInner>,
    step: Step,
    started: Instant,
    done: bool,
}

impl StepGuard {
    fn start(
        run: Arc<RunInner>,
        parent_id: Option<String>,
        kind: StepKind,
        name: String,
    ) -> StepGuard {
        let mut step = Step::new(kind)
            .with_id(run.buffer.next_step_id())
            .with_name(name)
            .with_started_at(Timestamp::now());
        step.parent_id = parent_id;
        StepGuard {
            run,
            step,
            started: Instant::now(),
            done: false,
        }
    }

    /// This step's id within the run.
    pub fn id(&self) -> &str {
        self.step.id.as_deref().unwrap_or_default()
    }

    /// Starts a step nested in this one.
    pub fn child(&self, kind: impl Into<StepKind>, name: impl Into<String>) -> StepGuard {
        StepGuard::start(
            self.run.clone(),
            self.step.id.clone(),
            kind.into(),
            name.into(),
        )
    }

    /// The model used.
    pub fn set_model(&mut self, model: impl Into<String>) -> &mut StepGuard {
        self.step.model = Some(model.into());
        self
    }

    /// The provider (`openai`, `anthropic`, ...).
    pub fn set_provider(&mut self, provider: impl Into<String>) -> &mut StepGuard {
        self.step.provider = Some(provider.into());
        self
    }

    /// Token counts.
    pub fn set_usage(&mut self, usage: Usage) -> &mut StepGuard {
        self.step.usage = usage;
        self
    }

    /// The cost the provider reported, in nano-USD (never recomputed by pricing).
    pub fn set_cost(&mut self, cost_nano_usd: i64) -> &mut StepGuard {
        self.step.cost_nano_usd = cost_nano_usd;
        self
    }

    /// The step's input (prompt, messages, tool arguments).
    pub fn set_input(&mut self, input: impl Into<Value>) -> &mut StepGuard {
        self.step.input = Some(input.into());
        self
    }

    /// The step's output (completion, tool result).
    pub fn set_output(&mut self, output: impl Into<Value>) -> &mut StepGuard {
        self.step.output = Some(output.into());
        self
    }

    /// Marks the step failed.
    pub fn set_error(&mut self, error: ErrorInfo) -> &mut StepGuard {
        self.step.error = Some(error);
        self.step.status = Status::Error;
        self
    }

    /// Any other attribute.
    pub fn set_attribute(
        &mut self,
        key: impl Into<String>,
        value: impl Into<Value>,
    ) -> &mut StepGuard {
        self.step.attributes.insert(key.into(), value.into());
        self
    }

    /// Ends the step now (status `ok` unless an error was set).
    pub fn finish(mut self) {
        self.end(Status::Ok);
    }

    fn end(&mut self, status: Status) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let mut step = std::mem::replace(&mut self.step, Step::new(StepKind::Chain));
        step.duration_us = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        if step.status.is_unset() {
            step.status = status;
        }
        if status == Status::Error && step.error.is_none() {
            step.error =
                Some(ErrorInfo::new("panicked while the step was running").with_type("panic"));
            step.status = Status::Error;
        }
        let shared = &self.run.recorder.shared;
        shared.capture.apply_to_step(&mut step);
        if let Some(late) = self.run.buffer.push_step(step) {
            // The run has ended: fold the step into the stored run.
            shared.enqueue(Message::Merge(Box::new(late)));
        }
    }
}

impl Drop for StepGuard {
    fn drop(&mut self) {
        let status = if std::thread::panicking() {
            Status::Error
        } else {
            Status::Ok
        };
        self.end(status);
    }
}
