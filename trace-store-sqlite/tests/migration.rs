//! A database written by the v1 code (schema 1, `tests/fixtures/v1.db`, see the README
//! there) migrates on open, answers every v1 query as v1 did, and gains the v2 columns,
//! scores and searchable text from its bodies.

use rusqlite::Connection;
use trace_store_core::{GroupBy, GroupKey, Status, Trace, TraceFilter, TraceStore, TraceSummary};
use trace_store_sqlite::{SCHEMA_VERSION, SqliteStore};

/// A private copy of the fixture (opening migrates it in place).
fn v1_copy(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let path = dir.path().join("v1.db");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v1.db"),
        &path,
    )
    .expect("copy the fixture");
    path
}

fn user_version(path: &std::path::Path) -> i64 {
    Connection::open(path)
        .expect("open")
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .expect("user_version")
}

fn run_ids(summaries: &[TraceSummary]) -> Vec<&str> {
    summaries.iter().map(|s| s.run_id.as_str()).collect()
}

/// What the v1 CLI printed for `list --limit 100` on the fixture.
const V1_LIST: [&str; 32] = [
    "demo-0013",
    "demo-0025",
    "demo-0030",
    "demo-0024",
    "demo-0005",
    "demo-0003",
    "demo-0015",
    "demo-0028",
    "demo-0002",
    "demo-0017",
    "demo-0026",
    "demo-0010",
    "demo-0006",
    "demo-0001",
    "demo-0022.escalation",
    "demo-0022",
    "demo-0029",
    "demo-0008",
    "demo-0016",
    "demo-0019",
    "demo-0020",
    "demo-0009",
    "demo-0018",
    "demo-0007",
    "demo-0021",
    "demo-0004",
    "demo-0011",
    "demo-0027",
    "demo-0014",
    "demo-0023",
    "demo-0012.escalation",
    "demo-0012",
];

#[test]
fn a_v1_database_migrates_and_answers_as_before() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = v1_copy(&dir);
    assert_eq!(user_version(&path), 1, "the fixture is a schema 1 database");
    let store = SqliteStore::open(&path).expect("open migrates");
    assert_eq!(SCHEMA_VERSION, 5);

    // The v1 queries, with the v1 CLI's answers.
    assert_eq!(run_ids(&store.list(100, 0).expect("list")), V1_LIST);
    let research = TraceFilter::new()
        .with_name("research-agent")
        .with_metadata("env", "prod");
    assert_eq!(
        run_ids(&store.query(&research).expect("query")),
        [
            "demo-0013",
            "demo-0025",
            "demo-0017",
            "demo-0026",
            "demo-0010",
            "demo-0001",
            "demo-0019",
            "demo-0007",
            "demo-0023"
        ]
    );
    let failed = TraceFilter::new()
        .with_status(Status::Error)
        .with_min_steps(3);
    assert_eq!(
        run_ids(&store.query(&failed).expect("query")),
        ["demo-0013", "demo-0028"]
    );
    let user = TraceFilter::new().with_metadata("user_id", "u_03");
    assert_eq!(
        run_ids(&store.query(&user).expect("query")),
        ["demo-0022.escalation", "demo-0022", "demo-0011"]
    );
    let stats = store.stats(&TraceFilter::new()).expect("stats");
    assert_eq!(
        (
            stats.count,
            stats.steps,
            stats.input_tokens,
            stats.output_tokens
        ),
        (32, 205, 167_728, 30_154)
    );
    assert_eq!((stats.cost_nano_usd, stats.error_count), (508_425_340, 12));
    assert!(
        (stats.total_ms - 582_101.308).abs() < 1e-6,
        "{}",
        stats.total_ms
    );
    assert_eq!(stats.by_status.get(&Status::Ok), Some(&30));
    assert_eq!(stats.by_status.get(&Status::Error), Some(&2));
    let gpt = &stats.by_model["gpt-4o"];
    assert_eq!(
        (
            gpt.calls,
            gpt.input_tokens,
            gpt.output_tokens,
            gpt.cost_nano_usd
        ),
        (30, 61_330, 8_695, 240_275_000)
    );
    let first = &store.list(1, 0).expect("list")[0];
    assert_eq!(
        (
            first.steps,
            first.error_count,
            first.input_tokens,
            first.cost_nano_usd
        ),
        (9, 2, 6_513, 21_002_400)
    );

    // The backfilled v2 fields (and the models re-encoded by v3) equal what core
    // derives from each stored body.
    for summary in store.list(100, 0).expect("list") {
        let trace = store.load(&summary.run_id).expect("load");
        let derived = TraceSummary::from(&trace);
        assert_eq!(
            (
                &summary.session_id,
                &summary.parent_run_id,
                summary.failed_steps,
                &summary.scores,
                &summary.models
            ),
            (
                &derived.session_id,
                &derived.parent_run_id,
                derived.failed_steps,
                &derived.scores,
                &derived.models
            ),
            "backfilled summary of {}",
            summary.run_id
        );
    }
    // The sub-runs name their parents (v1 bodies had parent_run_id, v1 columns not).
    assert_eq!(
        run_ids(
            &store
                .query(&TraceFilter::new().with_parent_run_id("demo-0022"))
                .expect("query")
        ),
        ["demo-0022.escalation"]
    );
    // Text search over the backfilled text: the traces whose bodies hold the phrase.
    assert_eq!(
        run_ids(
            &store
                .query(&TraceFilter::new().with_text("Discount Code"))
                .expect("query")
        ),
        ["demo-0006", "demo-0022", "demo-0014"]
    );
    assert_eq!(
        run_ids(
            &store
                .query(&TraceFilter::new().with_text("eu ai act"))
                .expect("query")
        ),
        ["demo-0013", "demo-0017"]
    );
    let by_status = store
        .stats_by(&TraceFilter::new(), GroupBy::Status)
        .expect("stats_by");
    assert_eq!(
        by_status
            .iter()
            .map(|(key, stats)| (key.clone(), stats.count))
            .collect::<Vec<_>>(),
        [
            (GroupKey::Status(Status::Ok), 30),
            (GroupKey::Status(Status::Error), 2)
        ]
    );

    // Writes work on the migrated file, and it stays at the new version.
    store
        .merge(&Trace::new("demo-0013").with_session_id("s-1"))
        .expect("merge");
    assert_eq!(
        run_ids(
            &store
                .query(&TraceFilter::new().with_session_id("s-1"))
                .expect("query")
        ),
        ["demo-0013"]
    );
    let support = TraceFilter::new().with_name("support-bot");
    assert_eq!(store.delete_where(&support).expect("delete_where"), 5);
    assert!(
        store
            .query(&TraceFilter::new().with_text("discount code"))
            .expect("query")
            .is_empty()
    );
    store.close().expect("close");
    assert_eq!(user_version(&path), i64::from(SCHEMA_VERSION));
    let reopened = SqliteStore::open(&path).expect("reopen");
    assert_eq!(
        reopened
            .load("demo-0013")
            .expect("load")
            .session_id
            .as_deref(),
        Some("s-1")
    );
}
