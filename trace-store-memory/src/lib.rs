#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::Arc;

use lru::LruCache;
use parking_lot::Mutex;
use trace_store_core::{
    Cursor, Error, Result, Trace, TraceFilter, TraceStats, TraceStore, TraceSummary,
};

/// Traces held in memory, optionally bounded with least-recently-used eviction.
///
/// `save` and `load` make a trace the most recently used; `list`, `query`, `count` and
/// `stats` do not, so browsing never changes what gets evicted. Summaries are kept in an
/// ordered index, so a page of `list` costs its own size, not a sort of the store.
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

struct Entry {
    trace: Arc<Trace>,
    cursor: Cursor,
}

struct Inner {
    /// run_id → body, in recency order.
    traces: LruCache<String, Entry>,
    /// Ascending `(created_at, run_id)`; list order is its reverse.
    order: BTreeMap<Cursor, TraceSummary>,
}

impl MemoryStore {
    /// A store holding at most `capacity` traces; saving one more evicts the least
    /// recently used. A capacity of 0 is [`Error::InvalidInput`].
    pub fn new(capacity: usize) -> Result<MemoryStore> {
        let capacity = NonZeroUsize::new(capacity)
            .ok_or_else(|| Error::invalid("MemoryStore capacity must be at least 1"))?;
        Ok(MemoryStore::with_cache(LruCache::new(capacity)))
    }

    /// A store without a bound.
    pub fn unbounded() -> MemoryStore {
        MemoryStore::with_cache(LruCache::unbounded())
    }

    fn with_cache(traces: LruCache<String, Entry>) -> MemoryStore {
        MemoryStore {
            inner: Mutex::new(Inner {
                traces,
                order: BTreeMap::new(),
            }),
        }
    }

    /// Number of traces held.
    pub fn len(&self) -> usize {
        self.inner.lock().traces.len()
    }

    /// True if no trace is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bound, or `None` for an unbounded store.
    pub fn capacity(&self) -> Option<usize> {
        let inner = self.inner.lock();
        let cap = inner.traces.cap().get();
        (cap != usize::MAX).then_some(cap)
    }

    /// Calls `visit` on each summary `filter` selects, in list order, under the lock.
    fn for_each_match(
        &self,
        filter: &TraceFilter,
        mut visit: impl FnMut(&TraceSummary),
    ) -> Result<()> {
        filter.validate()?;
        let inner = self.inner.lock();
        // Start at the cursor instead of filtering everything before it.
        let ordered: Box<dyn Iterator<Item = &TraceSummary>> = match &filter.after {
            Some(after) => Box::new(inner.order.range(..after.clone()).rev().map(|(_, s)| s)),
            None => Box::new(inner.order.values().rev()),
        };
        filter.page(ordered).for_each(&mut visit);
        Ok(())
    }
}

impl Inner {
    fn insert(&mut self, trace: &Trace) {
        let summary = TraceSummary::from(trace);
        let cursor = summary.cursor();
        if let Some(old) = self.traces.pop(&trace.run_id) {
            self.order.remove(&old.cursor);
        }
        let entry = Entry {
            trace: Arc::new(trace.clone()),
            cursor: cursor.clone(),
        };
        if let Some((_, evicted)) = self.traces.push(trace.run_id.clone(), entry) {
            self.order.remove(&evicted.cursor);
        }
        self.order.insert(cursor, summary);
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::unbounded()
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .finish()
    }
}

impl TraceStore for MemoryStore {
    fn save(&self, trace: &Trace) -> Result<String> {
        trace.validate()?;
        self.inner.lock().insert(trace);
        Ok(trace.run_id.clone())
    }

    fn load(&self, run_id: &str) -> Result<Trace> {
        let trace = self
            .inner
            .lock()
            .traces
            .get(run_id)
            .map(|entry| Arc::clone(&entry.trace))
            .ok_or_else(|| Error::not_found(run_id))?;
        // Clone the body outside the lock: it may be megabytes.
        Ok(Trace::clone(&trace))
    }

    fn list(&self, limit: usize, offset: usize) -> Result<Vec<TraceSummary>> {
        self.query(&TraceFilter::new().with_limit(limit).with_offset(offset))
    }

    fn query(&self, filter: &TraceFilter) -> Result<Vec<TraceSummary>> {
        let mut page = Vec::new();
        self.for_each_match(filter, |summary| page.push(summary.clone()))?;
        Ok(page)
    }

    fn delete(&self, run_id: &str) -> Result<bool> {
        let mut inner = self.inner.lock();
        match inner.traces.pop(run_id) {
            Some(entry) => {
                inner.order.remove(&entry.cursor);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn save_many(&self, traces: &[Trace]) -> Result<Vec<String>> {
        traces.iter().try_for_each(Trace::validate)?;
        let mut inner = self.inner.lock();
        traces.iter().for_each(|trace| inner.insert(trace));
        Ok(traces.iter().map(|trace| trace.run_id.clone()).collect())
    }

    fn count(&self, filter: &TraceFilter) -> Result<u64> {
        let mut count = 0;
        self.for_each_match(filter, |_| count += 1)?;
        Ok(count)
    }

    fn stats(&self, filter: &TraceFilter) -> Result<TraceStats> {
        let mut stats = TraceStats::default();
        self.for_each_match(filter, |summary| stats.add(summary))?;
        Ok(stats)
    }
}
