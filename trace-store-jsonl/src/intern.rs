//! Per-store tables of the strings and metadata values summaries repeat (names, models,
//! metadata keys and values, sessions), so a million summaries hold each of them once.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use serde_json::Value;
use trace_store_core::canonical_json;

/// The hash map of the index: foldhash, randomly seeded per map, is built for the short
/// strings and integers of its keys, where the standard SipHash is slow, and a
/// million-entry index is built at every open that has no valid snapshot.
pub(crate) type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A symbol: the position of an entry in a [`Table`].
pub(crate) type Sym = u32;

/// No symbol (an unset optional string).
pub(crate) const NONE: Sym = Sym::MAX;

/// Interned values with reference counts: an entry is freed when the last summary that
/// uses it goes, and its slot is reused, so deleted traces leave nothing behind.
#[derive(Debug)]
pub(crate) struct Table<T: ?Sized> {
    ids: Map<Arc<T>, Sym>,
    slots: Vec<Option<(Arc<T>, u32)>>,
    free: Vec<Sym>,
}

impl<T: ?Sized> Default for Table<T> {
    fn default() -> Self {
        Table {
            ids: Map::default(),
            slots: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T: ?Sized + Hash + Eq> Table<T> {
    /// The symbol of `value`, adding it (made by `make`) if new; counts one more use.
    pub(crate) fn intern<Q>(&mut self, value: &Q, make: impl FnOnce(&Q) -> Arc<T>) -> Sym
    where
        Arc<T>: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        if let Some(&sym) = self.ids.get(value) {
            if let Some((_, uses)) = &mut self.slots[sym as usize] {
                *uses += 1;
            }
            return sym;
        }
        let arc = make(value);
        let sym = match self.free.pop() {
            Some(sym) => {
                self.slots[sym as usize] = Some((Arc::clone(&arc), 1));
                sym
            }
            None => {
                self.slots.push(Some((Arc::clone(&arc), 1)));
                (self.slots.len() - 1) as Sym
            }
        };
        self.ids.insert(arc, sym);
        sym
    }

    /// Counts one use less of `sym`, freeing it after its last.
    pub(crate) fn release(&mut self, sym: Sym) {
        let Some(slot) = self.slots.get_mut(sym as usize) else {
            return;
        };
        if let Some((value, uses)) = slot {
            *uses -= 1;
            if *uses == 0 {
                self.ids.remove(&**value);
                *slot = None;
                self.free.push(sym);
            }
        }
    }

    /// The value of a live symbol.
    pub(crate) fn get(&self, sym: Sym) -> Option<&Arc<T>> {
        self.slots
            .get(sym as usize)
            .and_then(|slot| slot.as_ref())
            .map(|(value, _)| value)
    }

    /// Every slot, free ones as `None`: what a snapshot keeps.
    pub(crate) fn slots(&self) -> impl ExactSizeIterator<Item = Option<&Arc<T>>> {
        self.slots
            .iter()
            .map(|slot| slot.as_ref().map(|(value, _)| value))
    }

    /// A table of these slots with these use counts; slots without uses are freed.
    /// `None` if a value is there twice.
    pub(crate) fn from_slots(slots: Vec<Option<Arc<T>>>, uses: &[u32]) -> Option<Table<T>> {
        let mut table = Table::default();
        table.ids.reserve(slots.len());
        for (sym, (slot, &uses)) in slots.into_iter().zip(uses).enumerate() {
            let sym = sym as Sym;
            match slot {
                Some(value) if uses > 0 => {
                    if table.ids.insert(Arc::clone(&value), sym).is_some() {
                        return None;
                    }
                    table.slots.push(Some((value, uses)));
                }
                _ => {
                    table.slots.push(None);
                    table.free.push(sym);
                }
            }
        }
        Some(table)
    }

    /// The symbol of `value`, if interned.
    pub(crate) fn find<Q>(&self, value: &Q) -> Option<Sym>
    where
        Arc<T>: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        self.ids.get(value).copied()
    }
}

impl Table<str> {
    pub(crate) fn intern_str(&mut self, value: &str) -> Sym {
        self.intern(value, |v: &str| Arc::from(v))
    }
}

/// Metadata values, each with the hash of its canonical JSON, which keys the metadata
/// postings: values equal under core's `json_eq` (`1` and `1.0`) share a posting while
/// each keeps its own spelling.
#[derive(Debug, Default)]
pub(crate) struct Values {
    pub(crate) table: Table<Value>,
    canonical: Vec<u64>,
}

/// The posting key of a metadata value: a hash of its canonical JSON, never 0 (which
/// marks a free slot). A collision only adds candidates, which core's filter rejects.
pub(crate) fn canonical_hash(value: &Value) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    canonical_json(value).hash(&mut hasher);
    hasher.finish() | 1
}

impl Values {
    pub(crate) fn intern(&mut self, value: &Value) -> Sym {
        let sym = self.table.intern(value, |v| Arc::new(v.clone()));
        let at = sym as usize;
        if self.canonical.len() <= at {
            self.canonical.resize(at + 1, 0);
        }
        if self.table.get(sym).is_some_and(|_| self.canonical[at] == 0) {
            self.canonical[at] = canonical_hash(value);
        }
        sym
    }

    /// [`Table::from_slots`], with the posting keys computed again.
    pub(crate) fn from_slots(slots: Vec<Option<Arc<Value>>>, uses: &[u32]) -> Option<Values> {
        let table = Table::from_slots(slots, uses)?;
        let canonical = table
            .slots()
            .map(|slot| slot.map_or(0, |value| canonical_hash(value)))
            .collect();
        Some(Values { table, canonical })
    }

    pub(crate) fn release(&mut self, sym: Sym) {
        self.table.release(sym);
        if self.table.get(sym).is_none()
            && let Some(hash) = self.canonical.get_mut(sym as usize)
        {
            *hash = 0;
        }
    }

    /// The posting key of a live value.
    pub(crate) fn posting_key(&self, sym: Sym) -> u64 {
        self.canonical.get(sym as usize).copied().unwrap_or(0)
    }

    pub(crate) fn get(&self, sym: Sym) -> Option<&Arc<Value>> {
        self.table.get(sym)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn symbols_are_shared_counted_and_reused() {
        let mut table = Table::<str>::default();
        let a = table.intern_str("gpt-4o");
        assert_eq!(table.intern_str("gpt-4o"), a);
        let b = table.intern_str("claude");
        table.release(a);
        assert_eq!(table.get(a).map(|s| &**s), Some("gpt-4o"));
        table.release(a);
        assert_eq!((table.get(a), table.find("gpt-4o")), (None, None));
        assert_eq!(table.intern_str("gemini"), a, "the freed slot is reused");
        assert_eq!(table.find("claude"), Some(b));
    }

    #[test]
    fn equal_values_share_a_posting_key_and_keep_their_spelling() {
        let mut values = Values::default();
        let one = values.intern(&json!(1));
        let one_point_zero = values.intern(&json!(1.0));
        assert_ne!(one, one_point_zero);
        assert_eq!(values.posting_key(one), values.posting_key(one_point_zero));
        assert_eq!(values.posting_key(one), canonical_hash(&json!(1.0)));
        assert_eq!(
            values.get(one_point_zero).map(|v| v.to_string()),
            Some("1.0".into())
        );
        values.release(one);
        assert_eq!(values.posting_key(one), 0);
    }
}
