//! An in-memory index of summaries, for backends that keep their summaries in memory
//! (the memory store): list order, time ranges and metadata postings, and the one query
//! path over them.
//!
//! Summaries are held compactly: the strings and metadata values they repeat (names,
//! sessions, models, metadata keys and values, score names) are interned once per
//! index, and each summary is one small record without maps. A query walks these
//! records, which stay in cache where a walk over full summaries (each a dozen small
//! allocations scattered over the heap) missed it on every string, and rebuilds a
//! [`TraceSummary`] only for what it returns.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use serde_json::Value;

use crate::{
    ModelUsage, Result, Status, Timestamp, Trace, TraceFilter, TraceStats, TraceSummary,
    canonical_json,
};

/// Summaries by run_id, in list order, with metadata postings.
///
/// `query` walks the cheapest access path: the smallest metadata posting set when the
/// filter matches metadata, else the list order narrowed to `since`, `until` and the
/// cursor. Every candidate is then decided by [`TraceFilter::matches`], so an access
/// path only has to yield a superset of the matches, in list order.
///
/// ```
/// use trace_store_core::{SummaryIndex, Trace, TraceFilter, TraceSummary};
///
/// let mut index = SummaryIndex::new();
/// index.insert(TraceSummary::from(&Trace::new("a").with_metadata("user", "u1")));
/// index.insert(TraceSummary::from(&Trace::new("b").with_metadata("user", "u2")));
/// let hits = index.query(&TraceFilter::new().with_metadata("user", "u2"))?;
/// assert_eq!(hits[0].run_id, "b");
/// assert!(index.remove("b"));
/// assert_eq!(index.count(&TraceFilter::new())?, 1);
/// # Ok::<(), trace_store_core::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct SummaryIndex {
    /// Ascending `(created_at, run_id)`; list order is its reverse.
    order: BTreeMap<Key, Entry>,
    /// run_id → created_at: what completes a run_id into its [`Key`].
    created: HashMap<Arc<str>, Timestamp>,
    /// Metadata key → hash of the canonical value → traces with that value. Hashes keep
    /// large values from being stored twice; a collision only adds candidates, which
    /// the filter then rejects.
    metadata: HashMap<Arc<str>, HashMap<u64, BTreeSet<Key>>>,
    strings: Interned<str>,
    values: Interned<Value>,
}

/// A position in list order, ordered as [`Cursor`](crate::Cursor) is. The run_id is
/// shared by every place that holds the key (list order, run_id map, one posting per
/// metadata entry) instead of being copied into each.
type Key = (Timestamp, Arc<str>);

/// A summary without its key, its strings and values interned.
#[derive(Debug)]
struct Entry {
    name: Option<Arc<str>>,
    session_id: Option<Arc<str>>,
    parent_run_id: Option<Arc<str>>,
    status: Status,
    steps: usize,
    total_ms: f64,
    error_count: u64,
    failed_steps: u64,
    input_tokens: u64,
    output_tokens: u64,
    cost_nano_usd: i64,
    /// In the summary's (sorted) order, as are the two below.
    models: Box<[(Arc<str>, ModelUsage)]>,
    metadata: Box<[(Arc<str>, Arc<Value>)]>,
    scores: Box<[(Arc<str>, f64)]>,
}

/// Values shared by every summary that holds them. The set holds one reference; when
/// a summary gives back the last other one, the value leaves the set, so removed
/// summaries leave nothing behind.
#[derive(Debug)]
struct Interned<T: ?Sized>(HashSet<Arc<T>>);

impl<T: ?Sized> Default for Interned<T> {
    fn default() -> Self {
        Interned(HashSet::new())
    }
}

impl<T: ?Sized + Hash + Eq> Interned<T> {
    fn get(&mut self, value: &T, make: impl FnOnce(&T) -> Arc<T>) -> Arc<T> {
        if let Some(shared) = self.0.get(value) {
            return Arc::clone(shared);
        }
        let shared = make(value);
        self.0.insert(Arc::clone(&shared));
        shared
    }

    fn release(&mut self, shared: Arc<T>) {
        // The set's reference and this one: this was the last user.
        if Arc::strong_count(&shared) == 2 {
            self.0.remove(&*shared);
        }
    }
}

/// True for values whose equality is their spelling, which can be shared without
/// swapping one spelling for another: floats are not (`-0.0 == 0.0`), nor is anything
/// holding one.
fn internable(value: &Value) -> bool {
    match value {
        Value::Null | Value::Bool(_) | Value::String(_) => true,
        Value::Number(n) => !n.is_f64(),
        Value::Array(_) | Value::Object(_) => false,
    }
}

/// The posting key of a metadata value: equal under [`json_eq`](crate::json_eq) means
/// equal keys. A string equals only the same string, so it is hashed as it is (the
/// common case, without building its canonical JSON); anything else through its
/// canonical JSON, which spells `1` and `1.0` alike. A collision only adds candidates.
fn value_key(value: &Value) -> u64 {
    let mut hasher = DefaultHasher::new();
    match value {
        Value::String(s) => (0u8, s.as_str()).hash(&mut hasher),
        other => (1u8, canonical_json(other)).hash(&mut hasher),
    }
    hasher.finish()
}

/// One summary of the index, as a query visits it: its run_id is at hand, the whole
/// [`TraceSummary`] is built on request.
#[derive(Clone, Copy, Debug)]
struct IndexedSummary<'a> {
    key: &'a Key,
    entry: &'a Entry,
}

impl IndexedSummary<'_> {
    /// The summary, as it was inserted.
    fn to_summary(self) -> TraceSummary {
        let text = |s: &Arc<str>| String::from(&**s);
        let entry = self.entry;
        let mut models = BTreeMap::new();
        for (model, usage) in &entry.models {
            models.insert(text(model), *usage);
        }
        let mut metadata = BTreeMap::new();
        for (key, value) in &entry.metadata {
            metadata.insert(text(key), Value::clone(value));
        }
        let mut scores = BTreeMap::new();
        for (name, value) in &entry.scores {
            scores.insert(text(name), *value);
        }
        TraceSummary {
            run_id: text(&self.key.1),
            name: entry.name.as_ref().map(text),
            session_id: entry.session_id.as_ref().map(text),
            parent_run_id: entry.parent_run_id.as_ref().map(text),
            status: entry.status,
            created_at: self.key.0,
            steps: entry.steps,
            total_ms: entry.total_ms,
            error_count: entry.error_count,
            failed_steps: entry.failed_steps,
            input_tokens: entry.input_tokens,
            output_tokens: entry.output_tokens,
            cost_nano_usd: entry.cost_nano_usd,
            models,
            metadata,
            scores,
        }
    }

    /// Fills `out` with the members [`TraceStats::add`] reads (status, counts, totals,
    /// per-model usage), so totals never build a whole summary.
    fn fill_totals(self, out: &mut TraceSummary) {
        let entry = self.entry;
        out.status = entry.status;
        out.steps = entry.steps;
        out.total_ms = entry.total_ms;
        out.error_count = entry.error_count;
        out.failed_steps = entry.failed_steps;
        out.input_tokens = entry.input_tokens;
        out.output_tokens = entry.output_tokens;
        out.cost_nano_usd = entry.cost_nano_usd;
        out.models.clear();
        for (model, usage) in &entry.models {
            out.models.insert(String::from(&**model), *usage);
        }
    }

    /// Fills `scratch` with every member of this summary that `filter` can look at
    /// (the members [`TraceFilter::matches`] reads), then asks it: matching never
    /// builds a whole summary.
    fn matches(&self, filter: &TraceFilter, scratch: &mut TraceSummary) -> bool {
        let entry = self.entry;
        let fill = |out: &mut Option<String>, wanted: bool, value: &Option<Arc<str>>| match (
            wanted, value,
        ) {
            (true, Some(value)) => {
                let out = out.get_or_insert_with(String::new);
                out.clear();
                out.push_str(value);
            }
            _ => *out = None,
        };
        scratch.run_id.clear();
        if filter.after.is_some() {
            scratch.run_id.push_str(&self.key.1);
        }
        scratch.created_at = self.key.0;
        scratch.status = entry.status;
        scratch.steps = entry.steps;
        fill(&mut scratch.name, filter.name.is_some(), &entry.name);
        fill(
            &mut scratch.session_id,
            filter.session_id.is_some(),
            &entry.session_id,
        );
        fill(
            &mut scratch.parent_run_id,
            filter.parent_run_id.is_some(),
            &entry.parent_run_id,
        );
        scratch.scores.clear();
        if let Some(range) = &filter.score
            && let Some((_, value)) = entry.scores.iter().find(|(name, _)| **name == *range.name)
        {
            scratch.scores.insert(range.name.clone(), *value);
        }
        scratch.metadata.clear();
        for key in filter.metadata_match.keys() {
            if let Some((_, value)) = entry.metadata.iter().find(|(k, _)| **k == **key) {
                scratch.metadata.insert(key.clone(), Value::clone(value));
            }
        }
        filter.matches(scratch)
    }
}

impl SummaryIndex {
    /// An empty index.
    pub fn new() -> SummaryIndex {
        SummaryIndex::default()
    }

    /// Number of summaries.
    pub fn len(&self) -> usize {
        self.created.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.created.is_empty()
    }

    /// True if a summary with this run_id is indexed.
    pub fn contains(&self, run_id: &str) -> bool {
        self.created.contains_key(run_id)
    }

    /// The summary of `run_id`.
    pub fn get(&self, run_id: &str) -> Option<TraceSummary> {
        let (run_id, created_at) = self.created.get_key_value(run_id)?;
        let (key, entry) = self
            .order
            .get_key_value(&(*created_at, Arc::clone(run_id)))?;
        Some(IndexedSummary { key, entry }.to_summary())
    }

    /// Adds a summary, replacing the one with the same run_id; true if it replaced one.
    pub fn insert(&mut self, summary: TraceSummary) -> bool {
        let replaced = self.remove(&summary.run_id);
        let TraceSummary {
            run_id,
            name,
            session_id,
            parent_run_id,
            status,
            created_at,
            steps,
            total_ms,
            error_count,
            failed_steps,
            input_tokens,
            output_tokens,
            cost_nano_usd,
            models,
            metadata,
            scores,
        } = summary;
        let strings = &mut self.strings;
        let mut text = |s: &str| strings.get(s, |s| Arc::from(s));
        let entry = Entry {
            name: name.as_deref().map(&mut text),
            session_id: session_id.as_deref().map(&mut text),
            parent_run_id: parent_run_id.as_deref().map(&mut text),
            status,
            steps,
            total_ms,
            error_count,
            failed_steps,
            input_tokens,
            output_tokens,
            cost_nano_usd,
            models: models.iter().map(|(m, u)| (text(m), *u)).collect(),
            scores: scores.iter().map(|(n, v)| (text(n), *v)).collect(),
            metadata: metadata
                .iter()
                .map(|(k, v)| {
                    let value = if internable(v) {
                        self.values.get(v, |v| Arc::new(v.clone()))
                    } else {
                        Arc::new(v.clone())
                    };
                    (text(k), value)
                })
                .collect(),
        };
        let run_id: Arc<str> = Arc::from(run_id);
        let key = (created_at, Arc::clone(&run_id));
        for (name, value) in &entry.metadata {
            self.metadata
                .entry(Arc::clone(name))
                .or_default()
                .entry(value_key(value))
                .or_default()
                .insert(key.clone());
        }
        self.created.insert(run_id, created_at);
        self.order.insert(key, entry);
        replaced
    }

    /// Removes the summary of `run_id`; true if there was one.
    pub fn remove(&mut self, run_id: &str) -> bool {
        let Some((run_id, created_at)) = self.created.remove_entry(run_id) else {
            return false;
        };
        let key = (created_at, run_id);
        let Some(entry) = self.order.remove(&key) else {
            return true;
        };
        for (name, value) in &entry.metadata {
            let Some(postings) = self.metadata.get_mut(name) else {
                continue;
            };
            let hash = value_key(value);
            if let Some(set) = postings.get_mut(&hash) {
                set.remove(&key);
                if set.is_empty() {
                    postings.remove(&hash);
                }
            }
            if postings.is_empty() {
                self.metadata.remove(name);
            }
        }
        self.release(entry);
        true
    }

    fn release(&mut self, entry: Entry) {
        let Entry {
            name,
            session_id,
            parent_run_id,
            models,
            metadata,
            scores,
            ..
        } = entry;
        let strings = &mut self.strings;
        [name, session_id, parent_run_id]
            .into_iter()
            .flatten()
            .for_each(|s| strings.release(s));
        models.into_iter().for_each(|(s, _)| strings.release(s));
        scores.into_iter().for_each(|(s, _)| strings.release(s));
        for (key, value) in metadata {
            strings.release(key);
            if internable(&value) {
                self.values.release(value);
            }
        }
    }

    /// Calls `visit` with the run_id of each summary `filter` selects, in list order,
    /// with the filter's cursor, offset and limit applied. The filter is not validated
    /// here, and its text query is not applied (the index holds no text): use
    /// [`SummaryIndex::for_each_match_where`] with the text predicate.
    pub fn for_each_match(&self, filter: &TraceFilter, mut visit: impl FnMut(&str)) {
        self.walk(filter, |_| true, |summary| visit(&summary.key.1));
    }

    /// [`SummaryIndex::for_each_match`] with one more criterion on the run_id, `also`,
    /// checked with the filter's own before offset and limit (a text predicate, say).
    pub fn for_each_match_where(
        &self,
        filter: &TraceFilter,
        also: impl FnMut(&str) -> bool,
        mut visit: impl FnMut(&str),
    ) {
        self.walk(filter, also, |summary| visit(&summary.key.1));
    }

    /// The summaries [`SummaryIndex::for_each_match_where`] visits. The filter is not
    /// validated here.
    pub fn query_where(
        &self,
        filter: &TraceFilter,
        also: impl FnMut(&str) -> bool,
    ) -> Vec<TraceSummary> {
        let mut page = Vec::new();
        self.walk(filter, also, |summary| page.push(summary.to_summary()));
        page
    }

    /// Totals over the summaries [`SummaryIndex::for_each_match_where`] visits. The
    /// filter is not validated here.
    pub fn stats_where(&self, filter: &TraceFilter, also: impl FnMut(&str) -> bool) -> TraceStats {
        let mut stats = TraceStats::default();
        let mut scratch = TraceSummary::from(&Trace::new(String::new()));
        self.walk(filter, also, |summary| {
            summary.fill_totals(&mut scratch);
            stats.add(&scratch);
        });
        stats
    }

    fn walk(
        &self,
        filter: &TraceFilter,
        mut also: impl FnMut(&str) -> bool,
        mut visit: impl FnMut(IndexedSummary<'_>),
    ) {
        let Some(range) = filter.order_range() else {
            return;
        };
        let mut scratch = TraceSummary::from(&Trace::new(String::new()));
        let mut page = |candidates: &mut dyn Iterator<Item = (&Key, &Entry)>| {
            candidates
                .map(|(key, entry)| IndexedSummary { key, entry })
                .filter(|summary| summary.matches(filter, &mut scratch) && also(&summary.key.1))
                .skip(filter.offset)
                .take(filter.limit.unwrap_or(usize::MAX))
                .for_each(&mut visit);
        };
        if filter.metadata_match.is_empty() {
            page(&mut self.order.range(range).rev());
            return;
        }
        let mut smallest: Option<&BTreeSet<Key>> = None;
        for (key, value) in &filter.metadata_match {
            let Some(set) = self
                .metadata
                .get(key.as_str())
                .and_then(|postings| postings.get(&value_key(value)))
            else {
                return;
            };
            if smallest.is_none_or(|best| set.len() < best.len()) {
                smallest = Some(set);
            }
        }
        if let Some(set) = smallest {
            page(
                &mut set
                    .range(range)
                    .rev()
                    .filter_map(|key| self.order.get_key_value(key)),
            );
        }
    }

    /// The summaries `filter` selects; a contradictory filter is `InvalidInput`.
    pub fn query(&self, filter: &TraceFilter) -> Result<Vec<TraceSummary>> {
        filter.validate()?;
        Ok(self.query_where(filter, |_| true))
    }

    /// How many summaries `query(filter)` returns.
    pub fn count(&self, filter: &TraceFilter) -> Result<u64> {
        filter.validate()?;
        let mut count = 0;
        self.for_each_match(filter, |_| count += 1);
        Ok(count)
    }

    /// Totals over the summaries `query(filter)` returns.
    pub fn stats(&self, filter: &TraceFilter) -> Result<TraceStats> {
        filter.validate()?;
        Ok(self.stats_where(filter, |_| true))
    }
}

#[cfg(test)]
#[path = "index_tests.rs"]
mod tests;
