//! `AsyncStore` through a Tokio runtime: the conformance cases, and a locked SQLite
//! database that does not stall other tasks.
#![cfg(all(feature = "tokio", feature = "memory", feature = "sqlite"))]

use std::sync::LazyLock;
use std::time::Duration;

use trace_store::{
    AsyncStore, GroupBy, GroupKey, MemoryStore, Result, SqliteStore, Trace, TraceFilter,
    TraceStats, TraceStore, TraceSummary,
};

/// One runtime for every case: the adapter drives `AsyncStore` on it from the test's
/// thread, and the calls themselves run on its blocking pool.
static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime")
});

/// A synchronous `TraceStore` made of an `AsyncStore`, so the conformance suite can
/// drive it.
#[derive(Debug)]
struct BlockOnAsync(AsyncStore);

#[deny(clippy::missing_trait_methods)]
impl TraceStore for BlockOnAsync {
    fn save(&self, trace: &Trace) -> Result<String> {
        RUNTIME.block_on(self.0.save(trace.clone()))
    }
    fn load(&self, run_id: &str) -> Result<Trace> {
        RUNTIME.block_on(self.0.load(run_id))
    }
    fn list(&self, limit: usize, offset: usize) -> Result<Vec<TraceSummary>> {
        RUNTIME.block_on(self.0.list(limit, offset))
    }
    fn query(&self, filter: &TraceFilter) -> Result<Vec<TraceSummary>> {
        RUNTIME.block_on(self.0.query(filter.clone()))
    }
    fn delete(&self, run_id: &str) -> Result<bool> {
        RUNTIME.block_on(self.0.delete(run_id))
    }
    fn save_many(&self, traces: &[Trace]) -> Result<Vec<String>> {
        RUNTIME.block_on(self.0.save_many(traces.to_vec()))
    }
    fn count(&self, filter: &TraceFilter) -> Result<u64> {
        RUNTIME.block_on(self.0.count(filter.clone()))
    }
    fn stats(&self, filter: &TraceFilter) -> Result<TraceStats> {
        RUNTIME.block_on(self.0.stats(filter.clone()))
    }
    fn merge(&self, part: &Trace) -> Result<Trace> {
        RUNTIME.block_on(self.0.merge(part.clone()))
    }
    fn merge_many(&self, parts: &[Trace]) -> Result<Vec<String>> {
        RUNTIME.block_on(self.0.merge_many(parts.to_vec()))
    }

    fn stats_by(
        &self,
        filter: &TraceFilter,
        group: GroupBy,
    ) -> Result<Vec<(GroupKey, TraceStats)>> {
        RUNTIME.block_on(self.0.stats_by(filter.clone(), group))
    }
    fn delete_where(&self, filter: &TraceFilter) -> Result<u64> {
        RUNTIME.block_on(self.0.delete_where(filter.clone()))
    }
}

mod conformance {
    use super::{AsyncStore, BlockOnAsync, MemoryStore};
    trace_store_conformance::conformance_tests!(|| BlockOnAsync(AsyncStore::new(
        MemoryStore::unbounded()
    )));
}

#[test]
fn a_locked_sqlite_database_does_not_stall_other_tasks() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("traces.db");
    let store = SqliteStore::open(&path).expect("open SQLite");
    // Another connection takes the write lock and keeps it until we say so.
    let holder = rusqlite::Connection::open(&path).expect("second connection");
    holder
        .execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("current-thread runtime");
    let store = AsyncStore::new(store);
    runtime.block_on(async {
        let stalled = tokio::spawn({
            let store = store.clone();
            async move { store.save(Trace::new("waits-for-the-lock")).await }
        });
        // Other tasks on this one thread keep running while the save waits.
        let mut ticks = 0;
        for _ in 0..50 {
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(1)).await;
            ticks += 1;
        }
        assert_eq!(ticks, 50);
        assert!(
            !stalled.is_finished(),
            "the save should still be waiting for the lock"
        );

        holder
            .execute_batch("COMMIT")
            .expect("release the write lock");
        let saved = stalled
            .await
            .expect("save task")
            .expect("save after the lock is released");
        assert_eq!(saved, "waits-for-the-lock");
        assert_eq!(
            store.load("waits-for-the-lock").await.expect("load").run_id,
            saved
        );
    });
}
