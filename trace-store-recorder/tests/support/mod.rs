//! A store that can be stalled, for the non-blocking tests.
#![allow(dead_code, unreachable_pub)]

use std::sync::{Arc, Condvar, Mutex};

use trace_store_core::{
    GroupBy, GroupKey, Result, Trace, TraceFilter, TraceStats, TraceStore, TraceSummary,
};

/// Forwards to the inner store, except that every write waits while the gate is shut.
#[derive(Debug)]
pub struct StalledStore<S> {
    inner: S,
    gate: Arc<(Mutex<bool>, Condvar)>,
    /// Traces handed to `save_many`, so a test can see versions coalesce.
    saved_in_batches: std::sync::atomic::AtomicU64,
}

impl<S> StalledStore<S> {
    pub fn new(inner: S) -> StalledStore<S> {
        StalledStore {
            inner,
            gate: Arc::new((Mutex::new(false), Condvar::new())),
            saved_in_batches: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// How many traces `save_many` was given in all.
    #[allow(dead_code)] // used by one test binary, not the other
    pub fn saved_in_batches(&self) -> u64 {
        self.saved_in_batches
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn shut(&self) {
        *self.gate.0.lock().expect("gate") = false;
    }

    pub fn open(&self) {
        *self.gate.0.lock().expect("gate") = true;
        self.gate.1.notify_all();
    }

    fn wait(&self) {
        let (lock, opened) = &*self.gate;
        let mut open = lock.lock().expect("gate");
        while !*open {
            open = opened.wait(open).expect("gate");
        }
    }
}

#[deny(clippy::missing_trait_methods)]
impl<S: TraceStore> TraceStore for StalledStore<S> {
    fn save(&self, trace: &Trace) -> Result<String> {
        self.wait();
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
        self.wait();
        self.inner.delete(run_id)
    }
    fn save_many(&self, traces: &[Trace]) -> Result<Vec<String>> {
        self.wait();
        self.saved_in_batches
            .fetch_add(traces.len() as u64, std::sync::atomic::Ordering::Relaxed);
        self.inner.save_many(traces)
    }
    fn count(&self, filter: &TraceFilter) -> Result<u64> {
        self.inner.count(filter)
    }
    fn stats(&self, filter: &TraceFilter) -> Result<TraceStats> {
        self.inner.stats(filter)
    }
    fn merge(&self, part: &Trace) -> Result<Trace> {
        self.wait();
        self.inner.merge(part)
    }
    fn merge_many(&self, parts: &[Trace]) -> Result<Vec<String>> {
        self.wait();
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
        self.wait();
        self.inner.delete_where(filter)
    }
}
