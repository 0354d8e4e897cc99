//! Tables, indexes and their migrations, versioned in a table of the store's schema.

use futures_util::future::try_join_all;
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;
use trace_store_core::{Error, Result, Trace};

use crate::error::{Failure, backend};
use crate::pool::Session;
use crate::sql::Tables;
use crate::write::{Row, WriteSql, flush_keys, index_pending};

/// The layout this code writes and the newest it reads.
pub const SCHEMA_VERSION: i32 = 3;

/// Rows re-derived per read while migrating layout 1.
const MIGRATION_BATCH: i64 = 500;

/// Every store, whatever its schema, takes this advisory lock while it creates or
/// migrates tables: `CREATE SCHEMA IF NOT EXISTS` races with itself otherwise.
const SETUP_LOCK: i64 = 0x7472_6163_6573_746f; // "tracesto"

/// Creates or migrates the store's tables; a newer layout is `UnsupportedVersion`.
pub(crate) async fn migrate(db: &Session, tables: &Tables) -> Result<()> {
    db.batch_execute("BEGIN")
        .await
        .map_err(|e| backend("starting the schema migration", e))?;
    match migrate_in(db, tables).await {
        Ok(()) => db
            .batch_execute("COMMIT")
            .await
            .map_err(|e| backend("committing the schema migration", e)),
        Err(error) => {
            // The connection goes back to the pool: leave no transaction open on it.
            let _ = db.batch_execute("ROLLBACK").await;
            Err(error)
        }
    }
}

async fn migrate_in(tx: &Client, tables: &Tables) -> Result<()> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SETUP_LOCK])
        .await
        .map_err(|e| backend("locking for the schema migration", e))?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS {version} (version INTEGER NOT NULL);",
        schema = tables.schema,
        version = tables.version
    ))
    .await
    .map_err(|e| backend(format!("creating the schema {}", tables.schema), e))?;
    let found: Option<i32> = tx
        .query_opt(&format!("SELECT max(version) FROM {}", tables.version), &[])
        .await
        .map_err(|e| backend("reading the schema version", e))?
        .and_then(|row| row.get(0));
    match found.unwrap_or(0) {
        0 => {
            tx.batch_execute(&create_v3(tables))
                .await
                .map_err(|e| backend("creating the tables", e))?;
            tx.execute(
                &format!("INSERT INTO {} (version) VALUES ($1)", tables.version),
                &[&SCHEMA_VERSION],
            )
            .await
            .map_err(|e| backend("recording the schema version", e))?;
            use_lz4(tx, tables).await?;
        }
        1 => {
            migrate_v1(tx, tables).await?;
            use_lz4(tx, tables).await?;
        }
        2 => {
            migrate_v2(tx, tables).await?;
            use_lz4(tx, tables).await?;
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
    Ok(())
}

/// Layout 1 to 3: the metadata and per-model rows move into the trace's row, the
/// `pg_trgm` index gives way to the window keys, foreign keys go, and every derived
/// column is written again from the stored body by the code that saves.
async fn migrate_v1(tx: &Client, t: &Tables) -> Result<()> {
    let failed = |e| backend(format!("migrating schema {} to layout 3", t.schema), e);
    let added: Vec<String> = ROW_COLUMNS
        .iter()
        .map(|(name, kind)| format!("ADD COLUMN {name} {kind} NOT NULL DEFAULT '{{}}'"))
        .collect();
    let defaults_dropped: Vec<String> = ROW_COLUMNS
        .iter()
        .map(|(name, _)| format!("ALTER COLUMN {name} DROP DEFAULT"))
        .collect();
    tx.batch_execute(&format!(
        "DROP INDEX {s}.traces_text, {s}.traces_name, {s}.traces_session, {s}.traces_parent,
             {s}.traces_status, {s}.traces_steps;
         ALTER TABLE {scores} DROP CONSTRAINT IF EXISTS scores_run_id_fkey;
         ALTER TABLE {traces} {};
         {}",
        added.join(", "),
        text_tables(t),
        s = t.schema,
        scores = t.scores,
        traces = t.traces,
    ))
    .await
    .map_err(failed)?;
    let sql = WriteSql::new(t);
    let upsert = tx.prepare(&sql.upsert).await.map_err(failed)?;
    let read = tx
        .prepare(&format!(
            "SELECT run_id, body FROM {} WHERE run_id > $1 ORDER BY run_id LIMIT $2",
            t.traces
        ))
        .await
        .map_err(failed)?;
    let mut after = String::new();
    loop {
        let stored = tx
            .query(&read, &[&after, &MIGRATION_BATCH])
            .await
            .map_err(failed)?;
        let Some(last) = stored.last() else { break };
        after = last.get(0);
        let rows = stored
            .iter()
            .map(|row| Row::new(&Trace::from_json_slice(row.get::<_, &str>(1).as_bytes())?))
            .collect::<Result<Vec<_>>>()?;
        try_join_all(rows.iter().map(|row| tx.execute_raw(&upsert, row.params())))
            .await
            .map_err(failed)?;
    }
    tx.batch_execute(&format!(
        "ALTER TABLE {traces} {};
         {}
         DROP TABLE {metadata}, {models};
         UPDATE {version} SET version = {SCHEMA_VERSION};",
        defaults_dropped.join(", "),
        row_indexes(t),
        traces = t.traces,
        metadata = t.metadata,
        models = t.models,
        version = t.version,
    ))
    .await
    .map_err(failed)?;
    while index_pending(tx, &sql, MIGRATION_BATCH).await? > 0 {}
    flush_keys(tx, &sql).await?;
    Ok(())
}

/// Layout 2 to 3: the text keys leave the trace's row for a table of their own, which
/// saves leave to be filled later (see `write::index_pending`).
async fn migrate_v2(tx: &Client, t: &Tables) -> Result<()> {
    tx.batch_execute(&format!(
        "{}
         INSERT INTO {keys} (run_id, keys) SELECT run_id, search_keys FROM {traces};
         DROP INDEX {s}.traces_keys;
         ALTER TABLE {traces} DROP COLUMN search_keys;
         UPDATE {version} SET version = {SCHEMA_VERSION};",
        text_tables(t),
        keys = t.text_keys,
        traces = t.traces,
        s = t.schema,
        version = t.version,
    ))
    .await
    .map_err(|e| backend(format!("migrating schema {} to layout 3", t.schema), e))
}

/// Layout 3. Strings that may hold any character (names, sessions, metadata keys,
/// models) are stored JSON-encoded; run_ids sort in byte order (`COLLATE "C"`), as the
/// contract's tie-break requires whatever the database's locale. Everything a save
/// writes but scores lives in the trace's own row, so a save is one row, its indexes
/// and no foreign-key checks: metadata as `key || value` pairs (JSON key, canonical JSON
/// value) under a GIN index, per-model usage as parallel arrays. Indexes on columns most
/// traces leave empty are partial, so they cost nothing for those traces. The text
/// index is in tables of its own (see [`text_tables`]).
fn create_v3(t: &Tables) -> String {
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
    search_text   TEXT NOT NULL,
    {row_columns}
);
CREATE INDEX traces_order ON {traces} (created_at DESC, run_id DESC);
{row_indexes}
{text_tables}
CREATE TABLE {scores} (
    run_id TEXT COLLATE "C" NOT NULL,
    name   TEXT NOT NULL,
    value  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (run_id, name)
);
CREATE INDEX scores_value ON {scores} (name, value);
"#,
        traces = t.traces,
        scores = t.scores,
        row_columns = ROW_COLUMNS
            .iter()
            .map(|(name, kind)| format!("{name} {kind} NOT NULL"))
            .collect::<Vec<_>>()
            .join(",\n    "),
        row_indexes = row_indexes(t),
        text_tables = text_tables(t),
    )
}

/// The columns layout 2 added to `traces` and layout 3 kept.
const ROW_COLUMNS: [(&str, &str); 6] = [
    ("meta", "TEXT[]"),
    ("model_names", "TEXT[]"),
    ("model_calls", "NUMERIC(20, 0)[]"),
    ("model_input_tokens", "NUMERIC(20, 0)[]"),
    ("model_output_tokens", "NUMERIC(20, 0)[]"),
    ("model_cost_nano_usd", "NUMERIC(20, 0)[]"),
];

/// The indexes of `traces` besides its key and its order.
fn row_indexes(t: &Tables) -> String {
    format!(
        "CREATE INDEX traces_name ON {traces} (name, created_at DESC, run_id DESC)
             WHERE name IS NOT NULL;
         CREATE INDEX traces_session ON {traces} (session_id, created_at DESC, run_id DESC)
             WHERE session_id IS NOT NULL;
         CREATE INDEX traces_parent ON {traces} (parent_run_id, created_at DESC, run_id DESC)
             WHERE parent_run_id IS NOT NULL;
         CREATE INDEX traces_status ON {traces} (status, created_at DESC, run_id DESC)
             WHERE status <> 'ok';
         CREATE INDEX traces_meta ON {traces} USING gin (meta) WITH (fastupdate = off);",
        traces = t.traces
    )
}

/// The text index: each trace's window keys (see `keys`) under a GIN index, and the
/// run_ids saved since their keys were last computed. A save only marks its run_id
/// pending (inserting hundreds of keys into the GIN index was most of a save's server
/// time); `write::index_pending` computes the keys of pending traces in batches, and a
/// text query takes every pending trace as a candidate, so answers never wait for it.
/// A batch's keys go to the GIN index's pending list, large enough for any batch, and
/// are merged into the tree at the end of the batch, so searches never read a long list.
fn text_tables(t: &Tables) -> String {
    format!(
        r#"CREATE TABLE {keys} (
             run_id TEXT COLLATE "C" PRIMARY KEY,
             keys   INTEGER[] NOT NULL
         );
         ALTER TABLE {keys} ALTER keys SET STORAGE EXTERNAL;
         CREATE INDEX text_keys_keys ON {keys} USING gin (keys)
             WITH (gin_pending_list_limit = 65536);
         CREATE TABLE {pending} (run_id TEXT COLLATE "C" PRIMARY KEY);"#,
        keys = t.text_keys,
        pending = t.text_pending,
    )
}

/// The body and the search text, most of a save's bytes, compressed with LZ4 rather
/// than the default `pglz`, which took about a third of a save's server time. A server
/// built without LZ4 keeps the default. Only values written afterwards change.
async fn use_lz4(tx: &Client, t: &Tables) -> Result<()> {
    let failed = |e| backend("choosing the column compression", e);
    tx.batch_execute("SAVEPOINT lz4").await.map_err(failed)?;
    let alter = format!(
        "ALTER TABLE {} ALTER body SET COMPRESSION lz4, ALTER search_text SET COMPRESSION lz4",
        t.traces
    );
    match tx.batch_execute(&alter).await {
        Ok(()) => tx.batch_execute("RELEASE SAVEPOINT lz4").await,
        Err(e) if e.code() == Some(&SqlState::FEATURE_NOT_SUPPORTED) => {
            tx.batch_execute("ROLLBACK TO SAVEPOINT lz4").await
        }
        Err(e) => Err(e),
    }
    .map_err(failed)
}
