//! Layout 1 (pg_trgm index, metadata and per-model tables, foreign keys) is migrated
//! in place, and concurrent `merge_many` batches over the same run_ids in opposite
//! orders neither deadlock nor lose a part.

use std::time::Duration;

use trace_store_core::{GroupBy, GroupKey, Score, Step, Trace, TraceFilter, TraceStore};
use trace_store_postgres::{PostgresOptions, PostgresStore, SCHEMA_VERSION};
use trace_store_test_support::PostgresServer;

/// Layout 1 as version 1 of this crate created it, with one trace's rows.
const LAYOUT_1: &str = r#"
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;
CREATE SCHEMA old;
CREATE TABLE old.schema_version (version INTEGER NOT NULL);
INSERT INTO old.schema_version VALUES (1);
CREATE TABLE old.traces (
    run_id TEXT COLLATE "C" PRIMARY KEY, created_at BIGINT NOT NULL, name TEXT,
    session_id TEXT, parent_run_id TEXT, status TEXT NOT NULL, steps BIGINT NOT NULL,
    total_ms DOUBLE PRECISION NOT NULL, error_count NUMERIC(20, 0) NOT NULL,
    failed_steps NUMERIC(20, 0) NOT NULL, input_tokens NUMERIC(20, 0) NOT NULL,
    output_tokens NUMERIC(20, 0) NOT NULL, cost_nano_usd NUMERIC(20, 0) NOT NULL,
    summary TEXT NOT NULL, body TEXT NOT NULL, search_text TEXT NOT NULL);
CREATE INDEX traces_order ON old.traces (created_at DESC, run_id DESC);
CREATE INDEX traces_name ON old.traces (name, created_at DESC, run_id DESC);
CREATE INDEX traces_session ON old.traces (session_id, created_at DESC, run_id DESC);
CREATE INDEX traces_parent ON old.traces (parent_run_id, created_at DESC, run_id DESC);
CREATE INDEX traces_status ON old.traces (status, created_at DESC, run_id DESC);
CREATE INDEX traces_steps ON old.traces (steps);
CREATE INDEX traces_text ON old.traces USING gin (search_text public.gin_trgm_ops);
CREATE TABLE old.metadata (run_id TEXT COLLATE "C" NOT NULL REFERENCES old.traces (run_id)
    ON DELETE CASCADE, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (run_id, key));
CREATE TABLE old.scores (run_id TEXT COLLATE "C" NOT NULL REFERENCES old.traces (run_id)
    ON DELETE CASCADE, name TEXT NOT NULL, value DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (run_id, name));
CREATE INDEX scores_value ON old.scores (name, value);
CREATE TABLE old.models (run_id TEXT COLLATE "C" NOT NULL REFERENCES old.traces (run_id)
    ON DELETE CASCADE, model TEXT NOT NULL, calls NUMERIC(20, 0) NOT NULL,
    input_tokens NUMERIC(20, 0) NOT NULL, output_tokens NUMERIC(20, 0) NOT NULL,
    cost_nano_usd NUMERIC(20, 0) NOT NULL, PRIMARY KEY (run_id, model));
"#;

#[test]
fn layout_1_is_migrated_from_the_stored_bodies() {
    let Some(server) = PostgresServer::start_unless_missing() else {
        return;
    };
    let trace = Trace::new("old-1")
        .with_metadata("user_id", "u_7")
        .with_score(Score::new("quality").with_value(0.5))
        .with_step(
            Step::llm_call("gpt-x")
                .with_output("A Refund was issued")
                .with_usage(3, 4),
        );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(&server.url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client.batch_execute(LAYOUT_1).await.unwrap();
        // Only the body matters: every other column is derived again from it.
        client
            .execute(
                "INSERT INTO old.traces VALUES ($1, 0, NULL, NULL, NULL, 'unset', 0, 0, 0, 0, 0,
                     0, 0, '{}', $2, '')",
                &[&trace.run_id, &trace.to_json_string().unwrap()],
            )
            .await
            .unwrap();
        client
            .execute(
                "INSERT INTO old.scores VALUES ($1, '\"stale\"', 1)",
                &[&trace.run_id],
            )
            .await
            .unwrap();
    });

    let store =
        PostgresStore::open_with(&server.url(), PostgresOptions::default().with_schema("old"))
            .unwrap();
    assert_eq!(store.load("old-1").unwrap(), trace);
    assert_eq!(store.list(10, 0).unwrap()[0], (&trace).into());
    for filter in [
        TraceFilter::new().with_metadata("user_id", "u_7"),
        TraceFilter::new().with_text("refund was"),
        TraceFilter::new().with_score("quality", Some(0.5), None),
    ] {
        assert_eq!(store.count(&filter).unwrap(), 1, "{filter:?}");
    }
    assert_eq!(
        store
            .count(&TraceFilter::new().with_score("stale", None, None))
            .unwrap(),
        0,
        "scores are written again from the body"
    );
    let by_model = store.stats_by(&TraceFilter::new(), GroupBy::Model).unwrap();
    assert_eq!(by_model[0].0, GroupKey::Model("gpt-x".into()));
    assert_eq!(by_model[0].1.input_tokens, 3);

    let version = runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(&server.url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        let row = client
            .query_one(
                "SELECT max(version), to_regclass('old.metadata') IS NULL FROM old.schema_version",
                &[],
            )
            .await
            .unwrap();
        (row.get::<_, i32>(0), row.get::<_, bool>(1))
    });
    assert_eq!(version, (SCHEMA_VERSION, true));
    // Opening again finds the current layout and changes nothing.
    let again =
        PostgresStore::open_with(&server.url(), PostgresOptions::default().with_schema("old"))
            .unwrap();
    assert_eq!(again.load("old-1").unwrap(), trace);
}

#[test]
fn crossing_merge_batches_neither_deadlock_nor_lose_parts() {
    let Some(server) = PostgresServer::start_unless_missing() else {
        return;
    };
    let options = PostgresOptions::default()
        .with_schema("crossing")
        .with_connect_timeout(Duration::from_secs(10));
    let store = PostgresStore::open_with(&server.url(), options).unwrap();
    let ids: Vec<String> = (0..8).map(|i| format!("run-{i}")).collect();
    const ROUNDS: usize = 20;
    std::thread::scope(|scope| {
        for writer in 0..4 {
            let (store, ids) = (store.clone(), ids.clone());
            scope.spawn(move || {
                for round in 0..ROUNDS {
                    let mut parts: Vec<Trace> = ids
                        .iter()
                        .map(|id| {
                            Trace::new(id.clone()).with_step(
                                Step::tool_call("t").with_id(format!("{writer}-{round}")),
                            )
                        })
                        .collect();
                    if writer % 2 == 1 {
                        parts.reverse();
                    }
                    let merged = store.merge_many(&parts).unwrap();
                    assert_eq!(merged.len(), parts.len());
                }
            });
        }
    });
    for id in &ids {
        assert_eq!(store.load(id).unwrap().steps.len(), 4 * ROUNDS, "{id}");
    }
}
