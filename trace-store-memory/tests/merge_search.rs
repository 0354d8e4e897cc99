//! Merge, text search, grouped stats and bulk delete beyond the conformance suite:
//! what they do to LRU recency and to the cached searchable text.

use std::sync::Arc;

use trace_store_core::{GroupBy, Step, Timestamp, Trace, TraceFilter, TraceStore, TraceStoreExt};
use trace_store_memory::MemoryStore;

fn trace(run_id: &str, micros: i64, text: &str) -> Trace {
    Trace::new(run_id)
        .with_created_at(Timestamp::from_micros(micros).expect("valid"))
        .with_step(Step::tool_call("search").with_input(text))
}

fn ids(store: &MemoryStore, filter: &TraceFilter) -> Vec<String> {
    let page = store.query(filter).expect("query");
    page.into_iter().map(|s| s.run_id).collect()
}

#[test]
fn a_resave_or_merge_replaces_the_searchable_text() {
    let store = MemoryStore::unbounded();
    store.save(&trace("a", 1, "first words")).expect("save");
    let first = TraceFilter::new().with_text("FIRST");
    assert_eq!(ids(&store, &first), ["a"], "builds and caches the text");
    store.save(&trace("a", 1, "second words")).expect("re-save");
    assert!(
        ids(&store, &first).is_empty(),
        "a stale cached text matched"
    );
    assert_eq!(ids(&store, &TraceFilter::new().with_text("second")), ["a"]);
    store
        .merge(&Trace::new("a").with_step(Step::llm_call("Claude-Opus")))
        .expect("merge");
    assert_eq!(
        ids(&store, &TraceFilter::new().with_text("claude-opus")),
        ["a"]
    );
    assert_eq!(ids(&store, &TraceFilter::new().with_text("second")), ["a"]);
}

#[test]
fn text_queries_grouped_stats_and_bulk_deletes_do_not_refresh_recency() {
    let store = MemoryStore::new(2).expect("valid");
    store.save(&trace("old", 1, "needle")).expect("save");
    store.save(&trace("new", 2, "hay")).expect("save");
    let needle = TraceFilter::new().with_text("needle");
    assert_eq!(store.count(&needle).expect("count"), 1);
    assert_eq!(store.stats(&needle).expect("stats").count, 1);
    let groups = store.stats_by(&needle, GroupBy::Day).expect("stats_by");
    assert_eq!(groups.len(), 1);
    assert_eq!(
        store
            .delete_where(&TraceFilter::new().with_text("nothing"))
            .expect("delete"),
        0
    );
    // "old" is still the least recently used: the next save evicts it.
    store.save(&trace("third", 3, "x")).expect("save");
    assert_eq!(ids(&store, &TraceFilter::new()), ["third", "new"]);
}

#[test]
fn merge_refreshes_recency_like_save() {
    let store = MemoryStore::new(2).expect("valid");
    store.save(&trace("a", 1, "x")).expect("save");
    store.save(&trace("b", 2, "x")).expect("save");
    store
        .merge(&Trace::new("a").with_created_at(Timestamp::from_micros(1).expect("valid")))
        .expect("merge");
    store.save(&trace("c", 3, "x")).expect("save");
    assert_eq!(
        ids(&store, &TraceFilter::new()),
        ["c", "a"],
        "b was least recently used"
    );
}

#[test]
fn eight_threads_merging_into_one_bounded_store_lose_no_step() {
    let store = Arc::new(MemoryStore::new(4).expect("valid"));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                for i in 0..50 {
                    let step = Step::llm_call("m").with_id(format!("t{t}-{i}"));
                    store
                        .merge(&Trace::new("shared").with_step(step))
                        .expect("merge");
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().expect("thread"));
    let merged = store.load("shared").expect("load");
    assert_eq!(merged.steps.len(), 400, "C12: merges lost steps");
    assert_eq!(store.len(), 1);
}

#[test]
fn delete_where_takes_exactly_one_page() {
    let store = MemoryStore::unbounded();
    for i in 0..10 {
        let text = if i % 2 == 0 { "even needle" } else { "odd" };
        store.save(&trace(&format!("r{i}"), i, text)).expect("save");
    }
    // Newest first, the needles are r8 r6 r4 r2 r0; skip one, take two.
    let page = TraceFilter::new()
        .with_text("needle")
        .with_offset(1)
        .with_limit(2);
    assert_eq!(ids(&store, &page), ["r6", "r4"]);
    assert_eq!(store.delete_where(&page).expect("delete_where"), 2);
    assert_eq!(
        ids(&store, &TraceFilter::new().with_text("needle")),
        ["r8", "r2", "r0"]
    );
    let report = store
        .purge(
            &trace_store_core::RetentionPolicy::new().with_max_count(3),
            Timestamp::from_micros(100).expect("valid"),
        )
        .expect("purge");
    assert_eq!(report.deleted(), 5);
    assert_eq!(ids(&store, &TraceFilter::new()), ["r9", "r8", "r7"]);
}
