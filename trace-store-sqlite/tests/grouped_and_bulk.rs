//! Grouped stats and bulk deletes in SQL: equal to core's definitions on generated
//! data, and nothing left behind in any table.

use rusqlite::{Connection, OptionalExtension};
use trace_store_core::{
    GroupBy, Score, Status, Step, Timestamp, Trace, TraceFilter, TraceStats, TraceStore,
};
use trace_store_sqlite::SqliteStore;

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

const DAY: i64 = 86_400_000_000;

/// Traces over days either side of 1970 and of midnight, with models, sessions,
/// metadata, scores and failed steps. Durations are whole milliseconds, so float sums
/// do not depend on their order.
fn generate(seed: u64, count: usize) -> Vec<Trace> {
    let mut rng = Rng(seed);
    let models = ["gpt-4o", "claude", "llama"];
    (0..count)
        .map(|i| {
            let day = rng.below(12) as i64 - 3;
            // The last microsecond of a day, the first, or anywhere in it.
            let micros = match rng.below(3) {
                0 => DAY - 1,
                1 => 0,
                _ => rng.below(DAY as u64) as i64,
            };
            let created_at =
                Timestamp::from_micros(day * DAY + micros + 1_000 * DAY).expect("timestamp");
            let mut trace = Trace::new(format!("run-{i:04}"))
                .with_created_at(if rng.below(4) == 0 {
                    Timestamp::from_micros(day * DAY + micros).expect("timestamp")
                } else {
                    created_at
                })
                .with_status([Status::Ok, Status::Error, Status::Running][rng.below(3) as usize]);
            if rng.below(3) > 0 {
                trace = trace.with_name(format!("agent-{}", rng.below(3)));
            }
            if rng.below(2) == 0 {
                trace = trace.with_session_id(format!("s-{}", rng.below(5)));
            }
            match rng.below(4) {
                0 => trace = trace.with_metadata("user", rng.below(3)),
                1 => trace = trace.with_metadata("user", format!("{}", rng.below(3))),
                2 => trace = trace.with_metadata("user", serde_json::Value::Null),
                _ => {}
            }
            if rng.below(2) == 0 {
                trace.add_score(Score::new("quality").with_value(rng.below(11) as f64 / 10.0));
            }
            for s in 0..rng.below(5) {
                let mut step = Step::llm_call(models[rng.below(3) as usize])
                    .with_duration_us(1_000 * rng.below(500))
                    .with_usage(rng.below(1000), rng.below(100))
                    .with_cost_nano_usd(rng.below(10_000) as i64);
                if rng.below(4) == 0 {
                    step = step.with_status(Status::Error);
                }
                if s > 0 && rng.below(3) == 0 {
                    step = step.with_usage(0, 0).with_cost_nano_usd(0);
                }
                trace = trace.with_step(step);
            }
            trace
        })
        .collect()
}

fn close(a: &TraceStats, b: &TraceStats) -> bool {
    let mut a = a.clone();
    let total_ms = std::mem::take(&mut a.total_ms);
    let mut b = b.clone();
    let other_ms = std::mem::take(&mut b.total_ms);
    a == b && (total_ms - other_ms).abs() < 1e-6
}

#[test]
fn grouped_stats_equal_cores_on_generated_data() {
    let store = SqliteStore::in_memory().expect("in_memory");
    let traces = generate(0xC0FF_EE00, 600);
    store.save_many(&traces).expect("save_many");
    let groups = [
        GroupBy::Day,
        GroupBy::Name,
        GroupBy::Session,
        GroupBy::Status,
        GroupBy::Model,
        GroupBy::Metadata("user".into()),
        GroupBy::Metadata("absent".into()),
    ];
    let filters = [
        TraceFilter::new(),
        TraceFilter::new().with_status(Status::Ok),
        TraceFilter::new()
            .with_min_steps(2)
            .with_limit(100)
            .with_offset(7),
        TraceFilter::new().with_score("quality", Some(0.3), Some(0.7)),
        TraceFilter::new().with_session_id("s-1"),
        TraceFilter::new().with_text("agent-1"),
        // Few traces of many: their models are read by a lookup each, not a walk.
        TraceFilter::new().with_limit(20),
        TraceFilter::new().with_limit(3).with_offset(100),
    ];
    for filter in &filters {
        let selected = store.query(filter).expect("query");
        // Plain stats too: the same statement with one group.
        let plain = store.stats(filter).expect("stats");
        assert!(
            close(&plain, &selected.iter().collect()),
            "stats {filter:?}"
        );
        for group in &groups {
            let got = store.stats_by(filter, group.clone()).expect("stats_by");
            let want = group.stats(&selected);
            assert_eq!(
                got.iter().map(|(k, _)| k).collect::<Vec<_>>(),
                want.iter().map(|(k, _)| k).collect::<Vec<_>>(),
                "group keys of {group} for {filter:?}"
            );
            for ((key, got), (_, want)) in got.iter().zip(&want) {
                assert!(
                    close(got, want),
                    "{group} group {key} for {filter:?}: got {got:?}, want {want:?}"
                );
            }
        }
    }
    // Days either side of the epoch came out: the floor division is exercised.
    let days = store
        .stats_by(&TraceFilter::new(), GroupBy::Day)
        .expect("days");
    assert!(days.len() > 12, "{}", days.len());
}

#[test]
fn score_session_and_parent_filters_run_in_sql() {
    let store = SqliteStore::in_memory().expect("in_memory");
    let traces = generate(42, 300);
    store.save_many(&traces).expect("save_many");
    for filter in [
        TraceFilter::new().with_score("quality", Some(0.5), None),
        TraceFilter::new().with_score("quality", None, Some(0.2)),
        TraceFilter::new().with_score("quality", Some(0.4), Some(0.4)),
        TraceFilter::new().with_score("missing", None, None),
        TraceFilter::new().with_session_id("s-2").with_limit(4),
        TraceFilter::new().with_parent_run_id("nobody"),
    ] {
        let mut want: Vec<_> = traces
            .iter()
            .map(trace_store_core::TraceSummary::from)
            .filter(|s| filter.without_paging().matches(s))
            .collect();
        want.sort_by(|a, b| (b.created_at, &b.run_id).cmp(&(a.created_at, &a.run_id)));
        want.truncate(filter.limit.unwrap_or(usize::MAX));
        assert_eq!(store.query(&filter).expect("query"), want, "{filter:?}");
    }
    let plan = store
        .query_plan(&TraceFilter::new().with_session_id("s-1").with_limit(10))
        .expect("plan");
    assert!(
        plan.iter()
            .any(|l| l.contains("INDEX traces_by_session (session_id=?)")),
        "{plan:#?}"
    );
    let plan = store
        .query_plan(&TraceFilter::new().with_parent_run_id("p").with_limit(10))
        .expect("plan");
    assert!(
        plan.iter()
            .any(|l| l.contains("INDEX traces_by_parent (parent_run_id=?)")),
        "{plan:#?}"
    );
}

fn rows(conn: &Connection, table: &str) -> i64 {
    conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |row| {
        row.get(0)
    })
    .expect("count rows")
}

const TABLES: [&str; 6] = [
    "traces",
    "trace_bodies",
    "trace_metadata",
    "trace_scores",
    "trace_text",
    // Indexed or waiting to be (the index takes saved text in batches).
    "(SELECT rowid FROM trace_trigrams UNION SELECT id FROM trace_text_pending)",
];

/// Both delete paths (trace by trace, and one pass per table past a few hundred) leave
/// no row of a deleted trace in any table, the FTS index included.
#[test]
fn delete_where_removes_every_row_of_every_deleted_trace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("traces.db");
    let store = SqliteStore::open(&path).expect("open");
    let traces = generate(9, 1200);
    store.save_many(&traces).expect("save_many");
    let conn = Connection::open(&path).expect("open");
    let before: Vec<i64> = TABLES.iter().map(|t| rows(&conn, t)).collect();
    assert!(before.iter().all(|&n| n > 0), "{before:?}");

    // Small: the 10 oldest errors.
    let oldest_errors = TraceFilter::new().with_status(Status::Error);
    let all_errors = store.query(&oldest_errors).expect("query");
    let small = oldest_errors.clone().with_offset(all_errors.len() - 10);
    assert_eq!(store.delete_where(&small).expect("delete_where"), 10);
    for summary in &all_errors[all_errors.len() - 10..] {
        assert!(store.load(&summary.run_id).is_err());
    }
    // Large: everything but the newest 100.
    let kept = store.list(100, 0).expect("list");
    let rest = TraceFilter::new().with_offset(100);
    assert_eq!(
        store.delete_where(&rest).expect("delete_where"),
        1200 - 10 - 100
    );
    assert_eq!(store.list(1000, 0).expect("list"), kept);
    // The bulk delete turns FTS5's merging of deleted rows off for itself only: the
    // option is FTS5's default again afterwards (stored or absent).
    let deletemerge: Option<i64> = conn
        .query_row(
            "SELECT v FROM trace_trigrams_config WHERE k = 'deletemerge'",
            [],
            |row| row.get(0),
        )
        .optional()
        .expect("read the FTS5 options");
    assert!(matches!(deletemerge, None | Some(10)), "{deletemerge:?}");

    // The small delete left its traces' trigram entries for the next batch to remove
    // (text.rs), and no query finds them meanwhile.
    assert!(
        store
            .query(&TraceFilter::new().with_text("agent"))
            .expect("query")
            .iter()
            .all(|s| kept.contains(s))
    );
    store.index_text().expect("index_text");
    // What is left is exactly the rows of the kept traces: rebuild them elsewhere.
    let fresh_path = dir.path().join("fresh.db");
    let fresh = SqliteStore::open(&fresh_path).expect("open");
    let kept_traces: Vec<Trace> = kept
        .iter()
        .map(|s| store.load(&s.run_id).expect("load"))
        .collect();
    fresh.save_many(&kept_traces).expect("save_many");
    let fresh_conn = Connection::open(&fresh_path).expect("open");
    for table in TABLES {
        assert_eq!(
            rows(&conn, table),
            rows(&fresh_conn, table),
            "rows of {table}"
        );
    }
    // The FTS index holds no term of a deleted trace.
    let gone = TraceFilter::new().with_text("agent");
    assert_eq!(
        store.count(&gone).expect("count"),
        kept.iter().filter(|s| s.name.is_some()).count() as u64
    );
    conn.execute(
        "INSERT INTO trace_trigrams (trace_trigrams) VALUES ('integrity-check')",
        [],
    )
    .expect("FTS5 integrity-check");
}
