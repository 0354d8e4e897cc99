//! The JSONL reader: a store opened on a file of arbitrary bytes.
//!
//! Read-only and read-write opens agree (both refuse the file, or both index the same
//! summaries); `list`, `count`, `query`, `stats`, `stats_by`, `load` of every listed
//! id and text search never panic and fail only with typed bad-data errors; a text
//! query returns exactly the listed traces whose loaded body matches it (the raw-byte
//! prefilter is an optimisation, never a filter of its own); the repairs of a
//! read-write open leave a file that reopens to the same summaries; a compaction keeps
//! them too.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use trace_store_core::{Error, GroupBy, Trace, TraceFilter, TraceStore, TraceSummary};
use trace_store_fuzz::{assert_input_error, check_trace};
use trace_store_jsonl::{JsonlOptions, JsonlStore};

/// Text queries tried on every store: plain ASCII (the prefilter's case), the
/// characters it must not be applied to, and the two non-ASCII letters whose lower
/// case contains ASCII.
const QUERIES: &[&str] = &["E", "\"", "/", "\\u", "\u{130}", "\u{212A}"];

fuzz_target!(|data: &[u8]| {
    // tmpfs when there is one: compaction fsyncs, and a disk would make that the cost
    // of every run.
    let base = Path::new("/dev/shm");
    let dir = if base.is_dir() {
        tempfile::tempdir_in(base)
    } else {
        tempfile::tempdir()
    }
    .expect("a temp dir");
    let path = dir.path().join("traces.jsonl");
    std::fs::write(&path, data).expect("write the input");
    // Odd lengths also run with a tiny maximum record size, so long lines take the
    // streaming path that never holds them.
    let max_record_bytes = if data.len() % 2 == 1 { 64 } else { 1 << 20 };
    let options = JsonlOptions::default()
        .without_auto_compact()
        .with_max_record_bytes(max_record_bytes);

    let read_only = JsonlStore::open_with(&path, options.clone().with_read_only(true));
    let read_only = read_only.map(|store| exercise(&store));
    assert_eq!(
        std::fs::read(&path).expect("read back"),
        data,
        "a read-only open changed the file"
    );

    let store = match JsonlStore::open_with(&path, options.clone()) {
        Ok(store) => store,
        Err(error) => {
            assert_input_error("JsonlStore::open", &error);
            assert!(
                read_only.is_err(),
                "read-only open accepted what read-write refused: {error}"
            );
            assert_eq!(
                std::fs::read(&path).expect("read back"),
                data,
                "a refused file was changed"
            );
            return;
        }
    };
    let listed = list(&store);
    match &read_only {
        Ok(seen) => assert_eq!(seen, &listed, "read-only and read-write opens disagree"),
        Err(error) => panic!("read-write open accepted what read-only refused: {error:?}"),
    }
    let health = store.health().expect("health");
    assert_eq!(health.live_records, listed.len() as u64);
    assert_eq!(
        health.incomplete_tail_bytes, 0,
        "a torn tail survived a read-write open"
    );
    assert_eq!(
        health.unquarantined_lines, 0,
        "damage was not moved out: {:?}",
        health.last_error
    );
    drop(store);

    let reopened = JsonlStore::open_with(&path, options.clone()).expect("a repaired file reopens");
    assert_eq!(
        list(&reopened),
        listed,
        "the repairs changed what the store holds"
    );
    reopened.compact().expect("compact a repaired file");
    assert_eq!(
        exercise(&reopened),
        listed,
        "compaction changed what the store holds"
    );
    drop(reopened);
    let compacted = JsonlStore::open_with(&path, options).expect("a compacted file reopens");
    assert_eq!(
        list(&compacted),
        listed,
        "a compacted file reopens to other traces"
    );
});

/// What `list` gives, checked against `query` and `count`.
fn list(store: &JsonlStore) -> Vec<TraceSummary> {
    let listed = store.list(usize::MAX, 0).expect("list");
    let all = TraceFilter::new();
    assert_eq!(
        store.query(&all).expect("query"),
        listed,
        "query(all) != list"
    );
    assert_eq!(store.count(&all).expect("count"), listed.len() as u64);
    listed
}

/// Runs every read on `store` (the full set on the read-only handle and on the one
/// that compacted; the others only list, to keep runs fast), checks what they say of
/// each other, and returns the summaries `list` gives.
fn exercise(store: &JsonlStore) -> Vec<TraceSummary> {
    let listed = list(store);
    let all = TraceFilter::new();
    store.stats(&all).expect("stats");
    let key = listed
        .iter()
        .find_map(|s| s.metadata.keys().next().cloned())
        .unwrap_or_else(|| "k".to_owned());
    for group in [
        GroupBy::Day,
        GroupBy::Name,
        GroupBy::Session,
        GroupBy::Status,
    ]
    .into_iter()
    .chain([GroupBy::Model, GroupBy::Metadata(key)])
    {
        store.stats_by(&all, group).expect("stats_by");
    }

    let mut loaded: Vec<Option<Trace>> = Vec::with_capacity(listed.len());
    for summary in &listed {
        match store.load(&summary.run_id) {
            Ok(trace) => {
                assert_eq!(trace.run_id, summary.run_id, "load returned another trace");
                check_trace(&trace);
                loaded.push(Some(trace));
            }
            Err(error @ Error::NotFound { .. }) => {
                panic!("listed {:?} but load says {error}", summary.run_id)
            }
            Err(error) => {
                assert_input_error("load", &error);
                loaded.push(None);
            }
        }
    }
    match store.load("fuzz: never a listed id \u{1}") {
        Err(Error::InvalidInput { .. } | Error::NotFound { .. }) => {}
        other => panic!("load of an invalid id gave {other:?}"),
    }

    let mut queries: Vec<String> = QUERIES.iter().map(|q| (*q).to_owned()).collect();
    if let Some(text) = loaded
        .iter()
        .flatten()
        .map(Trace::search_text)
        .find(|t| !t.is_empty())
    {
        let piece: String = text.chars().skip(1).take(4).collect();
        if !piece.is_empty() {
            queries.push(piece.to_uppercase());
            queries.push(piece);
        }
    }
    for query in queries {
        let filter = TraceFilter::new().with_text(query.clone());
        let found = match store.query(&filter) {
            Ok(found) => found,
            Err(error) => {
                assert_input_error("text query", &error);
                assert!(
                    loaded.iter().any(Option::is_none),
                    "a text query failed on loadable traces: {error}"
                );
                continue;
            }
        };
        if loaded.iter().all(Option::is_some) {
            let expected: Vec<&TraceSummary> = listed
                .iter()
                .zip(&loaded)
                .filter(|(_, trace)| trace.as_ref().is_some_and(|t| t.text_matches(&query)))
                .map(|(summary, _)| summary)
                .collect();
            assert_eq!(
                found.iter().collect::<Vec<_>>(),
                expected,
                "text query {query:?}"
            );
            assert_eq!(
                store.count(&filter).expect("count text"),
                expected.len() as u64
            );
        }
    }
    listed
}
