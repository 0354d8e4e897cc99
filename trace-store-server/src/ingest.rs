//! Group commit for the OTLP receiver.
//!
//! A backend such as SQLite has one writer: folding each request's parts on its own
//! makes concurrent exporters queue on that writer, one transaction per request. Here
//! requests decode on their own tasks and hand their parts to ONE writer thread, which
//! takes everything waiting (up to a bound) into one [`TraceStore::merge_many`] call,
//! so parts of one trace sent in many requests fold together and a transactional
//! backend writes each trace once. Each request is answered only once the batch that
//! holds its parts is written; a failed batch fails every request in it.

use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio_util::task::task_tracker::TaskTrackerToken;
use trace_store_core::{Trace, TraceStore};

use crate::error::{ApiError, ApiResult, Kind};

/// Requests waiting for the writer; a sender beyond this waits (back-pressure).
const QUEUE_REQUESTS: usize = 64;
/// The writer stops taking requests into a batch once it holds this many steps...
const BATCH_STEPS: usize = 8192;
/// ...or this many parts (one request is never split, so a batch may pass either).
const BATCH_PARTS: usize = 1024;

/// One request's parts and where to send the outcome.
struct Job {
    parts: Vec<Trace>,
    done: oneshot::Sender<ApiResult<()>>,
}

/// The handle requests use to reach the writer thread. The thread stops once every
/// handle is dropped and the queue is empty; it holds a token of the server's task
/// tracker until then, so a graceful shutdown waits for the last batch.
#[derive(Debug)]
pub(crate) struct Ingestor {
    queue: Option<mpsc::Sender<Job>>,
    store: Arc<dyn TraceStore>,
}

impl Ingestor {
    pub(crate) fn start(store: Arc<dyn TraceStore>, token: TaskTrackerToken) -> Ingestor {
        let (sender, receiver) = mpsc::channel(QUEUE_REQUESTS);
        let writer_store = Arc::clone(&store);
        let spawned = std::thread::Builder::new()
            .name("trace-store-ingest".into())
            .spawn(move || {
                run(&*writer_store, receiver);
                // The tracker hears the thread is done only once its hold on the store
                // is gone: this may be the last one, and a program that exits right
                // after a graceful stop must not cut the store's close short (SQLite
                // would leave its -wal and -shm files behind).
                drop(writer_store);
                drop(token);
            });
        // Without a thread (the OS refused one), requests fold their own parts.
        let queue = spawned.is_ok().then_some(sender);
        Ingestor { queue, store }
    }

    /// Folds `parts` into the store as part of the next batch; `Ok` once they are
    /// written.
    pub(crate) async fn write(&self, parts: Vec<Trace>) -> ApiResult<()> {
        if parts.is_empty() {
            return Ok(());
        }
        let Some(queue) = &self.queue else {
            let store = Arc::clone(&self.store);
            return tokio::task::spawn_blocking(move || Ok(store.merge_many(&parts).map(drop)?))
                .await
                .unwrap_or_else(|join| Err(lost(&join.to_string())));
        };
        let (done, answer) = oneshot::channel();
        queue
            .send(Job { parts, done })
            .await
            .map_err(|_| ApiError::new(Kind::Backend, "the server is shutting down"))?;
        answer
            .await
            .unwrap_or_else(|_| Err(lost("the writer stopped")))
    }
}

fn lost(why: &str) -> ApiError {
    ApiError::new(
        Kind::Internal,
        format!("the request's spans may not have been stored: {why}"),
    )
}

/// The writer thread: a batch at a time, until every sender is gone.
fn run(store: &dyn TraceStore, mut queue: mpsc::Receiver<Job>) {
    while let Some(first) = queue.blocking_recv() {
        let mut steps = steps_of(&first.parts);
        let mut parts = first.parts.len();
        let mut batch = vec![first];
        while steps < BATCH_STEPS && parts < BATCH_PARTS {
            let Ok(job) = queue.try_recv() else { break };
            steps += steps_of(&job.parts);
            parts += job.parts.len();
            batch.push(job);
        }
        commit(store, batch);
    }
}

fn steps_of(parts: &[Trace]) -> usize {
    parts.iter().map(|part| part.steps.len().max(1)).sum()
}

/// Writes one batch and answers its requests.
fn commit(store: &dyn TraceStore, batch: Vec<Job>) {
    let mut parts = Vec::with_capacity(batch.iter().map(|job| job.parts.len()).sum());
    let mut requests: Vec<(Range<usize>, oneshot::Sender<ApiResult<()>>)> =
        Vec::with_capacity(batch.len());
    for job in batch {
        let start = parts.len();
        parts.extend(job.parts);
        requests.push((start..parts.len(), job.done));
    }
    match merge(store, &parts) {
        Ok(()) => {
            for (_, done) in requests {
                // A request whose client has gone is written all the same.
                let _ = done.send(Ok(()));
            }
        }
        // A transient failure fails all alike, and the exporters retry. Any other may
        // be one request's doing (a stored trace that cannot be read, say), so each
        // request is tried alone and its neighbours succeed without it. Folding again
        // parts that a non-transactional backend wrote before failing is what an
        // exporter's own retry would do (OTLP delivery is at least once).
        Err((error, retryable)) if retryable || requests.len() == 1 => {
            for (_, done) in requests {
                let _ = done.send(Err(error.clone()));
            }
        }
        Err(_) => {
            for (range, done) in requests {
                let _ = done.send(merge(store, &parts[range]).map_err(|(error, _)| error));
            }
        }
    }
}

/// `merge_many`, a panic in the backend answered as an internal error so the writer
/// lives on; the error comes with whether it is retryable.
fn merge(store: &dyn TraceStore, parts: &[Trace]) -> Result<(), (ApiError, bool)> {
    match catch_unwind(AssertUnwindSafe(|| store.merge_many(parts))) {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => {
            let retryable = error.is_retryable();
            Err((error.into(), retryable))
        }
        Err(_) => Err((lost("the store failed while writing them"), false)),
    }
}
