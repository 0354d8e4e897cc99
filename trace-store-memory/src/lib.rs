#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

use std::num::NonZeroUsize;
use std::sync::Arc;

use lru::LruCache;
use parking_lot::Mutex;
use trace_store_core::{
    Error, Result, SummaryIndex, Trace, TraceFilter, TraceStats, TraceStore, TraceSummary,
};

/// Traces held in memory, optionally bounded with least-recently-used eviction.
///
/// `save` and `load` make a trace the most recently used; `list`, `query`, `count` and
/// `stats` do not, so browsing never changes what gets evicted. Summaries live in core's
/// [`SummaryIndex`] (list order plus metadata postings), so a page of `list` costs its
/// own size and a metadata or time-range query reads only its candidates.
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

struct Inner {
    /// run_id → body, in recency order.
    bodies: LruCache<String, Arc<Trace>>,
    summaries: SummaryIndex,
}

impl MemoryStore {
    /// A store holding at most `capacity` traces; saving one more evicts the least
    /// recently used. A capacity of 0 is [`Error::InvalidInput`].
    pub fn new(capacity: usize) -> Result<MemoryStore> {
        let capacity = NonZeroUsize::new(capacity)
            .ok_or_else(|| Error::invalid("MemoryStore capacity must be at least 1"))?;
        // `sparse`: the capacity is a bound, not a size hint; `LruCache::new` would
        // allocate a table for `capacity` entries up front (and abort on a huge one).
        Ok(MemoryStore::with_cache(LruCache::sparse(capacity)))
    }

    /// A store without a bound.
    pub fn unbounded() -> MemoryStore {
        MemoryStore::with_cache(LruCache::unbounded())
    }

    fn with_cache(bodies: LruCache<String, Arc<Trace>>) -> MemoryStore {
        MemoryStore {
            inner: Mutex::new(Inner {
                bodies,
                summaries: SummaryIndex::new(),
            }),
        }
    }

    /// Number of traces held.
    pub fn len(&self) -> usize {
        self.inner.lock().bodies.len()
    }

    /// True if no trace is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bound, or `None` for an unbounded store.
    pub fn capacity(&self) -> Option<usize> {
        let cap = self.inner.lock().bodies.cap().get();
        (cap != usize::MAX).then_some(cap)
    }
}

/// A trace ready to be stored: body and summary are built before the lock is taken,
/// so a large trace never blocks other threads while it is copied.
struct Entry {
    body: Arc<Trace>,
    summary: TraceSummary,
}

impl Entry {
    fn new(trace: &Trace) -> Entry {
        Entry {
            body: Arc::new(trace.clone()),
            summary: TraceSummary::from(trace),
        }
    }
}

impl Inner {
    fn insert(&mut self, entry: Entry) {
        let run_id = entry.summary.run_id.clone();
        // Popping first makes the push below report only an eviction, never this
        // run_id's previous version.
        self.bodies.pop(&run_id);
        if let Some((evicted, _)) = self.bodies.push(run_id, entry.body) {
            self.summaries.remove(&evicted);
        }
        self.summaries.insert(entry.summary);
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
        let entry = Entry::new(trace);
        self.inner.lock().insert(entry);
        Ok(trace.run_id.clone())
    }

    fn load(&self, run_id: &str) -> Result<Trace> {
        let trace = self
            .inner
            .lock()
            .bodies
            .get(run_id)
            .map(Arc::clone)
            .ok_or_else(|| Error::not_found(run_id))?;
        // Clone the body outside the lock: it may be megabytes.
        Ok(Trace::clone(&trace))
    }

    fn list(&self, limit: usize, offset: usize) -> Result<Vec<TraceSummary>> {
        self.query(&TraceFilter::new().with_limit(limit).with_offset(offset))
    }

    fn query(&self, filter: &TraceFilter) -> Result<Vec<TraceSummary>> {
        self.inner.lock().summaries.query(filter)
    }

    fn delete(&self, run_id: &str) -> Result<bool> {
        let mut inner = self.inner.lock();
        inner.summaries.remove(run_id);
        Ok(inner.bodies.pop(run_id).is_some())
    }

    fn save_many(&self, traces: &[Trace]) -> Result<Vec<String>> {
        traces.iter().try_for_each(Trace::validate)?;
        let entries: Vec<Entry> = traces.iter().map(Entry::new).collect();
        // One lock for the batch: no reader sees half of it.
        let mut inner = self.inner.lock();
        entries.into_iter().for_each(|entry| inner.insert(entry));
        Ok(traces.iter().map(|trace| trace.run_id.clone()).collect())
    }

    fn count(&self, filter: &TraceFilter) -> Result<u64> {
        self.inner.lock().summaries.count(filter)
    }

    fn stats(&self, filter: &TraceFilter) -> Result<TraceStats> {
        self.inner.lock().summaries.stats(filter)
    }
}
