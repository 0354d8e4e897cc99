//! The in-memory index: where each live record is in the file, plus core's
//! [`SummaryIndex`] of their summaries, so `list`, `query` and `load` never read the
//! file to find things.

use std::collections::HashMap;

use trace_store_core::{SummaryIndex, TraceSummary};

/// Where a live record is in the file.
#[derive(Clone, Debug)]
pub(crate) struct Loc {
    /// First byte of the record.
    pub(crate) offset: u64,
    /// Record length including its newline.
    pub(crate) len: u64,
    /// The trace body, as an absolute offset and a length.
    pub(crate) trace_offset: u64,
    pub(crate) trace_len: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Index {
    by_id: HashMap<String, Loc>,
    summaries: SummaryIndex,
    /// Bytes of live records; everything else in the file is dead.
    pub(crate) live_bytes: u64,
    /// Superseded and deleted saves, and tombstones: what compaction drops.
    pub(crate) dead_records: u64,
    /// Whether any trace-store record was ever read from or written to this file.
    pub(crate) native: bool,
}

impl Index {
    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Where the record of `run_id` is, and its summary.
    pub(crate) fn get(&self, run_id: &str) -> Option<(&Loc, &TraceSummary)> {
        Some((self.by_id.get(run_id)?, self.summaries.get(run_id)?))
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
        self.live_bytes += loc.len;
        self.by_id.insert(summary.run_id.clone(), loc);
        self.summaries.insert(summary);
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
        self.summaries.remove(run_id);
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

    /// The summaries of the live records, which answer `list`, `query`, `count` and
    /// `stats`.
    pub(crate) fn summaries(&self) -> &SummaryIndex {
        &self.summaries
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use trace_store_core::{Timestamp, Trace, TraceFilter};

    fn add(index: &mut Index, run_id: &str, micros: i64, user: Value) {
        let summary = TraceSummary::from(
            &Trace::new(run_id)
                .with_created_at(Timestamp::from_micros(micros).unwrap())
                .with_metadata("user", user),
        );
        let loc = Loc {
            offset: micros as u64 * 100,
            len: 10,
            trace_offset: micros as u64 * 100 + 5,
            trace_len: 4,
        };
        index.save(summary, loc);
    }

    fn ids(index: &Index, filter: &TraceFilter) -> Vec<String> {
        let page = index.summaries().query(filter).unwrap();
        page.into_iter().map(|s| s.run_id).collect()
    }

    #[test]
    fn upserts_and_deletes_keep_summaries_and_bytes_right() {
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
        assert!(ids(&index, &TraceFilter::new()).is_empty());
    }
}
