//! The in-memory index: where each live record is, its summary in list order, and
//! metadata postings, so `list`, `query` and `load` never read the file to find things.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::ops::Bound;

use serde_json::Value;
use trace_store_core::{Cursor, Timestamp, TraceFilter, TraceSummary, canonical_json};

/// Where a live record is in the file.
#[derive(Clone, Debug)]
pub(crate) struct Loc {
    pub(crate) cursor: Cursor,
    /// First byte of the record.
    pub(crate) offset: u64,
    /// Record length including its newline.
    pub(crate) len: u64,
    /// The trace body, as an absolute offset and a length.
    pub(crate) trace_offset: u64,
    pub(crate) trace_len: u64,
}

/// Postings of one metadata key: hash of the canonical value → traces with that value.
///
/// Hashes keep large values from being stored twice; a collision only adds candidates,
/// which [`TraceFilter::matches`] then rejects.
type Postings = HashMap<u64, BTreeSet<Cursor>>;

#[derive(Debug, Default)]
pub(crate) struct Index {
    by_id: HashMap<String, Loc>,
    /// Ascending `(created_at, run_id)`; list order is its reverse.
    order: BTreeMap<Cursor, TraceSummary>,
    metadata: HashMap<String, Postings>,
    /// Bytes of live records; everything else in the file is dead.
    pub(crate) live_bytes: u64,
    /// Superseded and deleted saves, and tombstones: what compaction drops.
    pub(crate) dead_records: u64,
    /// Whether any trace-store record was ever read from or written to this file.
    pub(crate) native: bool,
}

fn value_key(value: &Value) -> u64 {
    let mut hasher = DefaultHasher::new();
    canonical_json(value).hash(&mut hasher);
    hasher.finish()
}

impl Index {
    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    pub(crate) fn get(&self, run_id: &str) -> Option<&Loc> {
        self.by_id.get(run_id)
    }

    pub(crate) fn contains(&self, run_id: &str) -> bool {
        self.by_id.contains_key(run_id)
    }

    /// Records a save line; an earlier save of the same run_id becomes dead.
    pub(crate) fn save(&mut self, summary: TraceSummary, loc: Loc) {
        self.native = true;
        if self.unlink(&summary.run_id) {
            self.dead_records += 1;
        }
        for (key, value) in &summary.metadata {
            self.metadata
                .entry(key.clone())
                .or_default()
                .entry(value_key(value))
                .or_default()
                .insert(loc.cursor.clone());
        }
        self.live_bytes += loc.len;
        self.order.insert(loc.cursor.clone(), summary);
        self.by_id.insert(loc.cursor.run_id.clone(), loc);
    }

    /// Records a tombstone line: the tombstone itself is dead, and so is the save it
    /// deletes, if any.
    pub(crate) fn delete(&mut self, run_id: &str) {
        self.native = true;
        self.dead_records += 1;
        if self.unlink(run_id) {
            self.dead_records += 1;
        }
    }

    fn unlink(&mut self, run_id: &str) -> bool {
        let Some(loc) = self.by_id.remove(run_id) else {
            return false;
        };
        self.live_bytes -= loc.len;
        if let Some(summary) = self.order.remove(&loc.cursor) {
            for (key, value) in &summary.metadata {
                let Some(postings) = self.metadata.get_mut(key) else {
                    continue;
                };
                let hash = value_key(value);
                if let Some(set) = postings.get_mut(&hash) {
                    set.remove(&loc.cursor);
                    if set.is_empty() {
                        postings.remove(&hash);
                    }
                }
                if postings.is_empty() {
                    self.metadata.remove(key);
                }
            }
        }
        true
    }

    /// Live records in file order: what compaction copies.
    pub(crate) fn live_in_file_order(&self) -> Vec<(String, Loc)> {
        let mut live: Vec<(String, Loc)> = self
            .by_id
            .iter()
            .map(|(run_id, loc)| (run_id.clone(), loc.clone()))
            .collect();
        live.sort_unstable_by_key(|(_, loc)| loc.offset);
        live
    }

    /// Moves a record to `offset` (after compaction).
    pub(crate) fn relocate(&mut self, run_id: &str, offset: u64) {
        if let Some(loc) = self.by_id.get_mut(run_id) {
            loc.trace_offset = offset + (loc.trace_offset - loc.offset);
            loc.offset = offset;
        }
    }

    /// Calls `visit` on each summary `filter` selects, in list order, with the filter's
    /// cursor, offset and limit applied.
    ///
    /// The cheapest access path is used: the smallest metadata posting set when the
    /// filter matches metadata, else the ordered index narrowed to the time range and
    /// cursor. [`TraceFilter::page`] then checks every criterion, so an access path only
    /// has to be a superset.
    pub(crate) fn for_each_match(
        &self,
        filter: &TraceFilter,
        mut visit: impl FnMut(&TraceSummary),
    ) {
        let Some(range) = range_of(filter) else {
            return;
        };
        if filter.metadata_match.is_empty() {
            let ordered = self.order.range(range).rev().map(|(_, summary)| summary);
            filter.page(ordered).for_each(&mut visit);
            return;
        }
        let mut smallest: Option<&BTreeSet<Cursor>> = None;
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
            let ordered = set
                .range(range)
                .rev()
                .filter_map(|cursor| self.order.get(cursor));
            filter.page(ordered).for_each(&mut visit);
        }
    }
}

/// The part of the ascending cursor order `filter` can match: `since` bounds it below,
/// `until` and `after` above. `None` when that part is empty.
fn range_of(filter: &TraceFilter) -> Option<(Bound<Cursor>, Bound<Cursor>)> {
    // `(t, "")` is the smallest cursor at `t`.
    let lower = filter.since.map(|since| Cursor::new(since, ""));
    let mut upper = filter
        .until
        .filter(|until| *until < Timestamp::MAX)
        .map(|until| Cursor::new(until.saturating_add_micros(1), ""));
    if let Some(after) = &filter.after
        && upper.as_ref().is_none_or(|upper| after < upper)
    {
        upper = Some(after.clone());
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
    use serde_json::json;
    use trace_store_core::Trace;

    fn at(micros: i64) -> Timestamp {
        Timestamp::from_micros(micros).unwrap()
    }

    fn add(index: &mut Index, run_id: &str, micros: i64, user: Value) {
        let summary = TraceSummary::from(
            &Trace::new(run_id)
                .with_created_at(at(micros))
                .with_metadata("user", user),
        );
        let loc = Loc {
            cursor: summary.cursor(),
            offset: micros as u64 * 100,
            len: 10,
            trace_offset: micros as u64 * 100 + 5,
            trace_len: 4,
        };
        index.save(summary, loc);
    }

    fn ids(index: &Index, filter: &TraceFilter) -> Vec<String> {
        let mut out = Vec::new();
        index.for_each_match(filter, |s| out.push(s.run_id.clone()));
        out
    }

    #[test]
    fn access_paths_agree_with_the_filter() {
        let mut index = Index::default();
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
    fn upserts_and_deletes_keep_postings_and_bytes_right() {
        let mut index = Index::default();
        add(&mut index, "a", 1, json!("x"));
        add(&mut index, "a", 2, json!("y"));
        assert_eq!(index.len(), 1);
        assert_eq!(index.dead_records, 1);
        assert_eq!(index.live_bytes, 10);
        assert!(ids(&index, &TraceFilter::new().with_metadata("user", "x")).is_empty());
        assert_eq!(
            ids(&index, &TraceFilter::new().with_metadata("user", "y")),
            ["a"]
        );
        index.delete("a");
        index.delete("never-saved");
        assert_eq!(index.dead_records, 4);
        assert_eq!(index.live_bytes, 0);
        assert!(index.metadata.is_empty());
        assert!(index.order.is_empty());
    }
}
