//! The whole conformance suite, through the public API only.

use trace_store_memory::MemoryStore;

mod unbounded {
    use super::MemoryStore;
    trace_store_conformance::conformance_tests!(MemoryStore::unbounded);
}

mod bounded {
    use super::MemoryStore;
    trace_store_conformance::conformance_tests!(capacity = 1000, || {
        MemoryStore::new(1000).expect("capacity 1000 is valid")
    });
}
