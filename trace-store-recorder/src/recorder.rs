//! The write-behind recorder: a bounded queue drained by one writer thread.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use parking_lot::Mutex;
use trace_store_core::{Error, Result, Trace, TraceStore};

use crate::live::{LiveRuns, RunParts};
use crate::{Capture, Pricing};

/// What `record` does when the queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum QueueFull {
    /// Drop the record at once and count it in [`Health::dropped`] (the default: the
    /// agent never waits).
    Drop,
    /// Wait up to this long for room, then drop and count.
    Wait(Duration),
}

/// How a [`Recorder`] queues, batches, prices and captures, built from [`Default`]
/// (or [`RecorderOptions::new`]) with the `with_*` setters.
#[derive(Debug)]
#[non_exhaustive]
pub struct RecorderOptions {
    /// How many records may wait for the writer (at least 1 is used). Default 10,000.
    pub queue_capacity: usize,
    /// The most records written in one batch (at least 1 is used). Default 512.
    pub max_batch: usize,
    /// What `record` does when the queue is full. Default [`QueueFull::Drop`].
    pub queue_full: QueueFull,
    /// Merge each unfinished run into the store at most this often (at least every
    /// millisecond), with status `running`. Default `None`: runs are written when they
    /// end.
    pub live_every: Option<Duration>,
    /// How long dropping the last handle waits for the queue to drain. Default 5 s.
    pub drop_timeout: Duration,
    /// Prices steps that carry usage but no cost. Default: no prices.
    pub pricing: Pricing,
    /// What of the content is kept. Default [`Capture::Full`].
    pub capture: Capture,
}

impl Default for RecorderOptions {
    fn default() -> RecorderOptions {
        RecorderOptions {
            queue_capacity: 10_000,
            max_batch: 512,
            queue_full: QueueFull::Drop,
            live_every: None,
            drop_timeout: Duration::from_secs(5),
            pricing: Pricing::default(),
            capture: Capture::Full,
        }
    }
}

impl RecorderOptions {
    /// Queue of 10,000 records, batches of up to 512, drop when full, no live
    /// updates, 5 s to flush on drop, no pricing, full capture.
    pub fn new() -> RecorderOptions {
        RecorderOptions::default()
    }

    /// How many records may wait for the writer (at least 1).
    #[must_use]
    pub fn with_queue_capacity(mut self, capacity: usize) -> RecorderOptions {
        self.queue_capacity = capacity;
        self
    }

    /// The most records written in one batch (at least 1).
    #[must_use]
    pub fn with_max_batch(mut self, max_batch: usize) -> RecorderOptions {
        self.max_batch = max_batch;
        self
    }

    /// What to do when the queue is full.
    #[must_use]
    pub fn with_queue_full(mut self, policy: QueueFull) -> RecorderOptions {
        self.queue_full = policy;
        self
    }

    /// Merge each unfinished run into the store at most every `every`, with status
    /// `running`, so viewers see it and a crash leaves a partial trace.
    #[must_use]
    pub fn with_live_every(mut self, every: Duration) -> RecorderOptions {
        self.live_every = Some(every);
        self
    }

    /// How long dropping the last handle of the recorder waits for the queue to drain.
    #[must_use]
    pub fn with_drop_timeout(mut self, timeout: Duration) -> RecorderOptions {
        self.drop_timeout = timeout;
        self
    }

    /// Prices steps that carry usage but no cost.
    #[must_use]
    pub fn with_pricing(mut self, pricing: Pricing) -> RecorderOptions {
        self.pricing = pricing;
        self
    }

    /// What of the content is kept (see [`Capture`]).
    #[must_use]
    pub fn with_capture(mut self, capture: Capture) -> RecorderOptions {
        self.capture = capture;
        self
    }
}

/// The recorder's counters, from [`Recorder::health`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Health {
    /// Records waiting in the queue now.
    pub queued: u64,
    /// Records the store accepted (several coalesced versions of a run count each).
    pub written: u64,
    /// Records dropped because the queue was full, or the writer had stopped.
    pub dropped: u64,
    /// Records the store refused or failed to write.
    pub failed: u64,
    /// Batches written.
    pub batches: u64,
    /// The latest write error, as text.
    pub last_error: Option<String>,
}

pub(crate) enum Message {
    Save(Box<Trace>),
    Merge(Box<Trace>),
    /// A finished run, made a trace on the writer thread.
    SaveRun(Box<RunParts>),
    /// Part of a run that ended already, made a trace on the writer thread.
    #[cfg(feature = "tracing")]
    MergeRun(Box<RunParts>),
    Flush(Sender<Result<()>>),
}

#[derive(Default)]
pub(crate) struct Counters {
    written: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    batches: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// Records traces into a store without ever making the caller wait on I/O.
///
/// `record` and every [`Run`](crate::Run) / [`StepGuard`](crate::StepGuard) call only
/// enqueue on a bounded queue; one background thread (a plain `std::thread`, so any
/// async runtime or none works) drains it in batches: finished traces through one
/// [`TraceStore::save_many`] per batch (one transaction on SQLite), partial ones
/// through [`TraceStore::merge`], several versions of one run in a batch coalesced into
/// one write. Cheap to clone; the writer stops, after flushing for at most the drop
/// timeout, when the last clone is dropped.
///
/// ```
/// use std::sync::Arc;
/// use trace_store_core::{Status, Trace, TraceStore};
/// use trace_store_memory::MemoryStore;
/// use trace_store_recorder::{Recorder, RecorderOptions};
///
/// let store = Arc::new(MemoryStore::unbounded());
/// let recorder = Recorder::spawn(store.clone(), RecorderOptions::new());
/// recorder.record(Trace::new("run-1").with_status(Status::Ok));
/// recorder.flush()?;
/// assert_eq!(store.load("run-1")?.status, Status::Ok);
/// assert_eq!(recorder.health().written, 1);
/// # Ok::<(), trace_store_core::Error>(())
/// ```
#[derive(Clone)]
pub struct Recorder {
    pub(crate) shared: Arc<Shared>,
}

pub(crate) struct Shared {
    sender: Sender<Message>,
    pub(crate) counters: Arc<Counters>,
    queue_full: QueueFull,
    pub(crate) capture: Arc<Capture>,
    pub(crate) live: Option<Arc<LiveRuns>>,
    drop_timeout: Duration,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("health", &self.health())
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// Starts the writer thread over `store`.
    pub fn spawn(store: Arc<dyn TraceStore>, options: RecorderOptions) -> Recorder {
        let (sender, receiver) = crossbeam_channel::bounded(options.queue_capacity.max(1));
        let counters = Arc::new(Counters::default());
        let live = options.live_every.map(|_| Arc::new(LiveRuns::default()));
        let capture = Arc::new(options.capture);
        let writer = Writer {
            store,
            receiver,
            counters: counters.clone(),
            pricing: options.pricing,
            capture: capture.clone(),
            max_batch: options.max_batch.max(1),
            live: live.clone().zip(
                options
                    .live_every
                    .map(|every| every.max(Duration::from_millis(1))),
            ),
            pending_error: None,
        };
        let worker = std::thread::Builder::new()
            .name("trace-store-recorder".to_owned())
            .spawn(move || writer.run())
            .ok();
        if worker.is_none() {
            *counters.last_error.lock() = Some("could not start the writer thread".to_owned());
        }
        Recorder {
            shared: Arc::new(Shared {
                sender,
                counters,
                queue_full: options.queue_full,
                capture,
                live,
                drop_timeout: options.drop_timeout,
                worker: Mutex::new(worker),
            }),
        }
    }

    /// Queues a finished trace to be saved (replacing any stored version). The capture
    /// policy is applied first. Never waits on I/O; see [`QueueFull`] for a full queue.
    pub fn record(&self, mut trace: Trace) {
        self.shared.capture.apply_to_trace(&mut trace);
        self.shared.enqueue(Message::Save(Box::new(trace)));
    }

    /// Queues a part of a run to be folded into the stored run by
    /// [`TraceStore::merge`]. The capture policy is applied first.
    pub fn merge(&self, mut part: Trace) {
        self.shared.capture.apply_to_trace(&mut part);
        self.shared.enqueue(Message::Merge(Box::new(part)));
    }

    /// Waits until everything queued before this call is written, and returns the
    /// first write error since the previous flush, if any.
    pub fn flush(&self) -> Result<()> {
        self.flush_timeout(Duration::MAX)
    }

    /// [`Recorder::flush`], giving up after `timeout` with an `Io` error of kind
    /// `TimedOut`.
    pub fn flush_timeout(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now().checked_add(timeout);
        let (reply, done) = crossbeam_channel::bounded(1);
        let sent = match deadline {
            Some(deadline) => self
                .shared
                .sender
                .send_deadline(Message::Flush(reply), deadline)
                .map_err(|error| error.into_inner()),
            None => self
                .shared
                .sender
                .send(Message::Flush(reply))
                .map_err(|e| e.0),
        };
        if sent.is_err() {
            return Err(writer_gone_or_late(deadline));
        }
        let answer = match deadline {
            Some(deadline) => done.recv_deadline(deadline).ok(),
            None => done.recv().ok(),
        };
        answer.unwrap_or_else(|| Err(writer_gone_or_late(deadline)))
    }

    /// The recorder's counters.
    pub fn health(&self) -> Health {
        let counters = &self.shared.counters;
        Health {
            queued: self.shared.sender.len() as u64,
            written: counters.written.load(Ordering::Relaxed),
            dropped: counters.dropped.load(Ordering::Relaxed),
            failed: counters.failed.load(Ordering::Relaxed),
            batches: counters.batches.load(Ordering::Relaxed),
            last_error: counters.last_error.lock().clone(),
        }
    }
}

fn writer_gone_or_late(deadline: Option<Instant>) -> Error {
    let late = deadline.is_some_and(|deadline| Instant::now() >= deadline);
    let message = if late {
        "recorder flush timed out: the store is slower than the timeout allows"
    } else {
        "recorder writer thread has stopped"
    };
    Error::Io(std::io::Error::new(
        if late {
            std::io::ErrorKind::TimedOut
        } else {
            std::io::ErrorKind::BrokenPipe
        },
        message,
    ))
}

impl Shared {
    pub(crate) fn enqueue(&self, message: Message) {
        let sent = match self.queue_full {
            QueueFull::Drop => self.sender.try_send(message).map_err(|error| match error {
                TrySendError::Full(_) | TrySendError::Disconnected(_) => (),
            }),
            QueueFull::Wait(bound) => self.sender.send_timeout(message, bound).map_err(|_| ()),
        };
        if sent.is_err() {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let Some(worker) = self.worker.lock().take() else {
            return;
        };
        let deadline = Instant::now() + self.drop_timeout;
        let (reply, done) = crossbeam_channel::bounded(1);
        if self
            .sender
            .send_deadline(Message::Flush(reply), deadline)
            .is_ok()
            && done.recv_deadline(deadline).is_ok()
        {
            // The sender drops with `self`, which ends the writer's loop; it has
            // nothing left to do, so joining is quick.
            drop(done);
            let (dummy, _) = crossbeam_channel::bounded(0);
            drop(std::mem::replace(&mut self.sender, dummy));
            let _ = worker.join();
        }
        // Past the timeout the writer is left to finish (or stall) on its own thread.
    }
}

struct Writer {
    store: Arc<dyn TraceStore>,
    receiver: Receiver<Message>,
    counters: Arc<Counters>,
    pricing: Pricing,
    capture: Arc<Capture>,
    max_batch: usize,
    live: Option<(Arc<LiveRuns>, Duration)>,
    pending_error: Option<Error>,
}

/// One batch after coalescing: per run_id, either a full trace to save or a part to merge.
enum Pending {
    Save(Trace, u64),
    Merge(Trace, u64),
}

impl Writer {
    fn run(mut self) {
        let mut next_tick = self.live.as_ref().map(|(_, every)| Instant::now() + *every);
        loop {
            let first = match next_tick {
                Some(tick) => match self.receiver.recv_deadline(tick) {
                    Ok(message) => Some(message),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => return,
                },
                None => match self.receiver.recv() {
                    Ok(message) => Some(message),
                    Err(_) => return,
                },
            };
            if let Some(first) = first {
                self.drain_batch(first);
            }
            if let Some(tick) = next_tick
                && Instant::now() >= tick
            {
                self.publish_live();
                next_tick = self.live.as_ref().map(|(_, every)| Instant::now() + *every);
            }
        }
    }

    /// Takes `first` and whatever else is queued (up to the batch size), writes it,
    /// and answers the flushes among it once what came before them is written.
    fn drain_batch(&mut self, first: Message) {
        let mut batch = Batch::default();
        let mut flushes = Vec::new();
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(message) = next.take() {
            match message {
                Message::Save(trace) => batch.push(Pending::Save(*trace, 1)),
                Message::Merge(part) => batch.push(Pending::Merge(*part, 1)),
                Message::SaveRun(parts) => {
                    batch.push(Pending::Save(parts.into_trace(&self.capture), 1));
                }
                #[cfg(feature = "tracing")]
                Message::MergeRun(parts) => {
                    batch.push(Pending::Merge(parts.into_trace(&self.capture), 1));
                }
                Message::Flush(reply) => {
                    // Everything before the flush must be durable before it answers.
                    self.write(std::mem::take(&mut batch));
                    flushes.push(reply);
                }
            }
            taken += 1;
            if taken < self.max_batch {
                next = self.receiver.try_recv().ok();
            }
        }
        self.write(batch);
        for reply in flushes {
            let _ = reply.send(self.pending_error.take().map_or(Ok(()), Err));
        }
    }

    fn write(&mut self, batch: Batch) {
        if batch.is_empty() {
            return;
        }
        let mut saves = Vec::new();
        let mut save_counts = 0;
        for pending in batch.entries {
            match pending {
                Pending::Save(mut trace, count) => {
                    self.pricing.apply_to_trace(&mut trace);
                    saves.push(trace);
                    save_counts += count;
                }
                Pending::Merge(mut part, count) => {
                    self.pricing.apply_to_trace(&mut part);
                    let outcome = self.store.merge(&part).map(|_| ());
                    self.account(outcome, count);
                }
            }
        }
        if !saves.is_empty() {
            match self.store.save_many(&saves) {
                Ok(_) => self.account(Ok(()), save_counts),
                // One bad trace must not cost the batch: retry one by one to find it.
                Err(_) => {
                    for trace in &saves {
                        let outcome = self.store.save(trace).map(|_| ());
                        self.account(outcome, 1);
                    }
                }
            }
        }
        self.counters.batches.fetch_add(1, Ordering::Relaxed);
    }

    fn account(&mut self, outcome: Result<()>, count: u64) {
        match outcome {
            Ok(()) => {
                self.counters.written.fetch_add(count, Ordering::Relaxed);
            }
            Err(error) => {
                self.counters.failed.fetch_add(count, Ordering::Relaxed);
                *self.counters.last_error.lock() = Some(error.to_string());
                self.pending_error.get_or_insert(error);
            }
        }
    }

    /// Merges what changed in each unfinished run since its last snapshot.
    fn publish_live(&mut self) {
        let Some((live, _)) = &self.live else {
            return;
        };
        let mut batch = Batch::default();
        for parts in live.snapshots() {
            batch.push(Pending::Merge(parts.into_trace(&self.capture), 0));
        }
        self.write(batch);
    }
}

/// The records of one batch, one entry per run_id, in first-seen order.
#[derive(Default)]
struct Batch {
    entries: Vec<Pending>,
    index: HashMap<String, usize>,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn push(&mut self, incoming: Pending) {
        let run_id = match &incoming {
            Pending::Save(trace, _) | Pending::Merge(trace, _) => &trace.run_id,
        };
        let Some(&at) = self.index.get(run_id) else {
            self.index.insert(run_id.clone(), self.entries.len());
            self.entries.push(incoming);
            return;
        };
        let existing = &mut self.entries[at];
        let previous = std::mem::replace(existing, Pending::Merge(Trace::new(String::new()), 0));
        *existing = match (previous, incoming) {
            // A full trace replaces whatever came before it.
            (Pending::Save(_, a) | Pending::Merge(_, a), Pending::Save(trace, b)) => {
                Pending::Save(trace, a + b)
            }
            (Pending::Save(mut trace, a), Pending::Merge(part, b)) => {
                trace.merge(&part);
                Pending::Save(trace, a + b)
            }
            (Pending::Merge(mut first, a), Pending::Merge(part, b)) => {
                first.merge(&part);
                Pending::Merge(first, a + b)
            }
        };
    }
}
