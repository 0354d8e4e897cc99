//! A database written by the schema 4 code (`tests/fixtures/v4.db`, with the traces it
//! holds in `v4.jsonl`; see the README there) migrates to schema 5, whose summary
//! summary is packed in one column instead of JSON columns: every summary, load and metadata, score and text
//! query answers exactly as before, and writes to migrated traces leave no stale
//! index entry.

use rusqlite::Connection;
use serde_json::json;
use trace_store_core::{Trace, TraceFilter, TraceStore, TraceSummary};
use trace_store_sqlite::{SCHEMA_VERSION, SqliteStore};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v4");

fn fixture_traces() -> Vec<Trace> {
    std::fs::read_to_string(format!("{FIXTURE}.jsonl"))
        .expect("read the fixture's traces")
        .lines()
        .map(|line| Trace::from_json_str(line).expect("a trace"))
        .collect()
}

fn user_version(path: &std::path::Path) -> i64 {
    Connection::open(path)
        .expect("open")
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .expect("user_version")
}

/// The run_ids `filter` selects among `traces`, in list order, by core's own matching.
fn expected(traces: &[Trace], filter: &TraceFilter) -> Vec<String> {
    let mut summaries: Vec<TraceSummary> = traces
        .iter()
        .filter(|t| filter.matches_text(&t.search_text()))
        .map(TraceSummary::from)
        .filter(|s| filter.matches(s))
        .collect();
    summaries.sort_by_key(|s| std::cmp::Reverse(s.cursor()));
    summaries.into_iter().map(|s| s.run_id).collect()
}

fn run_ids(summaries: Vec<TraceSummary>) -> Vec<String> {
    summaries.into_iter().map(|s| s.run_id).collect()
}

#[test]
fn a_v4_database_migrates_and_answers_as_before() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v4.db");
    std::fs::copy(format!("{FIXTURE}.db"), &path).expect("copy the fixture");
    assert_eq!(user_version(&path), 4, "the fixture is a schema 4 database");
    let traces = fixture_traces();
    let store = SqliteStore::open(&path).expect("open migrates");
    assert_eq!(user_version(&path), i64::from(SCHEMA_VERSION));

    // Every summary as core derives it from the trace, in list order; every body.
    let mut want: Vec<TraceSummary> = traces.iter().map(TraceSummary::from).collect();
    want.sort_by_key(|s| std::cmp::Reverse(s.cursor()));
    assert_eq!(store.list(1000, 0).expect("list"), want);
    for trace in &traces {
        assert_eq!(&store.load(&trace.run_id).expect("load"), trace);
    }
    // Metadata values of every JSON type, and equal JSON of different types.
    let filters = [
        TraceFilter::new().with_metadata("user_id", "u_1"),
        TraceFilter::new().with_metadata("user_id", 1),
        TraceFilter::new().with_metadata("big", u64::MAX),
        TraceFilter::new().with_metadata("negzero", -0.0),
        TraceFilter::new().with_metadata("unicode", "résumé 北京 😀"),
        TraceFilter::new().with_metadata("quote \"k\"", "a \"b\" \\ c\n\t\u{1}"),
        TraceFilter::new().with_metadata("arr", json!([1, "two", [3], {"a": 2, "b": 1}])),
        TraceFilter::new().with_metadata("null", serde_json::Value::Null),
        TraceFilter::new().with_metadata("env", "staging"),
        TraceFilter::new().with_metadata("env", "prod"),
        TraceFilter::new().with_score("quality", Some(0.8), None),
        TraceFilter::new().with_score("zero", None, Some(0.0)),
        TraceFilter::new().with_text("résumé"),
        TraceFilter::new().with_text("token"),
        TraceFilter::new().with_session_id("chat-1"),
    ];
    for filter in &filters {
        let found = run_ids(store.query(filter).expect("query"));
        assert_eq!(found, expected(&traces, filter), "{filter:?}");
    }
    assert_eq!(
        run_ids(
            store
                .query(&TraceFilter::new().with_metadata("user_id", "u_1"))
                .expect("query")
        ),
        ["others", "strings"],
        "the fixture holds what this test expects"
    );

    // Upserts and deletes of migrated traces replace their index entries.
    let changed = traces[0].clone().with_metadata("user_id", "u_2");
    store.save(&changed).expect("save");
    assert_eq!(
        run_ids(
            store
                .query(&TraceFilter::new().with_metadata("user_id", "u_1"))
                .expect("query")
        ),
        ["others"]
    );
    assert!(store.delete("numbers").expect("delete"));
    assert!(
        store
            .query(&TraceFilter::new().with_metadata("big", u64::MAX))
            .expect("query")
            .is_empty()
    );
    assert_eq!(
        store.load("strings").expect("load").metadata["user_id"],
        json!("u_2")
    );
    store.close().expect("close");
    let conn = Connection::open(&path).expect("open");
    let orphans: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM trace_metadata m \
             WHERE NOT EXISTS (SELECT 1 FROM traces t WHERE t.id = m.trace_id)",
            [],
            |row| row.get(0),
        )
        .expect("count");
    assert_eq!(orphans, 0, "no metadata entry outlives its trace");
    let unpacked: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM traces \
             WHERE summary IS NULL OR metadata IS NOT NULL OR scores IS NOT NULL",
            [],
            |row| row.get(0),
        )
        .expect("count");
    assert_eq!(
        unpacked, 0,
        "every summary is packed, the JSON columns cleared"
    );
    let strings: Vec<String> = conn
        .prepare("SELECT m.value FROM trace_metadata m JOIN traces t ON t.id = m.trace_id WHERE t.run_id = 'strings' AND m.key = 'user_id'")
        .expect("prepare")
        .query_map([], |row| row.get(0))
        .expect("query")
        .collect::<rusqlite::Result<_>>()
        .expect("rows");
    assert_eq!(strings, ["\"u_2\""]);
}
