//! Tables, indexes and their migrations, versioned in a table of the store's schema.

use tokio_postgres::Client;
use trace_store_core::{Error, Result};

use crate::error::{Failure, backend};
use crate::sql::Tables;

/// The layout this code writes and the newest it reads.
pub const SCHEMA_VERSION: i32 = 1;

/// Every store, whatever its schema, takes this advisory lock while it creates or
/// migrates tables: `CREATE EXTENSION` and `CREATE SCHEMA IF NOT EXISTS` race with
/// themselves otherwise.
const SETUP_LOCK: i64 = 0x7472_6163_6573_746f; // "tracesto"

/// Creates or migrates the store's tables; a newer layout is `UnsupportedVersion`.
pub(crate) async fn migrate(client: &mut Client, tables: &Tables) -> Result<()> {
    let tx = client
        .transaction()
        .await
        .map_err(|e| backend("starting the schema migration", e))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SETUP_LOCK])
        .await
        .map_err(|e| backend("locking for the schema migration", e))?;
    tx.batch_execute(&format!(
        "CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;
         CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS {version} (version INTEGER NOT NULL);",
        schema = tables.schema,
        version = tables.version
    ))
    .await
    .map_err(|e| {
        let hint = if e.to_string().contains("pg_trgm") {
            " (pg_trgm ships in postgresql-contrib; install it, or have a superuser run CREATE EXTENSION pg_trgm WITH SCHEMA public)"
        } else {
            ""
        };
        backend(format!("creating the schema {}{hint}", tables.schema), e)
    })?;
    let found: Option<i32> = tx
        .query_opt(&format!("SELECT max(version) FROM {}", tables.version), &[])
        .await
        .map_err(|e| backend("reading the schema version", e))?
        .and_then(|row| row.get(0));
    match found.unwrap_or(0) {
        0 => {
            tx.batch_execute(&create_v1(tables))
                .await
                .map_err(|e| backend("creating the tables", e))?;
            tx.execute(
                &format!("INSERT INTO {} (version) VALUES ($1)", tables.version),
                &[&SCHEMA_VERSION],
            )
            .await
            .map_err(|e| backend("recording the schema version", e))?;
        }
        SCHEMA_VERSION => {}
        newer if newer > SCHEMA_VERSION => {
            return Err(Error::UnsupportedVersion {
                found: u32::try_from(newer).unwrap_or(u32::MAX),
                supported: SCHEMA_VERSION as u32,
            });
        }
        older => {
            return Err(Failure::Schema(format!(
                "schema {} has layout version {older}, which this version cannot migrate",
                tables.schema
            ))
            .into());
        }
    }
    tx.commit()
        .await
        .map_err(|e| backend("committing the schema migration", e))
}

/// Layout 1. Strings that may hold any character (names, sessions, metadata keys,
/// models) are stored JSON-encoded; run_ids sort in byte order (`COLLATE "C"`), as the
/// contract's tie-break requires whatever the database's locale.
fn create_v1(t: &Tables) -> String {
    format!(
        r#"
CREATE TABLE {traces} (
    run_id        TEXT COLLATE "C" PRIMARY KEY,
    created_at    BIGINT NOT NULL,
    name          TEXT,
    session_id    TEXT,
    parent_run_id TEXT,
    status        TEXT NOT NULL,
    steps         BIGINT NOT NULL,
    total_ms      DOUBLE PRECISION NOT NULL,
    error_count   NUMERIC(20, 0) NOT NULL,
    failed_steps  NUMERIC(20, 0) NOT NULL,
    input_tokens  NUMERIC(20, 0) NOT NULL,
    output_tokens NUMERIC(20, 0) NOT NULL,
    cost_nano_usd NUMERIC(20, 0) NOT NULL,
    summary       TEXT NOT NULL,
    body          TEXT NOT NULL,
    search_text   TEXT NOT NULL
);
CREATE INDEX traces_order ON {traces} (created_at DESC, run_id DESC);
CREATE INDEX traces_name ON {traces} (name, created_at DESC, run_id DESC);
CREATE INDEX traces_session ON {traces} (session_id, created_at DESC, run_id DESC);
CREATE INDEX traces_parent ON {traces} (parent_run_id, created_at DESC, run_id DESC);
CREATE INDEX traces_status ON {traces} (status, created_at DESC, run_id DESC);
CREATE INDEX traces_steps ON {traces} (steps);
CREATE INDEX traces_text ON {traces} USING gin (search_text public.gin_trgm_ops);
CREATE TABLE {metadata} (
    run_id TEXT COLLATE "C" NOT NULL REFERENCES {traces} (run_id) ON DELETE CASCADE,
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);
CREATE INDEX metadata_value ON {metadata} (key, value);
CREATE TABLE {scores} (
    run_id TEXT COLLATE "C" NOT NULL REFERENCES {traces} (run_id) ON DELETE CASCADE,
    name   TEXT NOT NULL,
    value  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (run_id, name)
);
CREATE INDEX scores_value ON {scores} (name, value);
CREATE TABLE {models} (
    run_id        TEXT COLLATE "C" NOT NULL REFERENCES {traces} (run_id) ON DELETE CASCADE,
    model         TEXT NOT NULL,
    calls         NUMERIC(20, 0) NOT NULL,
    input_tokens  NUMERIC(20, 0) NOT NULL,
    output_tokens NUMERIC(20, 0) NOT NULL,
    cost_nano_usd NUMERIC(20, 0) NOT NULL,
    PRIMARY KEY (run_id, model)
);
"#,
        traces = t.traces,
        metadata = t.metadata,
        scores = t.scores,
        models = t.models,
    )
}
