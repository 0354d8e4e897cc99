//! An in-memory index of summaries, for backends that keep their summaries in memory
//! (the memory and JSON Lines stores): list order, time ranges and metadata postings,
//! and the one query path over them.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::ops::Bound;
use std::sync::Arc;

use serde_json::Value;

use crate::{Result, Timestamp, TraceFilter, TraceStats, TraceSummary, canonical_json};

/// Summaries by run_id, in list order, with metadata postings.
///
/// `query` walks the cheapest access path: the smallest metadata posting set when the
/// filter matches metadata, else the list order narrowed to `since`, `until` and the
/// cursor. Every candidate then goes through [`TraceFilter::page`], so an access path
/// only has to yield a superset of the matches, in list order.
///
/// ```
/// use trace_store_core::{SummaryIndex, Trace, TraceFilter, TraceSummary};
///
/// let mut index = SummaryIndex::new();
/// index.insert(TraceSummary::from(&Trace::new("a").with_metadata("user", "u1")));
/// index.insert(TraceSummary::from(&Trace::new("b").with_metadata("user", "u2")));
/// let hits = index.query(&TraceFilter::new().with_metadata("user", "u2"))?;
/// assert_eq!(hits[0].run_id, "b");
/// assert!(index.remove("b").is_some());
/// assert_eq!(index.count(&TraceFilter::new())?, 1);
/// # Ok::<(), trace_store_core::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct SummaryIndex {
    /// Ascending `(created_at, run_id)`; list order is its reverse.
    order: BTreeMap<Key, TraceSummary>,
    /// run_id → created_at: what completes a run_id into its [`Key`].
    created: HashMap<Arc<str>, Timestamp>,
    /// Metadata key → hash of the canonical value → traces with that value. Hashes keep
    /// large values from being stored twice; a collision only adds candidates, which
    /// the filter then rejects.
    metadata: HashMap<String, HashMap<u64, BTreeSet<Key>>>,
}

/// A position in list order, ordered as [`Cursor`](crate::Cursor) is. The run_id is shared by every
/// place that holds the key (list order, run_id map, one posting per metadata entry)
/// instead of being copied into each.
type Key = (Timestamp, Arc<str>);

fn value_key(value: &Value) -> u64 {
    let mut hasher = DefaultHasher::new();
    canonical_json(value).hash(&mut hasher);
    hasher.finish()
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
    pub fn get(&self, run_id: &str) -> Option<&TraceSummary> {
        self.order.get(&self.key(run_id)?)
    }

    fn key(&self, run_id: &str) -> Option<Key> {
        let (run_id, created_at) = self.created.get_key_value(run_id)?;
        Some((*created_at, Arc::clone(run_id)))
    }

    /// Adds a summary, replacing (and returning) the one with the same run_id.
    pub fn insert(&mut self, summary: TraceSummary) -> Option<TraceSummary> {
        let replaced = self.remove(&summary.run_id);
        let run_id: Arc<str> = Arc::from(summary.run_id.as_str());
        let key = (summary.created_at, Arc::clone(&run_id));
        for (name, value) in &summary.metadata {
            self.metadata
                .entry(name.clone())
                .or_default()
                .entry(value_key(value))
                .or_default()
                .insert(key.clone());
        }
        self.created.insert(run_id, summary.created_at);
        self.order.insert(key, summary);
        replaced
    }

    /// Removes and returns the summary of `run_id`.
    pub fn remove(&mut self, run_id: &str) -> Option<TraceSummary> {
        let (run_id, created_at) = self.created.remove_entry(run_id)?;
        let key = (created_at, run_id);
        let summary = self.order.remove(&key)?;
        for (name, value) in &summary.metadata {
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
        Some(summary)
    }

    /// Calls `visit` on each summary `filter` selects, in list order, with the filter's
    /// cursor, offset and limit applied. The filter is not validated here, and its text
    /// query is not applied (the index holds no text): use
    /// [`SummaryIndex::for_each_match_where`] with the text predicate.
    pub fn for_each_match(&self, filter: &TraceFilter, visit: impl FnMut(&TraceSummary)) {
        self.for_each_match_where(filter, |_| true, visit);
    }

    /// [`SummaryIndex::for_each_match`] with one more criterion, `also`, checked with
    /// the filter's own before offset and limit (a text predicate, say).
    pub fn for_each_match_where(
        &self,
        filter: &TraceFilter,
        mut also: impl FnMut(&TraceSummary) -> bool,
        mut visit: impl FnMut(&TraceSummary),
    ) {
        let Some(range) = range_of(filter) else {
            return;
        };
        if filter.metadata_match.is_empty() {
            let ordered = self.order.range(range).rev().map(|(_, summary)| summary);
            filter.page_where(ordered, &mut also).for_each(&mut visit);
            return;
        }
        let mut smallest: Option<&BTreeSet<Key>> = None;
        for (key, value) in &filter.metadata_match {
            let Some(set) = self
                .metadata
                .get(key)
                .and_then(|postings| postings.get(&value_key(value)))
            else {
                return;
            };
            if smallest.is_none_or(|best| set.len() < best.len()) {
                smallest = Some(set);
            }
        }
        if let Some(set) = smallest {
            let ordered = set.range(range).rev().filter_map(|key| self.order.get(key));
            filter.page_where(ordered, &mut also).for_each(&mut visit);
        }
    }

    /// The summaries `filter` selects; a contradictory filter is `InvalidInput`.
    pub fn query(&self, filter: &TraceFilter) -> Result<Vec<TraceSummary>> {
        filter.validate()?;
        let mut page = Vec::new();
        self.for_each_match(filter, |summary| page.push(summary.clone()));
        Ok(page)
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
        let mut stats = TraceStats::default();
        self.for_each_match(filter, |summary| stats.add(summary));
        Ok(stats)
    }
}

/// The part of the ascending cursor order `filter` can match: `since` bounds it below,
/// `until` and `after` above. `None` when that part is empty.
fn range_of(filter: &TraceFilter) -> Option<(Bound<Key>, Bound<Key>)> {
    // `(t, "")` is the smallest key at `t`.
    let at = |t: Timestamp, run_id: &str| -> Key { (t, Arc::from(run_id)) };
    let lower = filter.since.map(|since| at(since, ""));
    let mut upper = filter
        .until
        .filter(|until| *until < Timestamp::MAX)
        .map(|until| at(until.saturating_add_micros(1), ""));
    if let Some(after) = &filter.after {
        let after = at(after.created_at, &after.run_id);
        if upper.as_ref().is_none_or(|upper| after < *upper) {
            upper = Some(after);
        }
    }
    if let (Some(lower), Some(upper)) = (&lower, &upper)
        && lower >= upper
    {
        return None;
    }
    Some((
        lower.map_or(Bound::Unbounded, Bound::Included),
        upper.map_or(Bound::Unbounded, Bound::Excluded),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Cursor, Trace};
    use serde_json::json;

    fn at(micros: i64) -> Timestamp {
        Timestamp::from_micros(micros).unwrap()
    }

    fn add(index: &mut SummaryIndex, run_id: &str, micros: i64, user: Value) {
        index.insert(TraceSummary::from(
            &Trace::new(run_id)
                .with_created_at(at(micros))
                .with_metadata("user", user),
        ));
    }

    fn ids(index: &SummaryIndex, filter: &TraceFilter) -> Vec<String> {
        let mut out = Vec::new();
        index.for_each_match(filter, |s| out.push(s.run_id.clone()));
        out
    }

    #[test]
    fn access_paths_agree_with_the_filter() {
        let mut index = SummaryIndex::new();
        for i in 0..20 {
            add(&mut index, &format!("r{i:02}"), i % 7, json!(i % 3));
        }
        let all: Vec<TraceSummary> = index.order.values().rev().cloned().collect();
        let filters = [
            TraceFilter::new(),
            TraceFilter::new().with_metadata("user", 1.0),
            TraceFilter::new().with_metadata("user", "1"),
            TraceFilter::new().with_since(at(2)).with_until(at(4)),
            TraceFilter::new().with_until(at(0)),
            TraceFilter::new()
                .with_since(at(6))
                .with_metadata("user", 2),
            TraceFilter::new()
                .with_after(Cursor::new(at(3), "r10"))
                .with_limit(4),
            TraceFilter::new()
                .with_after(Cursor::new(at(3), "r10"))
                .with_since(at(3))
                .with_metadata("user", 0)
                .with_offset(1),
            TraceFilter::new()
                .with_since(at(5))
                .with_after(Cursor::new(at(5), "")),
            TraceFilter::new()
                .with_until(Timestamp::MAX)
                .with_since(Timestamp::MIN),
        ];
        for filter in filters {
            let expected: Vec<String> = filter.page(&all).map(|s| s.run_id.clone()).collect();
            assert_eq!(ids(&index, &filter), expected, "{filter:?}");
        }
    }

    #[test]
    fn upserts_and_removals_keep_postings_right() {
        let mut index = SummaryIndex::new();
        add(&mut index, "a", 1, json!("x"));
        add(&mut index, "a", 2, json!("y"));
        assert_eq!(index.len(), 1);
        assert!(ids(&index, &TraceFilter::new().with_metadata("user", "x")).is_empty());
        assert_eq!(
            ids(&index, &TraceFilter::new().with_metadata("user", "y")),
            ["a"]
        );
        assert_eq!(index.get("a").map(|s| s.created_at), Some(at(2)));
        assert!(index.remove("a").is_some());
        assert!(index.remove("never-saved").is_none());
        assert!(index.is_empty());
        assert!(index.metadata.is_empty());
        assert!(index.order.is_empty());
    }
}
