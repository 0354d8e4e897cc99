//! The whole conformance suite, through the public API only, including the sharing (C9)
//! and durability (C10) cases with child processes.

use trace_store_jsonl::JsonlStore;

trace_store_conformance::conformance_tests!(durable, |dir: &std::path::Path| {
    JsonlStore::open(dir.join("traces.jsonl")).expect("open")
});
