#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod body;
mod options;

use std::num::NonZeroUsize;
use std::sync::{Arc, OnceLock};

use lru::LruCache;
use parking_lot::Mutex;
use trace_store_core::{
    Error, GroupBy, GroupKey, Result, SummaryIndex, Trace, TraceFilter, TraceStats, TraceStore,
    TraceSummary,
};

pub use options::{MemoryOptions, SCHEME};

/// Traces held in memory, optionally bounded with least-recently-used eviction.
///
/// `save`, `load` and `merge` make a trace the most recently used; `list`, `query`,
/// `count`, `stats` and `stats_by` do not, so browsing never changes what gets evicted.
/// Summaries live in core's [`SummaryIndex`] (list order plus metadata postings), so a
/// page of `list` costs its own size and a metadata or time-range query reads only its
/// candidates. Every operation, `merge` and `delete_where` included, runs under one
/// in-process lock, so each is atomic.
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

struct Inner {
    /// run_id → body, in recency order.
    bodies: LruCache<String, Arc<Stored>>,
    summaries: SummaryIndex,
}

/// A stored trace, encoded compactly ([`body`]), and, once a text query has looked at
/// it, its searchable text.
///
/// The text is cached because a text query is a scan: rebuilding
/// [`Trace::search_text`] walks every JSON leaf and lower-cases it, for every candidate
/// of every query, where the cached copy costs one substring search. It is built
/// lazily, so a store that is never searched pays nothing; a searched one pays at most
/// [`SEARCH_TEXT_MAX_BYTES`](trace_store_core::SEARCH_TEXT_MAX_BYTES) per trace, and
/// usually far less than the body it sits beside (it holds only the body's strings).
/// A new version of the trace (save, merge) comes with a new, empty cache.
struct Stored {
    body: Box<str>,
    search_text: OnceLock<String>,
}

impl Stored {
    fn new(trace: &Trace) -> Stored {
        Stored {
            body: body::encode(trace),
            search_text: OnceLock::new(),
        }
    }

    fn trace(&self) -> Result<Trace> {
        body::decode(&self.body).ok_or_else(|| {
            Error::corrupt("the memory store could not decode a trace it encoded (a bug)")
        })
    }

    fn search_text(&self) -> &str {
        self.search_text.get_or_init(|| {
            self.trace()
                .map(|trace| trace.search_text())
                .unwrap_or_default()
        })
    }
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

    fn with_cache(bodies: LruCache<String, Arc<Stored>>) -> MemoryStore {
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
    body: Arc<Stored>,
    summary: TraceSummary,
}

impl Entry {
    fn new(trace: &Trace) -> Entry {
        Entry {
            summary: TraceSummary::from(trace),
            body: Arc::new(Stored::new(trace)),
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

    fn remove(&mut self, run_id: &str) -> bool {
        self.summaries.remove(run_id);
        self.bodies.pop(run_id).is_some()
    }

    /// The text query's criterion for core's index: `filter`'s text (if any) is decided
    /// by core's predicate on the stored trace's searchable text, before offset and
    /// limit. Core's index picks the candidates and applies every summary criterion.
    fn text_matches<'a>(&'a self, filter: &'a TraceFilter) -> impl FnMut(&str) -> bool + 'a {
        move |run_id| {
            filter.text.is_none()
                // `peek`: a query must not change what gets evicted.
                || self
                    .bodies
                    .peek(run_id)
                    .is_some_and(|stored| filter.matches_text(stored.search_text()))
        }
    }

    /// Calls `visit` with the run_id of each summary `query(filter)` returns, in list
    /// order. The filter must be valid.
    fn for_each_match(&self, filter: &TraceFilter, visit: impl FnMut(&str)) {
        self.summaries
            .for_each_match_where(filter, self.text_matches(filter), visit);
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
        let stored = self
            .inner
            .lock()
            .bodies
            .get(run_id)
            .map(Arc::clone)
            .ok_or_else(|| Error::not_found(run_id))?;
        // Decode outside the lock: the trace may be megabytes.
        stored.trace()
    }

    fn list(&self, limit: usize, offset: usize) -> Result<Vec<TraceSummary>> {
        self.query(&TraceFilter::new().with_limit(limit).with_offset(offset))
    }

    fn query(&self, filter: &TraceFilter) -> Result<Vec<TraceSummary>> {
        filter.validate()?;
        let inner = self.inner.lock();
        Ok(inner
            .summaries
            .query_where(filter, inner.text_matches(filter)))
    }

    fn delete(&self, run_id: &str) -> Result<bool> {
        Ok(self.inner.lock().remove(run_id))
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
        filter.validate()?;
        let mut count = 0;
        self.inner.lock().for_each_match(filter, |_| count += 1);
        Ok(count)
    }

    fn stats(&self, filter: &TraceFilter) -> Result<TraceStats> {
        filter.validate()?;
        let inner = self.inner.lock();
        Ok(inner
            .summaries
            .stats_where(filter, inner.text_matches(filter)))
    }

    /// Load, fold and store under the store's lock, so merges of one run_id never
    /// lose each other's parts. The fold is core's [`Trace::merge`].
    fn merge(&self, part: &Trace) -> Result<Trace> {
        part.validate()?;
        let mut inner = self.inner.lock();
        // `get`: a merge is a write, and refreshes recency as `save` does.
        let merged = match inner.bodies.get(&part.run_id) {
            Some(stored) => {
                let mut merged = stored.trace()?;
                merged.merge(part);
                merged.validate()?;
                merged
            }
            None => part.clone(),
        };
        inner.insert(Entry::new(&merged));
        Ok(merged)
    }

    fn stats_by(
        &self,
        filter: &TraceFilter,
        group: GroupBy,
    ) -> Result<Vec<(GroupKey, TraceStats)>> {
        group.validate()?;
        filter.validate()?;
        let inner = self.inner.lock();
        let matches = inner
            .summaries
            .query_where(filter, inner.text_matches(filter));
        Ok(group.stats(&matches))
    }

    /// Selects and removes under one lock: exactly what `query(filter)` returns at that
    /// moment, paging included, and nothing saved meanwhile.
    fn delete_where(&self, filter: &TraceFilter) -> Result<u64> {
        filter.validate()?;
        let mut inner = self.inner.lock();
        let mut doomed = Vec::new();
        inner.for_each_match(filter, |run_id| doomed.push(run_id.to_owned()));
        let deleted = doomed.iter().filter(|run_id| inner.remove(run_id)).count();
        Ok(deleted as u64)
    }
}
