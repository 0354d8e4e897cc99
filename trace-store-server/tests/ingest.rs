//! Group commit in the receiver: requests coalesce into one `merge_many`, each is
//! answered only after its batch is written, and a failed batch is never a success.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::TestServer;
use common::otlp::{hex, now_nanos, protobuf, tree_span};
use trace_store_core::{
    Error, GroupBy, GroupKey, Result, Trace, TraceFilter, TraceStats, TraceStore, TraceSummary,
};
use trace_store_server::ServerOptions;

/// Forwards everything to SQLite; `merge_many` is slowed (so requests queue up behind
/// a batch), counted, and fails on demand.
#[derive(Debug)]
struct Flaky {
    inner: Arc<dyn TraceStore>,
    /// Every batch fails with a retryable error.
    down: AtomicBool,
    /// A batch holding a part of this run_id fails with a non-retryable error.
    poison: String,
    calls: AtomicUsize,
    most_parts: AtomicUsize,
}

#[deny(clippy::missing_trait_methods)]
impl TraceStore for Flaky {
    fn save(&self, trace: &Trace) -> Result<String> {
        self.inner.save(trace)
    }
    fn load(&self, run_id: &str) -> Result<Trace> {
        self.inner.load(run_id)
    }
    fn list(&self, limit: usize, offset: usize) -> Result<Vec<TraceSummary>> {
        self.inner.list(limit, offset)
    }
    fn query(&self, filter: &TraceFilter) -> Result<Vec<TraceSummary>> {
        self.inner.query(filter)
    }
    fn delete(&self, run_id: &str) -> Result<bool> {
        self.inner.delete(run_id)
    }
    fn save_many(&self, traces: &[Trace]) -> Result<Vec<String>> {
        self.inner.save_many(traces)
    }
    fn count(&self, filter: &TraceFilter) -> Result<u64> {
        self.inner.count(filter)
    }
    fn stats(&self, filter: &TraceFilter) -> Result<TraceStats> {
        self.inner.stats(filter)
    }
    fn merge(&self, part: &Trace) -> Result<Trace> {
        self.inner.merge(part)
    }
    fn merge_many(&self, parts: &[Trace]) -> Result<Vec<String>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.most_parts.fetch_max(parts.len(), Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(20));
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::retryable_backend("flaky", "the disk is busy"));
        }
        if parts.iter().any(|part| part.run_id == self.poison) {
            return Err(Error::backend("flaky", "this trace cannot be read"));
        }
        self.inner.merge_many(parts)
    }
    fn stats_by(
        &self,
        filter: &TraceFilter,
        group: GroupBy,
    ) -> Result<Vec<(GroupKey, TraceStats)>> {
        self.inner.stats_by(filter, group)
    }
    fn delete_where(&self, filter: &TraceFilter) -> Result<u64> {
        self.inner.delete_where(filter)
    }
}

async fn start(poison: &[u8; 16]) -> (TestServer, Arc<Flaky>) {
    let mut flaky = None;
    let server = TestServer::start_over(ServerOptions::new(), |inner| {
        let store = Arc::new(Flaky {
            inner,
            down: AtomicBool::new(false),
            poison: hex(poison),
            calls: AtomicUsize::new(0),
            most_parts: AtomicUsize::new(0),
        });
        flaky = Some(Arc::clone(&store));
        store
    })
    .await;
    (server, flaky.unwrap())
}

fn trace_id(n: u8) -> [u8; 16] {
    [n; 16]
}

/// Posts one 5-span trace per id, all at once; the statuses in id order.
async fn post_all(server: &TestServer, ids: &[u8]) -> Vec<u16> {
    let start = now_nanos();
    let url = server.url("/v1/traces");
    let sends: Vec<_> = ids
        .iter()
        .map(|&n| {
            let body = protobuf((0..5).map(|i| tree_span(&trace_id(n), i, start)).collect());
            let request = server
                .client
                .post(&url)
                .header("content-type", "application/x-protobuf")
                .body(body);
            tokio::spawn(async move { request.send().await.unwrap().status().as_u16() })
        })
        .collect();
    let mut statuses = Vec::new();
    for send in sends {
        statuses.push(send.await.unwrap());
    }
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_waiting_for_the_writer_share_one_merge_many() {
    let (server, flaky) = start(&trace_id(255)).await;
    let ids: Vec<u8> = (1..=24).collect();
    assert!(post_all(&server, &ids).await.iter().all(|s| *s == 200));
    for n in &ids {
        assert_eq!(
            server.store.load(&hex(&trace_id(*n))).unwrap().steps.len(),
            5
        );
    }
    let calls = flaky.calls.load(Ordering::SeqCst);
    assert!(
        calls < ids.len(),
        "{calls} merge_many calls for {} requests",
        ids.len()
    );
    assert!(flaky.most_parts.load(Ordering::SeqCst) > 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_batch_is_no_success_for_any_request_in_it() {
    let (server, flaky) = start(&trace_id(255)).await;
    flaky.down.store(true, Ordering::SeqCst);
    let ids: Vec<u8> = (1..=16).collect();
    let statuses = post_all(&server, &ids).await;
    assert!(statuses.iter().all(|s| *s == 503), "{statuses:?}");
    assert_eq!(server.store.count(&TraceFilter::new()).unwrap(), 0);
    // The writer lives on: once the store is back, the same requests succeed.
    flaky.down.store(false, Ordering::SeqCst);
    assert!(post_all(&server, &ids).await.iter().all(|s| *s == 200));
    assert_eq!(server.store.count(&TraceFilter::new()).unwrap(), 16);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_failing_request_does_not_fail_its_neighbours() {
    let (server, flaky) = start(&trace_id(13)).await;
    let ids: Vec<u8> = (1..=24).collect();
    let statuses = post_all(&server, &ids).await;
    for (n, status) in ids.iter().zip(&statuses) {
        let stored = server.store.load(&hex(&trace_id(*n)));
        if *n == 13 {
            assert_eq!(*status, 503, "the failing request is told so");
            assert!(stored.is_err());
        } else {
            assert_eq!(*status, 200, "request {n}: {statuses:?}");
            assert_eq!(stored.unwrap().steps.len(), 5);
        }
    }
    assert!(
        flaky.most_parts.load(Ordering::SeqCst) > 1,
        "requests were batched"
    );
}
