//! The whole conformance suite, through the public API only.

use trace_store_sqlite::SqliteStore;

/// A database file per case; the cross-process cases (C9, C10) reopen it from child
/// processes.
mod file {
    use super::SqliteStore;
    trace_store_conformance::conformance_tests!(durable, |dir: &std::path::Path| {
        SqliteStore::open(dir.join("traces.db")).expect("open")
    });
}

/// A private in-memory database per case.
mod in_memory {
    use super::SqliteStore;
    trace_store_conformance::conformance_tests!(|| SqliteStore::in_memory().expect("in_memory"));
}
