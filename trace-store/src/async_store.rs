//! [`AsyncStore`]: any [`TraceStore`] used from async code without blocking the runtime.

use std::sync::Arc;

use crate::{
    Error, GroupBy, GroupKey, Result, Trace, TraceFilter, TraceStats, TraceStore, TraceSummary,
};

/// A [`TraceStore`] for async code: every call runs on Tokio's blocking thread pool
/// (`spawn_blocking`), so a slow disk or a locked SQLite database never stalls the
/// runtime's worker threads. Outside a Tokio runtime a call runs inline (as
/// object_store's `maybe_spawn_blocking` does). Cheap to clone.
///
/// ```
/// # #[cfg(feature = "memory")]
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use trace_store::{AsyncStore, MemoryStore, Trace};
///
/// let store = AsyncStore::new(MemoryStore::unbounded());
/// store.save(Trace::new("run-1")).await?;
/// assert_eq!(store.load("run-1").await?.run_id, "run-1");
/// assert_eq!(store.blocking().list(10, 0)?.len(), 1); // the sync store, for sync code
/// # Ok::<(), trace_store::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct AsyncStore {
    inner: Arc<dyn TraceStore>,
}

impl AsyncStore {
    /// Wraps a store.
    pub fn new(store: impl TraceStore + 'static) -> AsyncStore {
        AsyncStore {
            inner: Arc::new(store),
        }
    }

    /// Wraps a shared store.
    pub fn from_arc(store: Arc<dyn TraceStore>) -> AsyncStore {
        AsyncStore { inner: store }
    }

    /// The synchronous store inside, for code that may block.
    pub fn blocking(&self) -> &Arc<dyn TraceStore> {
        &self.inner
    }

    async fn run<T, F>(&self, call: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&dyn TraceStore) -> Result<T> + Send + 'static,
    {
        let store = self.inner.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => runtime
                .spawn_blocking(move || call(store.as_ref()))
                .await
                .unwrap_or_else(|join_error| {
                    if join_error.is_panic() {
                        std::panic::resume_unwind(join_error.into_panic());
                    }
                    Err(Error::backend("tokio", join_error))
                }),
            Err(_) => call(store.as_ref()),
        }
    }

    /// [`TraceStore::save`].
    pub async fn save(&self, trace: Trace) -> Result<String> {
        self.run(move |store| store.save(&trace)).await
    }

    /// [`TraceStore::load`].
    pub async fn load(&self, run_id: impl Into<String>) -> Result<Trace> {
        let run_id = run_id.into();
        self.run(move |store| store.load(&run_id)).await
    }

    /// [`TraceStore::list`].
    pub async fn list(&self, limit: usize, offset: usize) -> Result<Vec<TraceSummary>> {
        self.run(move |store| store.list(limit, offset)).await
    }

    /// [`TraceStore::query`].
    pub async fn query(&self, filter: TraceFilter) -> Result<Vec<TraceSummary>> {
        self.run(move |store| store.query(&filter)).await
    }

    /// [`TraceStore::delete`].
    pub async fn delete(&self, run_id: impl Into<String>) -> Result<bool> {
        let run_id = run_id.into();
        self.run(move |store| store.delete(&run_id)).await
    }

    /// [`TraceStore::save_many`].
    pub async fn save_many(&self, traces: Vec<Trace>) -> Result<Vec<String>> {
        self.run(move |store| store.save_many(&traces)).await
    }

    /// [`TraceStore::count`].
    pub async fn count(&self, filter: TraceFilter) -> Result<u64> {
        self.run(move |store| store.count(&filter)).await
    }

    /// [`TraceStore::stats`].
    pub async fn stats(&self, filter: TraceFilter) -> Result<TraceStats> {
        self.run(move |store| store.stats(&filter)).await
    }

    /// [`TraceStore::merge`].
    pub async fn merge(&self, part: Trace) -> Result<Trace> {
        self.run(move |store| store.merge(&part)).await
    }

    /// [`TraceStore::merge_many`].
    pub async fn merge_many(&self, parts: Vec<Trace>) -> Result<Vec<String>> {
        self.run(move |store| store.merge_many(&parts)).await
    }

    /// [`TraceStore::stats_by`].
    pub async fn stats_by(
        &self,
        filter: TraceFilter,
        group: GroupBy,
    ) -> Result<Vec<(GroupKey, TraceStats)>> {
        self.run(move |store| store.stats_by(&filter, group)).await
    }

    /// [`TraceStore::delete_where`].
    pub async fn delete_where(&self, filter: TraceFilter) -> Result<u64> {
        self.run(move |store| store.delete_where(&filter)).await
    }
}
