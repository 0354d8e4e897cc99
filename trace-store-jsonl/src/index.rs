//! The in-memory index: where each live record is in the file and a compact form of its
//! summary, in list order and by metadata value, so `list`, `query` and `load` never
//! read the file to find things.
//!
//! Summaries are held compactly (strings and metadata values interned per store, no map
//! per summary) and rebuilt as [`TraceSummary`] values only for answers. Which summaries
//! match is decided by core's [`TraceFilter::matches`], on a summary filled with the
//! fields the filter can look at; the index only chooses the access path (a range of
//! list order, or the smallest metadata posting), which yields a superset in list order.

use std::sync::Arc;

use serde_json::Value;
use trace_store_core::{
    ModelUsage, Status, Timestamp, Trace, TraceFilter, TraceStats, TraceSummary,
};

use crate::intern::{Map, NONE, Sym, Table, Values, canonical_hash};
use paths::{Ids, Ordered};

pub(crate) mod paths;

/// Where a live record is in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Loc {
    /// First byte of the record.
    pub(crate) offset: u64,
    /// Record length including its newline.
    pub(crate) len: u64,
    /// The trace body, as an absolute offset and a length.
    pub(crate) trace_offset: u64,
    pub(crate) trace_len: u64,
}

/// A position in list order: `(created_at, run_id)`, ascending.
pub(crate) type Key = (Timestamp, Arc<str>);
/// The position of an entry in [`Index::entries`].
pub(crate) type Slot = u32;

/// A summary, compactly, and where its record is.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) run_id: Arc<str>,
    pub(crate) loc: Loc,
    pub(crate) created_at: Timestamp,
    pub(crate) name: Sym,
    pub(crate) session: Sym,
    pub(crate) parent: Sym,
    pub(crate) status: Status,
    pub(crate) steps: usize,
    pub(crate) total_ms: f64,
    pub(crate) error_count: u64,
    pub(crate) failed_steps: u64,
    pub(crate) input_tokens: u64,
    pub(crate) output_tokens: u64,
    pub(crate) cost_nano_usd: i64,
    /// Sorted by model name, as in the summary.
    pub(crate) models: Box<[(Sym, ModelUsage)]>,
    /// `(key, value)`, sorted by key, as in the summary.
    pub(crate) metadata: Box<[(Sym, Sym)]>,
    /// Sorted by score name, as in the summary.
    pub(crate) scores: Box<[(Sym, f64)]>,
}

impl Entry {
    pub(crate) fn key(&self) -> Key {
        (self.created_at, Arc::clone(&self.run_id))
    }
}

#[derive(Debug)]
pub(crate) struct Index {
    pub(crate) entries: Vec<Option<Entry>>,
    pub(crate) free: Vec<Slot>,
    pub(crate) by_id: Ids,
    pub(crate) order: Ordered,
    /// `(metadata key, canonical hash of the value)` → traces with that value.
    pub(crate) postings: Map<(Sym, u64), Ordered>,
    pub(crate) strings: Table<str>,
    pub(crate) values: Values,
    /// A summary with every field at its default, which answers start from.
    template: TraceSummary,
    /// Bytes of live records; everything else in the file is dead.
    pub(crate) live_bytes: u64,
    /// Superseded and deleted saves, and tombstones: what compaction drops.
    pub(crate) dead_records: u64,
    /// Whether any trace-store record was ever read from or written to this file.
    pub(crate) native: bool,
}

impl Default for Index {
    fn default() -> Self {
        Index {
            entries: Vec::new(),
            free: Vec::new(),
            by_id: Ids::default(),
            order: Ordered::default(),
            postings: Map::default(),
            strings: Table::default(),
            values: Values::default(),
            template: TraceSummary::from(&Trace::new(String::new())),
            live_bytes: 0,
            dead_records: 0,
            native: false,
        }
    }
}

/// What `load` checks a decoded trace against: the members of the summary copied from
/// the trace, taken from the index under its lock and compared outside it.
#[derive(Debug)]
pub(crate) struct Expected {
    run_id: Arc<str>,
    created_at: Timestamp,
    name: Option<Arc<str>>,
    session: Option<Arc<str>>,
    parent: Option<Arc<str>>,
    status: Status,
    steps: usize,
    metadata: Vec<(Arc<str>, Arc<Value>)>,
}

impl Expected {
    pub(crate) fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Which member of the summary disagrees with `trace`, if any.
    ///
    /// `list` and `query` answer from the summary members and `load` from the trace, so
    /// a line edited by hand on one side only would give answers that contradict each
    /// other. Only members copied verbatim from the trace are compared: derived ones
    /// (totals) may be computed differently by another version of the library.
    pub(crate) fn disagreement(&self, trace: &Trace) -> Option<&'static str> {
        let same =
            |ours: &Option<Arc<str>>, theirs: &Option<String>| ours.as_deref() == theirs.as_deref();
        if *self.run_id != trace.run_id {
            Some("run_id")
        } else if self.created_at != trace.created_at {
            Some("created_at")
        } else if !same(&self.name, &trace.name) {
            Some("name")
        } else if !same(&self.session, &trace.session_id) {
            Some("session_id")
        } else if !same(&self.parent, &trace.parent_run_id) {
            Some("parent_run_id")
        } else if self.status != trace.status {
            Some("status")
        } else if self.steps != trace.steps.len() {
            Some("steps")
        } else if self.metadata.len() != trace.metadata.len()
            || !self
                .metadata
                .iter()
                .zip(&trace.metadata)
                .all(|((k, v), (key, value))| **k == **key && **v == *value)
        {
            Some("metadata")
        } else {
            None
        }
    }
}

impl Index {
    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    pub(crate) fn contains(&self, run_id: &str) -> bool {
        self.by_id.get(run_id, &self.entries).is_some()
    }

    pub(crate) fn entry(&self, run_id: &str) -> Option<&Entry> {
        let slot = self.by_id.get(run_id, &self.entries)?;
        self.slot(slot)
    }

    pub(crate) fn slot(&self, slot: Slot) -> Option<&Entry> {
        self.entries.get(slot as usize)?.as_ref()
    }

    /// Records a save line; an earlier save of the same run_id becomes dead.
    pub(crate) fn save(&mut self, summary: TraceSummary, loc: Loc) {
        self.native = true;
        if self.unlink(&summary.run_id) {
            self.dead_records += 1;
        }
        self.live_bytes += loc.len;
        let entry = self.compact(summary, loc);
        self.link(entry);
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

    fn compact(&mut self, summary: TraceSummary, loc: Loc) -> Entry {
        let strings = &mut self.strings;
        let mut sym = |s: &str| strings.intern_str(s);
        let models = summary
            .models
            .iter()
            .map(|(model, usage)| (sym(model), *usage))
            .collect();
        let scores = summary
            .scores
            .iter()
            .map(|(name, value)| (sym(name), *value))
            .collect();
        let name = summary.name.as_deref().map_or(NONE, &mut sym);
        let session = summary.session_id.as_deref().map_or(NONE, &mut sym);
        let parent = summary.parent_run_id.as_deref().map_or(NONE, &mut sym);
        let mut metadata = Vec::with_capacity(summary.metadata.len());
        for (key, value) in &summary.metadata {
            metadata.push((sym(key), self.values.intern(value)));
        }
        let metadata = metadata.into_boxed_slice();
        Entry {
            run_id: Arc::from(summary.run_id),
            loc,
            created_at: summary.created_at,
            name,
            session,
            parent,
            status: summary.status,
            steps: summary.steps,
            total_ms: summary.total_ms,
            error_count: summary.error_count,
            failed_steps: summary.failed_steps,
            input_tokens: summary.input_tokens,
            output_tokens: summary.output_tokens,
            cost_nano_usd: summary.cost_nano_usd,
            models,
            metadata,
            scores,
        }
    }

    /// Files `entry` in every access path (its symbols are already counted).
    fn link(&mut self, entry: Entry) {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.entries.push(None);
                (self.entries.len() - 1) as Slot
            }
        };
        let key = entry.key();
        self.entries[slot as usize] = Some(entry);
        let Some(entry) = self.entries[slot as usize].as_ref() else {
            return;
        };
        for &(name, value) in &entry.metadata {
            let posting = (name, self.values.posting_key(value));
            self.postings
                .entry(posting)
                .or_default()
                .insert(&key, slot, &self.entries);
        }
        self.order.insert(&key, slot, &self.entries);
        // `save` unlinked this run_id just before.
        self.by_id.insert_new(slot, &self.entries);
    }

    fn unlink(&mut self, run_id: &str) -> bool {
        let Some(slot) = self.by_id.remove(run_id, &self.entries) else {
            return false;
        };
        let Some(entry) = self.entries.get(slot as usize).and_then(Option::as_ref) else {
            return false;
        };
        // Taken out of the sets while its entry is still there to compare with.
        let key = entry.key();
        self.order.remove(&key, slot, &self.entries);
        for &(name, value) in &entry.metadata {
            let posting = (name, self.values.posting_key(value));
            if let Some(set) = self.postings.get_mut(&posting) {
                set.remove(&key, slot, &self.entries);
                if set.is_empty() {
                    self.postings.remove(&posting);
                }
            }
        }
        let Some(entry) = self.entries.get_mut(slot as usize).and_then(Option::take) else {
            return false;
        };
        self.free.push(slot);
        self.live_bytes -= entry.loc.len;
        for &(name, value) in &entry.metadata {
            self.strings.release(name);
            self.values.release(value);
        }
        for sym in [entry.name, entry.session, entry.parent] {
            if sym != NONE {
                self.strings.release(sym);
            }
        }
        for &(sym, _) in entry.models.iter() {
            self.strings.release(sym);
        }
        for &(sym, _) in entry.scores.iter() {
            self.strings.release(sym);
        }
        true
    }

    /// Live records in file order: what compaction copies.
    pub(crate) fn live_in_file_order(&self) -> Vec<(Arc<str>, Loc)> {
        let mut live: Vec<(Arc<str>, Loc)> = self
            .entries
            .iter()
            .flatten()
            .map(|entry| (Arc::clone(&entry.run_id), entry.loc))
            .collect();
        live.sort_unstable_by_key(|(_, loc)| loc.offset);
        live
    }

    /// Moves a record to `offset` (after compaction).
    pub(crate) fn relocate(&mut self, run_id: &str, offset: u64) {
        let Some(slot) = self.by_id.get(run_id, &self.entries) else {
            return;
        };
        if let Some(Some(entry)) = self.entries.get_mut(slot as usize) {
            let loc = &mut entry.loc;
            loc.trace_offset = offset + (loc.trace_offset - loc.offset);
            loc.offset = offset;
        }
    }

    fn string(&self, sym: Sym) -> Option<&Arc<str>> {
        if sym == NONE {
            return None;
        }
        self.strings.get(sym)
    }

    /// The whole summary of `entry`, as [`TraceSummary::from`] made it.
    pub(crate) fn summary(&self, entry: &Entry) -> TraceSummary {
        let text = |sym: Sym| self.string(sym).map_or_else(String::new, |s| s.to_string());
        let optional = |sym: Sym| self.string(sym).map(|s| s.to_string());
        let mut summary = self.template.clone();
        summary.run_id = entry.run_id.to_string();
        summary.name = optional(entry.name);
        summary.session_id = optional(entry.session);
        summary.parent_run_id = optional(entry.parent);
        summary.status = entry.status;
        summary.created_at = entry.created_at;
        summary.steps = entry.steps;
        summary.total_ms = entry.total_ms;
        summary.error_count = entry.error_count;
        summary.failed_steps = entry.failed_steps;
        summary.input_tokens = entry.input_tokens;
        summary.output_tokens = entry.output_tokens;
        summary.cost_nano_usd = entry.cost_nano_usd;
        summary.models = entry
            .models
            .iter()
            .map(|(model, usage)| (text(*model), *usage))
            .collect();
        summary.metadata = entry
            .metadata
            .iter()
            .filter_map(|(key, value)| Some((text(*key), (**self.values.get(*value)?).clone())))
            .collect();
        summary.scores = entry
            .scores
            .iter()
            .map(|(name, value)| (text(*name), *value))
            .collect();
        summary
    }

    /// What a decoded body of `entry` is checked against.
    pub(crate) fn expected(&self, entry: &Entry) -> Expected {
        Expected {
            run_id: Arc::clone(&entry.run_id),
            created_at: entry.created_at,
            name: self.string(entry.name).cloned(),
            session: self.string(entry.session).cloned(),
            parent: self.string(entry.parent).cloned(),
            status: entry.status,
            steps: entry.steps,
            metadata: entry
                .metadata
                .iter()
                .filter_map(|&(key, value)| {
                    Some((
                        Arc::clone(self.string(key)?),
                        Arc::clone(self.values.get(value)?),
                    ))
                })
                .collect(),
        }
    }

    /// Fills `scratch` with what `filter` can look at in `entry`, then asks core.
    fn matches(&self, entry: &Entry, filter: &TraceFilter, scratch: &mut TraceSummary) -> bool {
        scratch.run_id.clear();
        scratch.run_id.push_str(&entry.run_id);
        scratch.created_at = entry.created_at;
        scratch.steps = entry.steps;
        scratch.status = entry.status;
        self.fill(&mut scratch.name, filter.name.is_some(), entry.name);
        self.fill(
            &mut scratch.session_id,
            filter.session_id.is_some(),
            entry.session,
        );
        self.fill(
            &mut scratch.parent_run_id,
            filter.parent_run_id.is_some(),
            entry.parent,
        );
        scratch.scores.clear();
        if let Some(range) = &filter.score
            && let Some(&(_, value)) = entry
                .scores
                .iter()
                .find(|(name, _)| self.string(*name).is_some_and(|n| **n == *range.name))
        {
            scratch.scores.insert(range.name.clone(), value);
        }
        scratch.metadata.clear();
        for key in filter.metadata_match.keys() {
            let found = entry.metadata.iter().find_map(|&(k, v)| {
                (self.string(k).is_some_and(|k| **k == **key)).then(|| self.values.get(v))?
            });
            if let Some(value) = found {
                scratch.metadata.insert(key.clone(), (**value).clone());
            }
        }
        filter.matches(scratch)
    }

    fn fill(&self, out: &mut Option<String>, wanted: bool, sym: Sym) {
        match (wanted, self.string(sym)) {
            (true, Some(value)) => {
                let out = out.get_or_insert_with(String::new);
                out.clear();
                out.push_str(value);
            }
            _ => *out = None,
        }
    }

    /// Calls `visit` on each entry `filter` selects, in list order, with the cursor,
    /// offset and limit applied (not the text query: the index holds no text).
    pub(crate) fn for_each_match(&self, filter: &TraceFilter, mut visit: impl FnMut(&Entry)) {
        let mut scratch = self.template.clone();
        let mut to_skip = filter.offset;
        let mut room = filter.limit.unwrap_or(usize::MAX);
        let mut each = |slot: Slot| {
            if room == 0 {
                return false;
            }
            let Some(entry) = self.slot(slot) else {
                return true;
            };
            if self.matches(entry, filter, &mut scratch) {
                if to_skip > 0 {
                    to_skip -= 1;
                } else {
                    room -= 1;
                    visit(entry);
                }
            }
            true
        };
        let Some(range) = filter.order_range() else {
            return;
        };
        match self.smallest_posting(filter) {
            Posting::Everything => {
                for slot in self.order.range_rev(&range, &self.entries) {
                    if !each(slot) {
                        break;
                    }
                }
            }
            Posting::Set(set) => {
                for slot in set.range_rev(&range, &self.entries) {
                    if !each(slot) {
                        break;
                    }
                }
            }
            Posting::Nothing => {}
        }
    }

    fn smallest_posting(&self, filter: &TraceFilter) -> Posting<'_> {
        let mut smallest = Posting::Everything;
        for (key, value) in &filter.metadata_match {
            let set = self
                .strings
                .find(key.as_str())
                .and_then(|key| self.postings.get(&(key, canonical_hash(value))));
            match (set, &smallest) {
                (None, _) => return Posting::Nothing,
                (Some(set), Posting::Set(best)) if set.len() >= best.len() => {}
                (Some(set), _) => smallest = Posting::Set(set),
            }
        }
        smallest
    }

    /// The summaries `query(filter)` returns, text query aside.
    pub(crate) fn query(&self, filter: &TraceFilter) -> Vec<TraceSummary> {
        let mut page = Vec::new();
        self.for_each_match(filter, |entry| page.push(self.summary(entry)));
        page
    }

    pub(crate) fn count(&self, filter: &TraceFilter) -> u64 {
        let mut count = 0;
        self.for_each_match(filter, |_| count += 1);
        count
    }

    pub(crate) fn stats(&self, filter: &TraceFilter) -> TraceStats {
        let mut stats = TraceStats::default();
        self.for_each_match(filter, |entry| stats.add(&self.summary(entry)));
        stats
    }
}

enum Posting<'a> {
    /// No metadata criterion: all of list order.
    Everything,
    Set(&'a Ordered),
    /// A metadata criterion no trace meets.
    Nothing,
}

#[cfg(test)]
#[path = "index_tests.rs"]
mod tests;
