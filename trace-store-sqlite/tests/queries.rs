//! What the suite cannot see: query plans, exact arithmetic past SQLite's integers, and
//! damaged rows.

use rusqlite::Connection;
use trace_store_core::{
    Cursor, Error, Status, Step, Timestamp, Trace, TraceFilter, TraceStats, TraceStore,
    TraceSummary,
};
use trace_store_sqlite::SqliteStore;

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_micros(1_767_225_600_000_000 + seconds * 1_000_000).expect("timestamp")
}

fn sample(i: i64) -> Trace {
    let mut trace = Trace::new(format!("run-{i:04}"))
        .with_created_at(at(i * 60))
        .with_status(if i % 7 == 0 {
            Status::Error
        } else {
            Status::Ok
        })
        .with_metadata("user_id", format!("user_{:02}", i % 20))
        .with_metadata("env", "prod");
    trace.steps = (0..1 + i % 9)
        .map(|s| Step::llm_call("m").with_usage(10 + s as u64, 5))
        .collect();
    trace
}

/// `EXPLAIN QUERY PLAN` of every common query: an index search, never a scan of a
/// table, and a sort only where the metadata index drives the query.
#[test]
fn queries_use_the_indexes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path().join("traces.db")).expect("open");
    store
        .save_many(&(0..500).map(sample).collect::<Vec<_>>())
        .expect("save_many");
    let cases: [(&str, TraceFilter, &[&str], bool); 7] = [
        (
            "list",
            TraceFilter::new().with_limit(50),
            &["SCAN t USING INDEX traces_by_created_at"],
            false,
        ),
        (
            "since/until",
            TraceFilter::new().with_since(at(600)).with_until(at(6000)),
            &["SEARCH t USING INDEX traces_by_created_at (created_at>? AND created_at<?)"],
            false,
        ),
        (
            "since + min_steps",
            TraceFilter::new().with_since(at(600)).with_min_steps(5),
            &["SEARCH t USING INDEX traces_by_created_at (created_at>?)"],
            false,
        ),
        (
            "keyset cursor",
            TraceFilter::new()
                .with_after(Cursor::new(at(6000), "run-0100"))
                .with_limit(50),
            &["SEARCH t USING INDEX traces_by_created_at ((created_at,run_id)<(?,?))"],
            false,
        ),
        (
            "metadata",
            TraceFilter::new().with_metadata("user_id", "user_03"),
            &[
                "SEARCH m0 USING PRIMARY KEY (key=? AND value=?)",
                "SEARCH t USING INTEGER PRIMARY KEY (rowid=?)",
            ],
            true,
        ),
        (
            "two metadata keys",
            TraceFilter::new()
                .with_metadata("user_id", "user_03")
                .with_metadata("env", "prod")
                .with_limit(10),
            &[
                "SEARCH m0 USING PRIMARY KEY (key=? AND value=?)",
                "SEARCH m USING PRIMARY KEY (key=? AND value=? AND trace_id=?)",
            ],
            true,
        ),
        (
            "metadata + since + status",
            TraceFilter::new()
                .with_metadata("user_id", "user_03")
                .with_since(at(600))
                .with_status(Status::Ok),
            &["SEARCH m0 USING PRIMARY KEY (key=? AND value=?)"],
            true,
        ),
    ];
    for (what, filter, expected, sorts) in cases {
        let plan = store.query_plan(&filter).expect("plan");
        for line in expected {
            assert!(
                plan.iter().any(|step| step == line),
                "{what}: no {line:?} in {plan:#?}"
            );
        }
        for step in &plan {
            assert!(
                !step.starts_with("SCAN") || step.contains("USING INDEX traces_by_created_at"),
                "{what}: full scan {step:?} in {plan:#?}"
            );
        }
        assert_eq!(
            plan.iter().any(|step| step.contains("TEMP B-TREE")),
            sorts,
            "{what}: {plan:#?}"
        );
        // The planned query gives what core's matcher gives.
        let all: Vec<TraceSummary> = store.list(usize::MAX, 0).expect("list");
        let want: Vec<&TraceSummary> = filter.page(&all).collect();
        let got = store.query(&filter).expect("query");
        assert_eq!(got.iter().collect::<Vec<_>>(), want, "{what}");
    }
}

/// Token counts past `i64::MAX` (SQLite's largest integer) and sums past it come back
/// exactly as core computes them.
#[test]
fn counters_past_i64_stay_exact() {
    let store = SqliteStore::in_memory().expect("in_memory");
    let huge = Trace::new("huge")
        .with_created_at(at(1))
        .with_step(Step::llm_call("big").with_usage(u64::MAX - 1, 1));
    let rich = |id: &str, secs| {
        Trace::new(id)
            .with_created_at(at(secs))
            .with_step(Step::llm_call("pricey").with_cost_nano_usd(i64::MAX - 10))
    };
    let traces = [huge, rich("rich-1", 2), rich("rich-2", 3), sample(4)];
    store.save_many(&traces).expect("save_many");
    for trace in &traces {
        let summary = store
            .query(
                &TraceFilter::new()
                    .with_since(trace.created_at)
                    .with_until(trace.created_at),
            )
            .expect("query");
        assert_eq!(summary, [TraceSummary::from(trace)]);
    }
    let want: TraceStats = traces
        .iter()
        .map(TraceSummary::from)
        .collect::<Vec<_>>()
        .iter()
        .collect();
    let got = store.stats(&TraceFilter::new()).expect("stats");
    assert_eq!(got.input_tokens, u64::MAX, "saturates like core");
    assert_eq!(got.cost_nano_usd, i64::MAX, "saturates like core");
    assert_eq!(got, want);
    // Without the huge ones, SQL does the sums.
    let small = TraceFilter::new().with_since(at(4));
    let want: TraceStats = [TraceSummary::from(&traces[3])].iter().collect();
    assert_eq!(store.stats(&small).expect("stats"), want);
}

/// Stats and count aggregate over exactly the page `query` returns.
#[test]
fn count_and_stats_follow_the_page() {
    let store = SqliteStore::in_memory().expect("in_memory");
    store
        .save_many(&(0..120).map(sample).collect::<Vec<_>>())
        .expect("save_many");
    let all = store.list(usize::MAX, 0).expect("list");
    for filter in [
        TraceFilter::new().with_offset(10).with_limit(25),
        TraceFilter::new()
            .with_metadata("env", "prod")
            .with_min_steps(3)
            .with_after(all[30].cursor())
            .with_limit(40),
        TraceFilter::new().with_status(Status::Error).with_offset(2),
        TraceFilter::new().with_limit(0),
    ] {
        let page = store.query(&filter).expect("query");
        assert_eq!(store.count(&filter).expect("count"), page.len() as u64);
        let want: TraceStats = page.iter().collect();
        let mut got = store.stats(&filter).expect("stats");
        // SQLite sums floats in another order than core does.
        assert!((got.total_ms - want.total_ms).abs() < 1e-9);
        got.total_ms = want.total_ms;
        assert_eq!(got, want);
    }
}

/// A damaged row is `Corrupt`, naming the trace and the database, not a panic.
#[test]
fn damaged_rows_are_corrupt_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("traces.db");
    let store = SqliteStore::open(&path).expect("open");
    store.save(&sample(1)).expect("save");
    store.save(&sample(2)).expect("save");
    let raw = Connection::open(&path).expect("raw open");
    raw.execute_batch(
        "UPDATE trace_bodies SET body = '{\"run_id\": 5' WHERE id = (SELECT id FROM traces WHERE run_id = 'run-0001');
         UPDATE traces SET summary = 'not packed' WHERE run_id = 'run-0002';",
    )
    .expect("damage");
    match store.load("run-0001") {
        Err(error @ Error::Corrupt { .. }) => {
            assert_eq!(
                error.corrupt_place().and_then(|at| at.key.as_deref()),
                Some("run-0001"),
                "Corrupt names the damaged row's run_id as a field: {error:?}"
            );
            let Error::Corrupt { message, .. } = error else {
                unreachable!()
            };
            assert!(message.contains("run-0001"), "{message}");
            assert!(message.contains(&path.display().to_string()), "{message}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    match store.list(10, 0) {
        Err(Error::Corrupt { message, .. }) => {
            assert!(message.contains(&path.display().to_string()), "{message}")
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // The damaged trace can still be replaced and deleted.
    store.save(&sample(2)).expect("upsert over a damaged row");
    assert_eq!(store.list(10, 0).expect("list").len(), 2);
    assert!(store.delete("run-0001").expect("delete"));
    assert_eq!(
        store
            .count(&TraceFilter::new().with_metadata("env", "prod"))
            .expect("count"),
        1
    );
}

/// An upsert rewrites only the metadata entries that changed, and leaves no stale one.
#[test]
fn upserts_keep_the_metadata_index_exact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("traces.db");
    let store = SqliteStore::open(&path).expect("open");
    let first = Trace::new("r")
        .with_metadata("a", 1)
        .with_metadata("b", 2)
        .with_metadata("c", 3);
    store.save(&first).expect("save");
    store.save(&sample(9)).expect("save another");
    let second = Trace::new("r")
        .with_created_at(first.created_at)
        .with_metadata("a", 1.0)
        .with_metadata("b", 5)
        .with_metadata("d", serde_json::json!({"y": [1], "x": null}));
    store.save(&second).expect("upsert");
    let matches = |key: &str, value: serde_json::Value| {
        store
            .count(&TraceFilter::new().with_metadata(key, value))
            .expect("count")
    };
    assert_eq!(matches("a", 1.into()), 1);
    assert_eq!(matches("b", 2.into()), 0);
    assert_eq!(matches("b", 5.into()), 1);
    assert_eq!(matches("c", 3.into()), 0);
    assert_eq!(matches("d", serde_json::json!({"x": null, "y": [1.0]})), 1);
    assert_eq!(store.load("r").expect("load"), second);
    let raw = Connection::open(&path).expect("raw open");
    let rows: i64 = raw
        .query_row(
            "SELECT COUNT(*) FROM trace_metadata m JOIN traces t ON t.id = m.trace_id WHERE t.run_id = 'r'",
            [],
            |row| row.get(0),
        )
        .expect("count rows");
    assert_eq!(rows, 3);
    assert!(store.delete("r").expect("delete"));
    let left: i64 = raw
        .query_row("SELECT COUNT(*) FROM trace_metadata", [], |row| row.get(0))
        .expect("count rows");
    assert_eq!(left, 2, "only the other trace's entries remain");
    let models = store.stats(&TraceFilter::new()).expect("stats").by_model;
    assert_eq!(
        models.len(),
        1,
        "only the other trace's model remains: {models:?}"
    );
}
