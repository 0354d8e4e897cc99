//! The index's access paths: sets of slots in list order (the whole list order, and
//! one per metadata posting) and the run_id table.
//!
//! Both hold slots, not keys, wherever they can: a million traces then cost a few bytes
//! each here, a snapshot loads into them without building a tree, and filing a trace
//! touches no reference count.

use std::collections::BTreeMap;
use std::collections::btree_map;
use std::hash::BuildHasher;
use std::ops::Bound;
use std::sync::Arc;

use hashbrown::HashTable;
use trace_store_core::Timestamp;

use crate::index::{Entry, Key, Slot};

/// Below this many slots a set stays a vector whatever is inserted or removed: moving
/// a few KB costs less than a tree.
const SMALL: usize = 1024;

/// The list-order key of the entry in `slot`, borrowed. Every slot in a path has an
/// entry; a missing one (never expected) sorts first rather than panicking.
fn key_at(entries: &[Option<Entry>], slot: Slot) -> (Timestamp, &str) {
    entries
        .get(slot as usize)
        .and_then(Option::as_ref)
        .map_or((Timestamp::MIN, ""), |entry| {
            (entry.created_at, &*entry.run_id)
        })
}

fn borrowed(key: &Key) -> (Timestamp, &str) {
    (key.0, &*key.1)
}

/// Slots in ascending list order.
///
/// A vector while it can be one: appends in list order (a trace newer than every other,
/// which is how traces usually arrive; a snapshot read back; a file written in time
/// order) push onto it, and small sets take any change in place. The first insert out
/// of order or removal from the middle of a large set turns it into a tree, for good.
#[derive(Debug)]
pub(crate) enum Ordered {
    Sorted {
        slots: Vec<Slot>,
        /// The time of the last slot (`Timestamp::MIN` when empty): an append of a newer
        /// trace, the common case, is decided without looking up any entry.
        newest: Timestamp,
    },
    Tree(BTreeMap<Key, Slot>),
}

impl Default for Ordered {
    fn default() -> Self {
        Ordered::Sorted {
            slots: Vec::new(),
            newest: Timestamp::MIN,
        }
    }
}

impl Ordered {
    /// A vector of `slots`, already in ascending list order.
    pub(crate) fn sorted(slots: Vec<Slot>, entries: &[Option<Entry>]) -> Ordered {
        let newest = slots
            .last()
            .map_or(Timestamp::MIN, |&last| key_at(entries, last).0);
        Ordered::Sorted { slots, newest }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Ordered::Sorted { slots, .. } => slots.len(),
            Ordered::Tree(tree) => tree.len(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Files `slot` under `key`; `entries` holds every slot already filed here.
    pub(crate) fn insert(&mut self, key: &Key, slot: Slot, entries: &[Option<Entry>]) {
        if let Ordered::Sorted { slots, newest } = self {
            let new = borrowed(key);
            let after_last = match slots.last() {
                None => true,
                Some(_) if new.0 > *newest => true,
                Some(&last) => key_at(entries, last) < new,
            };
            if after_last {
                *newest = new.0;
                return slots.push(slot);
            }
            if slots.len() < SMALL {
                let at = slots.partition_point(|&s| key_at(entries, s) < new);
                return slots.insert(at, slot);
            }
            self.grow(entries);
        }
        if let Ordered::Tree(tree) = self {
            tree.insert(key.clone(), slot);
        }
    }

    /// Removes `slot`, filed under `key`; `entries` still holds every slot filed here,
    /// `slot` included.
    pub(crate) fn remove(&mut self, key: &Key, slot: Slot, entries: &[Option<Entry>]) {
        if let Ordered::Sorted { slots, newest } = self {
            if slots.last() == Some(&slot) {
                slots.pop();
                *newest = slots
                    .last()
                    .map_or(Timestamp::MIN, |&last| key_at(entries, last).0);
                return;
            }
            if slots.len() < SMALL {
                let at = slots.partition_point(|&s| key_at(entries, s) < borrowed(key));
                if slots.get(at) == Some(&slot) {
                    slots.remove(at);
                }
                return;
            }
            self.grow(entries);
        }
        if let Ordered::Tree(tree) = self {
            tree.remove(key);
        }
    }

    /// Turns the vector into a tree.
    fn grow(&mut self, entries: &[Option<Entry>]) {
        if let Ordered::Sorted { slots, .. } = self {
            let tree = slots
                .iter()
                .filter_map(|&slot| {
                    let entry = entries.get(slot as usize)?.as_ref()?;
                    Some(((entry.created_at, Arc::clone(&entry.run_id)), slot))
                })
                .collect();
            *self = Ordered::Tree(tree);
        }
    }

    /// The slots in `range`, newest first.
    pub(crate) fn range_rev<'a>(
        &'a self,
        range: &(Bound<Key>, Bound<Key>),
        entries: &[Option<Entry>],
    ) -> RangeRev<'a> {
        match self {
            Ordered::Tree(tree) => RangeRev::Tree(tree.range(range.clone()).rev()),
            Ordered::Sorted { slots, .. } => {
                let before = |bound: &Key, inclusive: bool| {
                    let bound = borrowed(bound);
                    slots.partition_point(|&s| {
                        let key = key_at(entries, s);
                        if inclusive { key < bound } else { key <= bound }
                    })
                };
                let from = match &range.0 {
                    Bound::Unbounded => 0,
                    Bound::Included(key) => before(key, true),
                    Bound::Excluded(key) => before(key, false),
                };
                let to = match &range.1 {
                    Bound::Unbounded => slots.len(),
                    Bound::Included(key) => before(key, false),
                    Bound::Excluded(key) => before(key, true),
                };
                RangeRev::Sorted(slots[from..to.max(from)].iter().rev())
            }
        }
    }

    /// Every slot, in ascending list order.
    pub(crate) fn ascending(&self) -> Box<dyn Iterator<Item = Slot> + '_> {
        match self {
            Ordered::Sorted { slots, .. } => Box::new(slots.iter().copied()),
            Ordered::Tree(tree) => Box::new(tree.values().copied()),
        }
    }
}

/// The slots of a range of an [`Ordered`], newest first.
#[derive(Debug)]
pub(crate) enum RangeRev<'a> {
    Sorted(std::iter::Rev<std::slice::Iter<'a, Slot>>),
    Tree(std::iter::Rev<btree_map::Range<'a, Key, Slot>>),
}

impl Iterator for RangeRev<'_> {
    type Item = Slot;

    fn next(&mut self) -> Option<Slot> {
        match self {
            RangeRev::Sorted(slots) => slots.next().copied(),
            RangeRev::Tree(range) => range.next().map(|(_, &slot)| slot),
        }
    }
}

/// run_id → slot. The table holds slots only and reads run_ids from the entries, so
/// filing a trace copies no key and a million cost about five bytes each.
#[derive(Debug, Default)]
pub(crate) struct Ids {
    table: HashTable<Slot>,
    /// foldhash, seeded at random per table.
    hasher: foldhash::fast::RandomState,
}

fn run_id_at(entries: &[Option<Entry>], slot: Slot) -> Option<&str> {
    Some(&*entries.get(slot as usize)?.as_ref()?.run_id)
}

impl Ids {
    pub(crate) fn with_capacity(capacity: usize) -> Ids {
        Ids {
            table: HashTable::with_capacity(capacity),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    pub(crate) fn get(&self, run_id: &str, entries: &[Option<Entry>]) -> Option<Slot> {
        let hash = self.hasher.hash_one(run_id);
        self.table
            .find(hash, |&slot| run_id_at(entries, slot) == Some(run_id))
            .copied()
    }

    /// Files `slot`, whose entry is in `entries` (as is every slot filed before it);
    /// false if its run_id is filed already.
    pub(crate) fn insert(&mut self, slot: Slot, entries: &[Option<Entry>]) -> bool {
        let Some(run_id) = run_id_at(entries, slot) else {
            return false;
        };
        let hasher = &self.hasher;
        let hash = hasher.hash_one(run_id);
        let found = self
            .table
            .find(hash, |&other| run_id_at(entries, other) == Some(run_id));
        if found.is_some() {
            return false;
        }
        self.table.insert_unique(hash, slot, |&other| {
            hasher.hash_one(run_id_at(entries, other).unwrap_or_default())
        });
        true
    }

    /// Files `slot`, whose run_id the caller knows is not filed (it was just removed):
    /// one probe of the table instead of two.
    pub(crate) fn insert_new(&mut self, slot: Slot, entries: &[Option<Entry>]) {
        let Some(run_id) = run_id_at(entries, slot) else {
            return;
        };
        let hasher = &self.hasher;
        self.table
            .insert_unique(hasher.hash_one(run_id), slot, |&other| {
                hasher.hash_one(run_id_at(entries, other).unwrap_or_default())
            });
    }

    /// Unfiles `run_id`, whose entry is still in `entries`, and gives its slot.
    pub(crate) fn remove(&mut self, run_id: &str, entries: &[Option<Entry>]) -> Option<Slot> {
        let hash = self.hasher.hash_one(run_id);
        let found = self
            .table
            .find_entry(hash, |&slot| run_id_at(entries, slot) == Some(run_id));
        found.ok().map(|entry| entry.remove().0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::Loc;
    use crate::intern::NONE;
    use trace_store_core::Status;

    fn entry(run_id: &str, micros: i64) -> Option<Entry> {
        Some(Entry {
            run_id: Arc::from(run_id),
            loc: Loc {
                offset: 0,
                len: 1,
                trace_offset: 0,
                trace_len: 1,
            },
            created_at: Timestamp::from_micros(micros).ok()?,
            name: NONE,
            session: NONE,
            parent: NONE,
            status: Status::Ok,
            steps: 0,
            total_ms: 0.0,
            error_count: 0,
            failed_steps: 0,
            input_tokens: 0,
            output_tokens: 0,
            cost_nano_usd: 0,
            models: Box::new([]),
            metadata: Box::new([]),
            scores: Box::new([]),
        })
    }

    /// Every mix of in-order and out-of-order inserts and removals, on a set small
    /// enough to stay a vector and one large enough to become a tree, against a
    /// `BTreeMap`, with ranges read back both ways.
    #[test]
    fn sets_answer_like_a_tree_whatever_their_form() {
        for n in [300usize, SMALL + 300] {
            let mut entries: Vec<Option<Entry>> = Vec::new();
            let mut set = Ordered::default();
            let mut model: BTreeMap<Key, Slot> = BTreeMap::new();
            // Times ascending with ties, then a few older ones, then removals.
            let mut micros: Vec<i64> = (0..n as i64).map(|i| i / 3).collect();
            micros.extend([5, 0, 1_000_000, 7]);
            for (i, &t) in micros.iter().enumerate() {
                let slot = entries.len() as Slot;
                entries.push(entry(&format!("r{:05}", (i * 7919) % 100_000), t));
                let key = entries[slot as usize].as_ref().map(Entry::key).unwrap();
                set.insert(&key, slot, &entries);
                model.insert(key, slot);
            }
            assert!(matches!(set, Ordered::Sorted { .. }) == (n < SMALL));
            // The newest (1_000_000 µs) goes too: the next newest is then the last.
            for slot in [3u32, (n + 2) as u32, (n + 3) as u32, 0, 100, 101] {
                let key = entries[slot as usize].as_ref().map(Entry::key).unwrap();
                set.remove(&key, slot, &entries);
                model.remove(&key);
                entries[slot as usize] = None;
            }
            for t in [n as i64, 1] {
                let slot = entries.len() as Slot;
                entries.push(entry(&format!("late{t}"), t));
                let key = entries[slot as usize].as_ref().map(Entry::key).unwrap();
                set.insert(&key, slot, &entries);
                model.insert(key, slot);
            }
            assert_eq!(set.len(), model.len());
            assert_eq!(
                set.ascending().collect::<Vec<_>>(),
                model.values().copied().collect::<Vec<_>>()
            );
            let at =
                |t: i64, id: &str| -> Key { (Timestamp::from_micros(t).unwrap(), Arc::from(id)) };
            let ranges = [
                (Bound::Unbounded, Bound::Unbounded),
                (Bound::Included(at(10, "")), Bound::Excluded(at(20, ""))),
                (Bound::Included(at(10, "r5")), Bound::Excluded(at(10, "r9"))),
                (Bound::Unbounded, Bound::Excluded(at(0, "r1"))),
                (Bound::Included(at(99, "")), Bound::Unbounded),
            ];
            for range in ranges {
                let expected: Vec<Slot> =
                    model.range(range.clone()).rev().map(|(_, &s)| s).collect();
                let got: Vec<Slot> = set.range_rev(&range, &entries).collect();
                assert_eq!(got, expected, "{range:?}");
            }
        }
    }

    #[test]
    fn ids_find_insert_and_remove_by_the_entries_run_ids() {
        let mut entries = Vec::new();
        let mut ids = Ids::default();
        for i in 0..1000 {
            entries.push(entry(&format!("run-{i}"), i));
            assert!(ids.insert(i as Slot, &entries));
        }
        assert!(!ids.insert(7, &entries), "a run_id filed twice");
        assert_eq!(ids.get("run-42", &entries), Some(42));
        assert_eq!(ids.remove("run-42", &entries), Some(42));
        assert_eq!((ids.get("run-42", &entries), ids.len()), (None, 999));
        assert_eq!(ids.get("run-1000", &entries), None);
    }
}
