//! A bounded store that evicts in save order while claiming LRU (selectools' bug).

use std::collections::VecDeque;
use std::sync::Mutex;

use trace_store_core::{
    Error, GroupBy, GroupKey, Result, Trace, TraceFilter, TraceStats, TraceStore, TraceSummary,
};
use trace_store_memory::MemoryStore;

/// A bounded store that evicts the oldest *saved* trace, not the least recently used:
/// selectools' "LRU", which is FIFO.
#[derive(Debug)]
pub(crate) struct Fifo {
    pub(crate) inner: MemoryStore,
    pub(crate) capacity: usize,
    pub(crate) saved: Mutex<VecDeque<String>>,
}

#[deny(clippy::missing_trait_methods)]
impl TraceStore for Fifo {
    fn save(&self, trace: &Trace) -> Result<String> {
        let mut saved = self.saved.lock().unwrap_or_else(|e| e.into_inner());
        let run_id = self.inner.save(trace)?;
        if !saved.contains(&run_id) {
            saved.push_back(run_id.clone());
        }
        while saved.len() > self.capacity {
            if let Some(oldest) = saved.pop_front() {
                self.inner.delete(&oldest)?;
            }
        }
        Ok(run_id)
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
        let mut saved = self.saved.lock().unwrap_or_else(|e| e.into_inner());
        saved.retain(|id| id != run_id);
        self.inner.delete(run_id)
    }

    fn save_many(&self, traces: &[Trace]) -> Result<Vec<String>> {
        traces.iter().try_for_each(Trace::validate)?;
        traces.iter().map(|trace| self.save(trace)).collect()
    }

    fn count(&self, filter: &TraceFilter) -> Result<u64> {
        self.inner.count(filter)
    }

    fn stats(&self, filter: &TraceFilter) -> Result<TraceStats> {
        self.inner.stats(filter)
    }

    fn merge(&self, part: &Trace) -> Result<Trace> {
        // Through `save`, so the eviction queue sees the write.
        let merged = match self.inner.load(&part.run_id) {
            Ok(mut stored) => {
                stored.merge(part);
                stored
            }
            Err(Error::NotFound { .. }) => part.clone(),
            Err(error) => return Err(error),
        };
        self.save(&merged)?;
        Ok(merged)
    }

    fn merge_many(&self, parts: &[Trace]) -> Result<Vec<String>> {
        parts.iter().try_for_each(Trace::validate)?;
        parts
            .iter()
            .map(|part| self.merge(part).map(|merged| merged.run_id))
            .collect()
    }

    fn stats_by(
        &self,
        filter: &TraceFilter,
        group: GroupBy,
    ) -> Result<Vec<(GroupKey, TraceStats)>> {
        self.inner.stats_by(filter, group)
    }

    fn delete_where(&self, filter: &TraceFilter) -> Result<u64> {
        let mut deleted = 0;
        for summary in self.inner.query(filter)? {
            deleted += u64::from(self.delete(&summary.run_id)?);
        }
        Ok(deleted)
    }
}
