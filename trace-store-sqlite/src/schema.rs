//! The database schema, how it is recognised and how it is migrated.
//!
//! A trace-store database is marked in the SQLite header: `PRAGMA application_id` is
//! [`APPLICATION_ID`] and `PRAGMA user_version` the schema version. A file is inspected
//! read-only before anything is written, so a foreign SQLite database, a file that is
//! not SQLite at all, or a database from a newer trace-store is refused unchanged.
//! (Except by SQLite itself: a read rolls back a transaction left in a hot rollback
//! journal by a program that died, which that program would do on its next start.)

use rusqlite::{Connection, Transaction, TransactionBehavior};
use trace_store_core::{Error, Result, TraceSummary};

use crate::{error, rows};

/// `PRAGMA application_id` of every trace-store database: "TrSt" in ASCII.
pub(crate) const APPLICATION_ID: i32 = 0x5472_5374;

/// Schema version 1.
///
/// - `traces`: one row per trace with the summary columns `query` filters, orders and
///   returns. `created_at` is INTEGER microseconds (never text: text compares wrong across
///   offsets and precisions). `run_id` compares with the BINARY collation, i.e. by bytes,
///   as `Cursor` does. Unsigned counters are stored bit for bit as INTEGER (SQLite has no
///   u64); `stats` notices a value past `i64::MAX` and falls back to exact arithmetic.
///   `metadata` and `models` are the summary's maps as JSON, NULL when empty, so a page
///   is built from this one row.
/// - `trace_bodies`: the whole trace as JSON, apart from `traces` so that scans of
///   summaries touch a few compact pages instead of every body.
/// - `trace_metadata`: one row per top-level metadata entry, keyed by
///   `(key, canonical_json(value), trace id)`: the one B-tree a `metadata_match` looks
///   up and an upsert or delete updates (the old pairs come from `traces.metadata`).
/// - `trace_models`: per-model calls, tokens and cost of each trace, which `stats`
///   joins and sums (three times faster than `json_each` over `traces.models`; a new
///   trace appends to its rightmost page).
///
/// Every B-tree a save touches costs a page in the write-ahead log, so there are as
/// few as the queries allow: the table, its run_id and created_at indexes, the bodies
/// and the metadata.
const V1: &str = "
CREATE TABLE traces (
    id            INTEGER PRIMARY KEY,
    run_id        TEXT    NOT NULL UNIQUE,
    created_at    INTEGER NOT NULL,
    name          TEXT,
    status        TEXT    NOT NULL,
    steps         INTEGER NOT NULL,
    total_ms      REAL    NOT NULL,
    error_count   INTEGER NOT NULL,
    input_tokens  INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cost_nano_usd INTEGER NOT NULL,
    models        TEXT,
    metadata      TEXT
);
CREATE INDEX traces_by_created_at ON traces (created_at DESC, run_id DESC);

CREATE TABLE trace_bodies (
    id   INTEGER PRIMARY KEY,
    body TEXT NOT NULL
);

CREATE TABLE trace_metadata (
    key      TEXT    NOT NULL,
    value    TEXT    NOT NULL,
    trace_id INTEGER NOT NULL,
    PRIMARY KEY (key, value, trace_id)
) WITHOUT ROWID;

CREATE TABLE trace_models (
    trace_id      INTEGER NOT NULL,
    model         TEXT    NOT NULL,
    calls         INTEGER NOT NULL,
    input_tokens  INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cost_nano_usd INTEGER NOT NULL,
    PRIMARY KEY (trace_id, model)
) WITHOUT ROWID;
";

/// Schema version 2 (contract v2: sessions, scores, text search, failed steps).
///
/// - `traces` gains the summary's new fields: `session_id` and `parent_run_id` (each
///   with a partial index in list order, so a session's runs or a parent's children are
///   an index range, and traces without one cost no index page), `failed_steps`, and
///   `scores`, the summary's score map as JSON (NULL when empty).
/// - `trace_scores`: one row per trace-level score with a value, so a score filter is a
///   primary-key probe and a range over `(name, value)` can drive a query.
/// - `trace_text`: core's `Trace::search_text` of each trace whose text is not empty,
///   which core's predicate rechecks.
/// - `trace_trigrams`: an FTS5 index of that text with the `trigram` tokenizer, rowid
///   = `traces.id`. Contentless (the text is in `trace_text`) with
///   `contentless_delete`, so a delete marks the row gone instead of re-tokenizing the
///   old text (a purge of 50,000 traces took 7 s that way); `detail=none` keeps it
///   small (no positions). It only narrows: see `sql::plan_text`.
///
/// The new columns and tables of traces written by schema 1 are filled by
/// [`backfill_v2`] in the same transaction.
const V2: &str = "
ALTER TABLE traces ADD COLUMN session_id TEXT;
ALTER TABLE traces ADD COLUMN parent_run_id TEXT;
ALTER TABLE traces ADD COLUMN failed_steps INTEGER NOT NULL DEFAULT 0;
ALTER TABLE traces ADD COLUMN scores TEXT;
CREATE INDEX traces_by_session ON traces (session_id, created_at DESC, run_id DESC)
    WHERE session_id IS NOT NULL;
CREATE INDEX traces_by_parent ON traces (parent_run_id, created_at DESC, run_id DESC)
    WHERE parent_run_id IS NOT NULL;

CREATE TABLE trace_scores (
    trace_id INTEGER NOT NULL,
    name     TEXT    NOT NULL,
    value    REAL    NOT NULL,
    PRIMARY KEY (trace_id, name)
) WITHOUT ROWID;
CREATE INDEX trace_scores_by_value ON trace_scores (name, value);

CREATE TABLE trace_text (
    id   INTEGER PRIMARY KEY,
    text TEXT NOT NULL
);
CREATE VIRTUAL TABLE trace_trigrams USING fts5(
    text, content = '', contentless_delete = 1, tokenize = 'trigram', detail = 'none'
);
";

/// Schema version 3 (speed): `traces.models` holds the per-model usage in the packed
/// format of `packed.rs` instead of JSON (a listed summary decodes it without a JSON
/// parser), and `trace_models` is gone: `stats` adds the usage up from that column in
/// its one pass over the selected rows, and a save writes one B-tree fewer.
/// [`backfill_v3`] re-encodes every stored trace's usage.
const V3: &str = "DROP TABLE trace_models;";

/// Schema version 4 (speed): `trace_text_pending`, the traces whose text the trigram
/// index has yet to take (`stale`: it may hold an entry for an older text), so that
/// saves index their text in batches (see `text.rs`).
const V4: &str = "
CREATE TABLE trace_text_pending (
    id    INTEGER PRIMARY KEY,
    stale INTEGER NOT NULL
);
";

/// Schema version 5 (speed): `traces.summary`, the whole summary but its run_id and
/// created_at in the packed format of `packed.rs`, so that a listed summary is one
/// column and no JSON parse (the metadata's JSON was a quarter of `list`, and reading
/// 16 columns through rusqlite another fifth). The columns that filters and `stats`
/// read stay; `metadata` and `scores` are NULL from now on (their content is in
/// `summary`). [`backfill_v5`] packs every stored trace's summary from its columns.
const V5: &str = "ALTER TABLE traces ADD COLUMN summary BLOB;";

/// One step of the schema's history.
struct Migration {
    /// Creates or alters the tables.
    sql: &'static str,
    /// Then fills what the new schema derives from the rows already stored.
    backfill: Option<fn(&Transaction<'_>) -> rusqlite::Result<()>>,
}

/// `MIGRATIONS[v]` turns a database at schema version `v` into version `v + 1`.
const MIGRATIONS: &[Migration] = &[
    Migration {
        sql: V1,
        backfill: None,
    },
    Migration {
        sql: V2,
        backfill: Some(backfill_v2),
    },
    Migration {
        sql: V3,
        backfill: Some(backfill_v3),
    },
    Migration {
        sql: V4,
        backfill: None,
    },
    Migration {
        sql: V5,
        backfill: Some(backfill_v5),
    },
];

/// The schema version this library writes and the newest it opens.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Fills schema 2's columns, scores and searchable text of every trace from its body,
/// by core's own summary and `search_text`. A body that does not decode (edited by
/// hand) keeps the defaults: it is reported as corrupt when loaded, as before.
fn backfill_v2(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let mut read = tx.prepare("SELECT id, body FROM trace_bodies ORDER BY id")?;
    let mut rows = read.query([])?;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        let Ok(trace) = trace_store_core::Trace::from_json_slice(row.get_ref(1)?.as_bytes()?)
        else {
            continue;
        };
        rows::backfill(tx, id, &trace)?;
    }
    Ok(())
}

/// Re-encodes `traces.models` from JSON to the packed format. A value that does not
/// decode (edited by hand) is left as it is: it stays reported as corrupt when read.
fn backfill_v3(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let mut read = tx.prepare("SELECT id, models FROM traces WHERE models IS NOT NULL")?;
    let mut update = tx.prepare("UPDATE traces SET models = ?2 WHERE id = ?1")?;
    let mut rows = read.query([])?;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        let Ok(models) = serde_json::from_slice::<
            std::collections::BTreeMap<String, trace_store_core::ModelUsage>,
        >(row.get_ref(1)?.as_bytes()?) else {
            continue;
        };
        update.execute(rusqlite::params![id, crate::packed::encode_models(&models)])?;
    }
    Ok(())
}

/// Packs `traces.summary` from schema 4's columns and clears `metadata` and `scores`.
/// A row whose columns do not decode (edited by hand) is left as it is, without a
/// summary: it is reported as corrupt when listed, as before.
fn backfill_v5(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let mut read = tx.prepare(
        "SELECT id, run_id, name, status, created_at, steps, total_ms, error_count, input_tokens,
             output_tokens, cost_nano_usd, models, metadata, session_id, parent_run_id,
             failed_steps, scores
         FROM traces",
    )?;
    let mut update =
        tx.prepare("UPDATE traces SET summary = ?2, metadata = NULL, scores = NULL WHERE id = ?1")?;
    let template = rows::template();
    let mut rows = read.query([])?;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        if let Some(summary) = v4_summary(row, &template) {
            update.execute(rusqlite::params![
                id,
                crate::packed::encode_summary(&summary)
            ])?;
        }
    }
    Ok(())
}

/// The summary in schema 4's columns (from the second on; the first is the id), or
/// `None` if they do not decode.
fn v4_summary(row: &rusqlite::Row<'_>, template: &TraceSummary) -> Option<TraceSummary> {
    use std::collections::BTreeMap;
    let u64_at = |index| row.get::<_, i64>(index).ok().map(|n| n as u64);
    let json_at =
        |index| -> Option<Option<&[u8]>> { row.get_ref(index).ok()?.as_bytes_or_null().ok() };
    let mut s = template.clone();
    s.run_id = row.get(1).ok()?;
    s.name = row.get(2).ok()?;
    s.status = row.get_ref(3).ok()?.as_str().ok()?.parse().ok()?;
    s.created_at = trace_store_core::Timestamp::from_micros(row.get(4).ok()?).ok()?;
    s.steps = usize::try_from(row.get::<_, i64>(5).ok()?).ok()?;
    s.total_ms = row.get(6).ok()?;
    s.error_count = u64_at(7)?;
    s.input_tokens = u64_at(8)?;
    s.output_tokens = u64_at(9)?;
    s.cost_nano_usd = row.get(10).ok()?;
    if let Some(models) = row.get_ref(11).ok()?.as_blob_or_null().ok()? {
        s.models = crate::packed::models_map(models).ok()?;
    }
    if let Some(metadata) = json_at(12)? {
        s.metadata =
            serde_json::from_slice::<BTreeMap<String, serde_json::Value>>(metadata).ok()?;
    }
    s.session_id = row.get(13).ok()?;
    s.parent_run_id = row.get(14).ok()?;
    s.failed_steps = u64_at(15)?;
    if let Some(scores) = json_at(16)? {
        s.scores = serde_json::from_slice::<BTreeMap<String, f64>>(scores).ok()?;
    }
    Some(s)
}

/// What the header and catalogue of a database say.
struct Identity {
    application_id: i32,
    user_version: u32,
    /// Names of the tables, indexes, views and triggers in it.
    objects: Vec<String>,
}

impl Identity {
    /// A trace-store database at this library's schema version: nothing to do.
    fn is_current(&self) -> bool {
        self.application_id == APPLICATION_ID && self.user_version == SCHEMA_VERSION
    }
}

/// Reads the header and catalogue. Run it inside a transaction: they must come from one
/// snapshot, or a database another process creates meanwhile can look half made (no
/// `application_id` yet, but tables) and be refused as foreign.
fn identify(conn: &Connection) -> rusqlite::Result<Identity> {
    let application_id = conn.query_row("PRAGMA application_id", [], |row| row.get(0))?;
    // A signed 32-bit integer in the header; a negative one is nobody's schema version
    // this library knows, like a newer one.
    let user_version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let user_version = u32::try_from(user_version).unwrap_or(u32::MAX);
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY name")?;
    let objects = stmt
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Identity {
        application_id,
        user_version,
        objects,
    })
}

/// Refuses a database this library must not touch; `Ok(())` for an empty database
/// or a trace-store database of this or an older schema version.
fn check(identity: &Identity, location: &str) -> Result<()> {
    if identity.application_id == APPLICATION_ID {
        if identity.user_version > SCHEMA_VERSION {
            return Err(Error::UnsupportedVersion {
                found: identity.user_version,
                supported: SCHEMA_VERSION,
            });
        }
        return Ok(());
    }
    if identity.application_id == 0 && identity.objects.is_empty() {
        return Ok(());
    }
    let mut what = String::new();
    if identity.application_id != 0 {
        what.push_str(&format!(
            " with application_id {:#010x}",
            identity.application_id
        ));
    }
    if !identity.objects.is_empty() {
        what.push_str(&format!(
            " holding {}",
            identity
                .objects
                .iter()
                .take(5)
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        ));
        if identity.objects.len() > 5 {
            what.push_str(", ...");
        }
    }
    Err(Error::invalid(format!(
        "{location} is not a trace-store database: it is a SQLite database{what}; \
         trace-store did not modify it (use a new file for traces)"
    )))
}

/// Inspects the database read-only and refuses it if it is not one this library may
/// write to. Must run before anything changes the file (even `journal_mode`).
pub(crate) fn check_before_writing(conn: &Connection, location: &str) -> Result<()> {
    read_identity(conn, location).map(|_| ())
}

/// [`identify`] in a read transaction, then [`check`].
fn read_identity(conn: &Connection, location: &str) -> Result<Identity> {
    let read = || -> rusqlite::Result<Identity> {
        // Deferred: reads only, takes no write lock. Dropping it ends it.
        let tx = conn.unchecked_transaction()?;
        identify(&tx)
    };
    let identity = read().map_err(|e| error::map(location, "reading the database header", e))?;
    check(&identity, location)?;
    Ok(identity)
}

/// Checks that a database opened read-only can be read as it is: a trace-store
/// database at this library's schema version (an older one would need the migration
/// only a writable store can run).
pub(crate) fn check_readable(conn: &Connection, location: &str) -> Result<()> {
    let identity = read_identity(conn, location)?;
    if identity.is_current() {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "{location} holds no trace-store database at schema version {SCHEMA_VERSION} \
         (it has {}); open it writable once to create or upgrade it, then read-only",
        if identity.application_id == APPLICATION_ID {
            format!("version {}", identity.user_version)
        } else {
            "none".to_owned()
        }
    )))
}

/// Brings the schema to [`SCHEMA_VERSION`], one migration per version, in one
/// `BEGIN IMMEDIATE` transaction; another process opening the same new file at the same
/// time waits for it and then finds the work done.
///
/// A database already at [`SCHEMA_VERSION`] is only read: opening a store must not
/// wait for (or fail behind) another process's long write transaction.
pub(crate) fn migrate(conn: &mut Connection, location: &str) -> Result<()> {
    if read_identity(conn, location)?.is_current() {
        return Ok(());
    }
    let map = |e| error::map(location, "creating or migrating the schema", e);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(map)?;
    // Look again inside the transaction: another process may have got here first.
    let identity = identify(&tx).map_err(map)?;
    check(&identity, location)?;
    if identity.is_current() {
        return Ok(());
    }
    // An empty database without our mark starts from nothing, whatever its
    // user_version says.
    let from = if identity.application_id == APPLICATION_ID {
        identity.user_version as usize
    } else {
        0
    };
    for migration in MIGRATIONS.get(from..).unwrap_or_default() {
        tx.execute_batch(migration.sql).map_err(map)?;
        if let Some(backfill) = migration.backfill {
            backfill(&tx).map_err(map)?;
        }
    }
    // PRAGMA values cannot be bound parameters; both are integers this crate controls.
    tx.execute_batch(&format!(
        "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {SCHEMA_VERSION};"
    ))
    .map_err(map)?;
    tx.commit().map_err(map)
}
