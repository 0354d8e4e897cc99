//! The open spans' states, by span id, in the layer rather than in the registry's
//! extensions.
//!
//! Reaching a span's extensions costs a registry lookup (two atomic read-modify-writes
//! on the span's slot), a lock on the extensions, a map lookup by type, and a heap
//! allocation to insert; a span that records two fields goes through that four times.
//! Here it is one lock of an uncontended shard and a map lookup, the state lives in the
//! map (no allocation per span once the map has grown), and a new span finds its
//! parent's state without looking the new span up in the registry. `tracing` keeps a
//! span's id unique while the span is open, and the layer removes the state when the
//! span closes, before the registry may hand the id out again.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

use parking_lot::{Mutex, MutexGuard};

use super::SpanState;

/// Enough shards that threads recording at once rarely meet on one.
const SHARDS: usize = 64;

/// Spreads span ids (small slot numbers) over the whole hash, whose top bits the map
/// uses to tell entries apart.
#[derive(Default)]
pub(super) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.write_u64(self.0.rotate_left(8) ^ u64::from(*byte));
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

pub(super) type Shard = HashMap<u64, SpanState, BuildHasherDefault<IdHasher>>;

pub(super) struct SpanTable {
    shards: Box<[Mutex<Shard>]>,
}

impl SpanTable {
    pub(super) fn new() -> SpanTable {
        SpanTable {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    /// The shard holding span `id`; hold it only while reading or changing that span
    /// (never two shards at once, so no lock order to keep).
    pub(super) fn shard(&self, id: u64) -> MutexGuard<'_, Shard> {
        // Ids are registry slot numbers: their low bits differ from span to span.
        self.shards[(id as usize) % SHARDS].lock()
    }
}

impl fmt::Debug for SpanTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let open: usize = self.shards.iter().map(|shard| shard.lock().len()).sum();
        f.debug_struct("SpanTable").field("open", &open).finish()
    }
}

thread_local! {
    /// This thread runs user code (a field value's `Debug`) under a shard's lock.
    static IN_USER_CODE: Cell<bool> = const { Cell::new(false) };
}

/// Runs `user_code` while a shard's lock is held. `Span::record` reaches the layer
/// without marking the dispatcher busy (as creating a span or an event does), so a
/// `Debug` that logs would call back into the layer and wait for that very lock;
/// callbacks made meanwhile see [`in_user_code`] and record nothing instead.
pub(super) fn run_user_code<R>(user_code: impl FnOnce() -> R) -> R {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            IN_USER_CODE.set(false);
        }
    }
    IN_USER_CODE.set(true);
    let _reset = Reset;
    user_code()
}

/// Whether this callback comes from user code run by [`run_user_code`].
pub(super) fn in_user_code() -> bool {
    IN_USER_CODE.get()
}
