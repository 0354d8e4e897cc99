//! The in-memory state of runs being recorded, and the registry the writer polls for
//! live updates.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use trace_store_core::{Status, Step, Trace};

use crate::Capture;
#[cfg(feature = "tracing")]
use crate::layer::SpanRecord;

/// One unfinished run: its header and the steps finished so far.
#[derive(Debug)]
pub(crate) struct RunBuffer {
    state: Mutex<RunState>,
    /// Something changed since the last live snapshot.
    dirty: AtomicBool,
    /// May be shown live (the layer waits for the first GenAI span).
    publishable: AtomicBool,
    finished: AtomicBool,
    next_step: AtomicU64,
}

#[derive(Debug)]
struct RunState {
    header: Trace,
    steps: Vec<Step>,
    /// Steps already sent in live snapshots.
    published: usize,
    /// The layer's spans, still to be made steps on the writer thread.
    #[cfg(feature = "tracing")]
    spans: Vec<SpanRecord>,
    #[cfg(feature = "tracing")]
    published_spans: usize,
}

/// What a run hands to the writer: its header, the steps guards built, and the span
/// records the writer turns into steps ([`RunParts::into_trace`]).
#[derive(Debug)]
pub(crate) struct RunParts {
    pub(crate) header: Trace,
    pub(crate) steps: Vec<Step>,
    #[cfg(feature = "tracing")]
    pub(crate) spans: Vec<SpanRecord>,
}

impl RunParts {
    fn new(header: Trace) -> RunParts {
        RunParts {
            header,
            steps: Vec::new(),
            #[cfg(feature = "tracing")]
            spans: Vec::new(),
        }
    }

    /// The trace, steps in start order. Guards captured their steps already; span
    /// records are captured here, on the writer thread, before anything is stored.
    pub(crate) fn into_trace(self, capture: &Capture) -> Trace {
        let mut trace = self.header;
        trace.steps = self.steps;
        #[cfg(feature = "tracing")]
        crate::layer::add_span_steps(&mut trace, self.spans, capture);
        #[cfg(not(feature = "tracing"))]
        let _ = capture;
        sort_by_id(&mut trace.steps);
        trace
    }
}

impl RunBuffer {
    pub(crate) fn new(mut header: Trace, publishable: bool) -> Arc<RunBuffer> {
        header.status = Status::Running;
        Arc::new(RunBuffer {
            state: Mutex::new(RunState {
                header,
                steps: Vec::new(),
                published: 0,
                #[cfg(feature = "tracing")]
                spans: Vec::new(),
                #[cfg(feature = "tracing")]
                published_spans: 0,
            }),
            dirty: AtomicBool::new(true),
            publishable: AtomicBool::new(publishable),
            finished: AtomicBool::new(false),
            next_step: AtomicU64::new(1),
        })
    }

    /// A step id unique within the run, shaped like an OpenTelemetry span id.
    pub(crate) fn next_step_id(&self) -> String {
        hex_id(self.next_step_number())
    }

    /// The number of [`RunBuffer::next_step_id`], left unformatted (from 1).
    pub(crate) fn next_step_number(&self) -> u64 {
        self.next_step.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn run_id(&self) -> String {
        self.state.lock().header.run_id.clone()
    }

    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) fn set_publishable(&self) {
        self.publishable.store(true, Ordering::Relaxed);
    }

    pub(crate) fn is_publishable(&self) -> bool {
        self.publishable.load(Ordering::Relaxed)
    }

    /// Adds a finished step; once the run has ended, returns the step as a part to
    /// merge into the stored run instead.
    pub(crate) fn push_step(&self, step: Step) -> Option<Trace> {
        let mut state = self.state.lock();
        if self.is_finished() {
            let mut part = state.late_part();
            part.steps.push(step);
            return Some(part);
        }
        state.steps.push(step);
        self.dirty.store(true, Ordering::Release);
        None
    }

    /// Adds a closed span; once the run has ended, returns it as a part to merge into
    /// the stored run instead.
    #[cfg(feature = "tracing")]
    pub(crate) fn push_span(&self, span: SpanRecord) -> Option<RunParts> {
        let mut state = self.state.lock();
        if self.is_finished() {
            let mut part = RunParts::new(state.late_part());
            part.spans.push(span);
            return Some(part);
        }
        if state.spans.capacity() == 0 {
            // Growing by doubling from 4 would copy every record about twice.
            state.spans.reserve(32);
        }
        state.spans.push(span);
        self.dirty.store(true, Ordering::Release);
        None
    }

    pub(crate) fn update_header(&self, update: impl FnOnce(&mut Trace)) {
        update(&mut self.state.lock().header);
        self.dirty.store(true, Ordering::Release);
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }

    /// The header with status `running` and the steps finished since the previous
    /// snapshot, if anything changed and the run is still going.
    pub(crate) fn snapshot(&self) -> Option<RunParts> {
        if !self.is_publishable() || !self.dirty.swap(false, Ordering::AcqRel) {
            return None;
        }
        let mut state = self.state.lock();
        // Checked under the lock: `finish` takes it too, so no snapshot follows the end.
        if self.is_finished() {
            return None;
        }
        let mut header = state.header.clone();
        header.status = Status::Running;
        let mut part = RunParts::new(header);
        part.steps = state.steps[state.published..].to_vec();
        state.published = state.steps.len();
        #[cfg(feature = "tracing")]
        {
            part.spans = state.spans[state.published_spans..].to_vec();
            state.published_spans = state.spans.len();
        }
        Some(part)
    }

    /// Ends the run: all of it, with `finish` applied to its header. Only the first
    /// call gets it.
    pub(crate) fn finish(&self, finish: impl FnOnce(&mut Trace)) -> Option<RunParts> {
        let mut state = self.state.lock();
        if self.finished.swap(true, Ordering::AcqRel) {
            return None;
        }
        // The header keeps run_id and created_at for steps that end after the run.
        let remains = state.late_part();
        let mut parts = RunParts::new(std::mem::replace(&mut state.header, remains));
        parts.steps = std::mem::take(&mut state.steps);
        #[cfg(feature = "tracing")]
        {
            parts.spans = std::mem::take(&mut state.spans);
        }
        finish(&mut parts.header);
        Some(parts)
    }
}

impl RunState {
    /// An empty part of this run, for what ends after the run did.
    fn late_part(&self) -> Trace {
        let mut part = Trace::new(self.header.run_id.clone());
        part.created_at = self.header.created_at;
        part
    }
}

/// Sorts steps by id, stably: steps arrive as they end (children first); ids are handed
/// out as they start, zero-padded, so sorting by id gives start order. Steps are large,
/// so the usual shape (children in start order, the root that closed last at the end)
/// is put right with one rotation instead of a general sort, which moves every step
/// through a scratch buffer.
fn sort_by_id(steps: &mut [Step]) {
    let Some((last, rest)) = steps.split_last() else {
        return;
    };
    if !rest.is_sorted_by(|a, b| a.id <= b.id) {
        steps.sort_by(|a, b| a.id.cmp(&b.id));
        return;
    }
    let slot = rest.partition_point(|step| step.id <= last.id);
    steps[slot..].rotate_right(1);
}

/// `format!("{number:016x}")` without the formatting machinery, which cost more than
/// the rest of opening a span.
pub(crate) fn hex_id(number: u64) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut id = String::with_capacity(16);
    for shift in (0..16).rev() {
        id.push(char::from(DIGITS[((number >> (shift * 4)) & 0xf) as usize]));
    }
    id
}

/// The unfinished runs of a recorder with live updates.
#[derive(Debug, Default)]
pub(crate) struct LiveRuns {
    runs: Mutex<Vec<Weak<RunBuffer>>>,
}

impl LiveRuns {
    pub(crate) fn register(&self, run: &Arc<RunBuffer>) {
        self.runs.lock().push(Arc::downgrade(run));
    }

    pub(crate) fn snapshots(&self) -> Vec<RunParts> {
        let runs: Vec<Arc<RunBuffer>> = {
            let mut registered = self.runs.lock();
            registered.retain(|run| run.upgrade().is_some_and(|run| !run.is_finished()));
            registered.iter().filter_map(Weak::upgrade).collect()
        };
        runs.iter().filter_map(|run| run.snapshot()).collect()
    }
}

#[cfg(test)]
mod tests {
    use trace_store_core::{Step, StepKind};

    use super::{hex_id, sort_by_id};

    #[test]
    fn steps_sort_by_id_stably_whatever_their_order() {
        let orders: [&[Option<&str>]; 7] = [
            &[],
            &[Some("2"), Some("3"), Some("1")],
            &[Some("1"), Some("2"), Some("3")],
            &[Some("3"), Some("2"), Some("1")],
            &[Some("1"), Some("3"), Some("2"), Some("4"), Some("2")],
            &[None, Some("2"), None],
            &[Some("2"), Some("2"), Some("1"), Some("2")],
        ];
        for order in orders {
            let mut steps: Vec<Step> = order
                .iter()
                .enumerate()
                .map(|(position, id)| {
                    let mut step = Step::new(StepKind::Chain).with_name(position.to_string());
                    step.id = id.map(str::to_owned);
                    step
                })
                .collect();
            let mut expected = steps.clone();
            expected.sort_by(|a, b| a.id.cmp(&b.id));
            sort_by_id(&mut steps);
            assert_eq!(steps, expected, "order {order:?}");
        }
    }

    #[test]
    fn hex_ids_match_zero_padded_lower_hex() {
        for number in [0, 1, 0xf, 0x10, 0xdead_beef, u64::MAX - 1, u64::MAX] {
            assert_eq!(hex_id(number), format!("{number:016x}"));
        }
    }
}
