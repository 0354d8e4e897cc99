//! One trace as rows (write side), and summary columns back into a `TraceSummary`
//! (read side).

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, Row, ToSql, Transaction, params, params_from_iter};
use trace_store_core::{Result, Timestamp, Trace, TraceSummary, canonical_json};

use crate::error::bad_column;

/// A trace turned into everything its rows hold, computed before the write lock is taken.
pub(crate) struct Encoded {
    summary: TraceSummary,
    body: String,
    /// The summary packed (`packed.rs`): what a listed summary reads.
    packed: Vec<u8>,
    /// Its per-model usage packed alone: what `stats` reads.
    models: Option<Vec<u8>>,
    /// `(key, canonical_json(value))` of each metadata entry.
    canonical: Vec<(String, String)>,
    /// Core's `Trace::search_text`, for the FTS table.
    search_text: String,
}

impl Encoded {
    /// Validates and encodes `trace`; invalid input is an error and nothing is written.
    pub(crate) fn new(trace: &Trace) -> Result<Encoded> {
        trace.validate()?;
        let summary = TraceSummary::from(trace);
        let body = trace.to_json_string()?;
        let packed = crate::packed::encode_summary(&summary);
        let models = crate::packed::encode_models(&summary.models);
        let canonical = summary
            .metadata
            .iter()
            .map(|(key, value)| (key.clone(), canonical_json(value)))
            .collect();
        Ok(Encoded {
            summary,
            body,
            packed,
            models,
            canonical,
            search_text: trace.search_text(),
        })
    }

    /// Inserts or replaces the trace; the caller's transaction makes it atomic.
    pub(crate) fn write(&self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        self.put(tx, true).map(|_| ())
    }

    /// Inserts the trace if its run_id is free and says whether it did; a stored
    /// trace with that run_id is left as it is.
    pub(crate) fn insert_new(&self, tx: &Transaction<'_>) -> rusqlite::Result<bool> {
        self.put(tx, false)
    }

    /// Inserts the trace, or replaces the stored one when `replace`; true if the
    /// trace was written.
    fn put(&self, tx: &Transaction<'_>, replace: bool) -> rusqlite::Result<bool> {
        let s = &self.summary;
        let (created_at, steps, error_count) = (
            s.created_at.as_micros(),
            to_sql_u64(s.steps as u64),
            to_sql_u64(s.error_count),
        );
        let (input_tokens, output_tokens, failed_steps) = (
            to_sql_u64(s.input_tokens),
            to_sql_u64(s.output_tokens),
            to_sql_u64(s.failed_steps),
        );
        let columns: [&dyn ToSql; 15] = [
            &s.run_id,
            &created_at,
            &s.name,
            &s.status.as_str(),
            &steps,
            &s.total_ms,
            &error_count,
            &input_tokens,
            &output_tokens,
            &s.cost_nano_usd,
            &self.models,
            &self.packed,
            &s.session_id,
            &s.parent_run_id,
            &failed_steps,
        ];
        // Most saves are of new traces: try the insert first, and look for the old row
        // only when the run_id is taken.
        let inserted = tx
            .prepare_cached(
                "INSERT INTO traces (run_id, created_at, name, status, steps, total_ms,
                     error_count, input_tokens, output_tokens, cost_nano_usd, models, summary,
                     session_id, parent_run_id, failed_steps)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
                 ON CONFLICT (run_id) DO NOTHING",
            )?
            .execute(columns)?;
        if inserted == 0 && !replace {
            return Ok(false);
        }
        let (id, mut stale) = if inserted == 1 {
            let id = tx.last_insert_rowid();
            tx.prepare_cached("INSERT INTO trace_bodies (id, body) VALUES (?1, ?2)")?
                .execute(params![id, self.body])?;
            (id, BTreeMap::new())
        } else {
            let (id, old_metadata) = tx
                .prepare_cached("SELECT id, summary FROM traces WHERE run_id = ?1")?
                .query_row([&s.run_id], |row| Ok((row.get(0)?, bytes_or_null(row, 1)?)))?;
            // run_id (?1) is left alone: setting it, even to itself, rewrites its index.
            tx.prepare_cached(
                "UPDATE traces SET created_at = ?2, name = ?3, status = ?4, steps = ?5,
                     total_ms = ?6, error_count = ?7, input_tokens = ?8, output_tokens = ?9,
                     cost_nano_usd = ?10, models = ?11, summary = ?12, session_id = ?13,
                     parent_run_id = ?14, failed_steps = ?15, metadata = NULL, scores = NULL
                 WHERE id = ?16",
            )?
            .execute(params_from_iter(
                columns.iter().copied().chain([&id as &dyn ToSql]),
            ))?;
            tx.prepare_cached("UPDATE trace_bodies SET body = ?2 WHERE id = ?1")?
                .execute(params![id, self.body])?;
            tx.prepare_cached("DELETE FROM trace_scores WHERE trace_id = ?1")?
                .execute([id])?;
            (id, metadata_pairs(tx, id, old_metadata.as_deref())?)
        };
        // Only the entries that changed: an upsert with the same metadata touches no
        // metadata page at all.
        let mut insert = Vec::new();
        for (key, value) in &self.canonical {
            if stale.get(key) == Some(value) {
                stale.remove(key);
            } else {
                insert.push((key, value));
            }
        }
        delete_metadata(tx, id, &stale)?;
        if !insert.is_empty() {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO trace_metadata (key, value, trace_id) VALUES (?1, ?2, ?3)",
            )?;
            for (key, value) in insert {
                stmt.execute(params![key, value, id])?;
            }
        }
        write_scores(tx, id, &s.scores)?;
        crate::text::write(tx, id, &self.search_text, inserted == 1)?;
        Ok(true)
    }
}

/// Inserts the score rows of trace `id`, which has none yet.
fn write_scores(
    tx: &Transaction<'_>,
    id: i64,
    scores: &BTreeMap<String, f64>,
) -> rusqlite::Result<()> {
    if !scores.is_empty() {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO trace_scores (trace_id, name, value) VALUES (?1, ?2, ?3)",
        )?;
        for (name, value) in scores {
            stmt.execute(params![id, name, value])?;
        }
    }
    Ok(())
}

/// Fills the columns, scores and text that schema 2 added, for trace `id` written by
/// schema 1 (see `schema::backfill_v2`).
pub(crate) fn backfill(tx: &Transaction<'_>, id: i64, trace: &Trace) -> rusqlite::Result<()> {
    let summary = TraceSummary::from(trace);
    let scores = if summary.scores.is_empty() {
        None
    } else {
        serde_json::to_string(&summary.scores).ok()
    };
    tx.prepare_cached(
        "UPDATE traces SET session_id = ?2, parent_run_id = ?3, failed_steps = ?4, scores = ?5
         WHERE id = ?1",
    )?
    .execute(params![
        id,
        summary.session_id,
        summary.parent_run_id,
        to_sql_u64(summary.failed_steps),
        scores
    ])?;
    write_scores(tx, id, &summary.scores)?;
    // Straight into the index: schema 2 has no pending traces.
    let text = trace.search_text();
    if !text.is_empty() {
        tx.prepare_cached("INSERT INTO trace_text (id, text) VALUES (?1, ?2)")?
            .execute(params![id, text])?;
        tx.prepare_cached("INSERT INTO trace_trigrams (rowid, text) VALUES (?1, ?2)")?
            .execute(params![id, text])?;
    }
    Ok(())
}

/// The stored body of `run_id` as bytes; `None` if there is no such trace.
pub(crate) fn body(conn: &Connection, run_id: &str) -> rusqlite::Result<Option<Vec<u8>>> {
    conn.prepare_cached(LOAD)?
        .query_row([run_id], |row| Ok(row.get_ref(0)?.as_bytes()?.to_vec()))
        .optional()
}

const LOAD: &str =
    "SELECT b.body FROM traces t JOIN trace_bodies b ON b.id = t.id WHERE t.run_id = ?1";

/// The stored body of `run_id`, decoded; `None` if there is no such trace.
pub(crate) fn load(conn: &Connection, run_id: &str) -> rusqlite::Result<Option<Result<Trace>>> {
    let mut stmt = conn.prepare_cached(LOAD)?;
    let mut rows = stmt.query([run_id])?;
    match rows.next()? {
        // Decode straight from SQLite's buffer: bodies can be megabytes.
        Some(row) => Ok(Some(Trace::from_json_slice(row.get_ref(0)?.as_bytes()?))),
        None => Ok(None),
    }
}

/// Removes the trace and every row derived from it; true if it existed.
pub(crate) fn delete(tx: &Transaction<'_>, run_id: &str) -> rusqlite::Result<bool> {
    let old: Option<(i64, Option<Vec<u8>>)> = tx
        .prepare_cached("DELETE FROM traces WHERE run_id = ?1 RETURNING id, summary")?
        .query_row([run_id], |row| Ok((row.get(0)?, bytes_or_null(row, 1)?)))
        .optional()?;
    let Some((id, metadata)) = old else {
        return Ok(false);
    };
    delete_derived(tx, id, metadata.as_deref())?;
    Ok(true)
}

/// Removes the rows of trace `id` beside its `traces` row, whose `summary` column was
/// `summary`.
fn delete_derived(tx: &Transaction<'_>, id: i64, summary: Option<&[u8]>) -> rusqlite::Result<()> {
    for sql in [
        "DELETE FROM trace_bodies WHERE id = ?1",
        "DELETE FROM trace_scores WHERE trace_id = ?1",
    ] {
        tx.prepare_cached(sql)?.execute([id])?;
    }
    crate::text::delete(tx, id)?;
    let pairs = metadata_pairs(tx, id, summary)?;
    delete_metadata(tx, id, &pairs)
}

/// Up to this many traces, `delete_selected` deletes trace by trace through the
/// indexes; past it, one pass per table costs less than a lookup per row.
const BULK_DELETE_FROM: usize = 256;

/// Deletes every trace the statement selects (it returns `t.id`), in the caller's
/// transaction, and says how many.
pub(crate) fn delete_selected(
    tx: &Transaction<'_>,
    selection: &crate::sql::Statement,
) -> rusqlite::Result<u64> {
    // The selection reads the tables this deletes from: collect it first.
    let ids = tx
        .prepare_cached(&selection.sql)?
        .query_map(params_from_iter(&selection.params), |row| {
            row.get::<_, i64>(0)
        })?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    if ids.len() < BULK_DELETE_FROM {
        let mut stmt = tx.prepare_cached("DELETE FROM traces WHERE id = ?1 RETURNING summary")?;
        for &id in &ids {
            let metadata = stmt.query_row([id], |row| bytes_or_null(row, 0))?;
            delete_derived(tx, id, metadata.as_deref())?;
        }
        return Ok(ids.len() as u64);
    }
    // A temporary table of the doomed ids (the connection's own, gone with it) lets
    // each table be cleared in one statement.
    tx.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS doomed (id INTEGER PRIMARY KEY);
         DELETE FROM temp.doomed;",
    )?;
    {
        let mut insert = tx.prepare_cached("INSERT INTO temp.doomed (id) VALUES (?1)")?;
        for &id in &ids {
            insert.execute([id])?;
        }
    }
    delete_trigrams_in_bulk(tx)?;
    for sql in [
        "DELETE FROM trace_metadata WHERE trace_id IN (SELECT id FROM temp.doomed)",
        "DELETE FROM trace_scores WHERE trace_id IN (SELECT id FROM temp.doomed)",
        "DELETE FROM trace_text WHERE id IN (SELECT id FROM temp.doomed)",
        "DELETE FROM trace_text_pending WHERE id IN (SELECT id FROM temp.doomed)",
        "DELETE FROM trace_bodies WHERE id IN (SELECT id FROM temp.doomed)",
        "DELETE FROM traces WHERE id IN (SELECT id FROM temp.doomed)",
        "DELETE FROM temp.doomed",
    ] {
        tx.prepare_cached(sql)?.execute([])?;
    }
    Ok(ids.len() as u64)
}

/// Removes the rows of `temp.doomed` from the trigram index, without merging its
/// segments now.
///
/// Each delete from a `contentless_delete` table leaves a tombstone, and FTS5 counts
/// them as written pages: at the flush (the commit), 50,000 of them set off automatic
/// merging of every segment with 10% or more of its rows deleted (`deletemerge`),
/// which rewrote the whole index: 2.9 of a 3.5 s purge of half of 100,000 traces,
/// 0.04 s without it. So `deletemerge` is 0 for this delete and the flush that ends
/// it (setting an FTS5 option flushes first), then set back: later saves merge those
/// segments a few pages at a time, as FTS5 merges after any write. The tombstones
/// keep the index exact meanwhile (its integrity check passes). Rebuilding the index
/// from `trace_text` instead took as long as the merge.
fn delete_trigrams_in_bulk(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    // The option as stored, to put back.
    let deletemerge: Option<i64> = tx
        .query_row(
            "SELECT v FROM trace_trigrams_config WHERE k = 'deletemerge'",
            [],
            |row| row.get(0),
        )
        .optional()?;
    let set = "INSERT INTO trace_trigrams (trace_trigrams, rank) VALUES ('deletemerge', ?1)";
    tx.prepare_cached(set)?.execute([0])?;
    tx.prepare_cached("DELETE FROM trace_trigrams WHERE rowid IN (SELECT id FROM temp.doomed)")?
        .execute([])?;
    // An absent option is stored as its default: the same to FTS5.
    tx.prepare_cached(set)?
        .execute([deletemerge.unwrap_or(FTS5_DEFAULT_DELETEMERGE)])?;
    Ok(())
}

/// FTS5's `deletemerge` when none is configured (`FTS5_DEFAULT_DELETE_AUTOMERGE`).
const FTS5_DEFAULT_DELETEMERGE: i64 = 10;

/// The canonical value indexed under each key for trace `id`, from its `summary`
/// column. Should that column be missing or not decode (a row the migration to schema
/// 5 could not read, or edited by hand), the entries are removed by a scan instead, so
/// an upsert or delete still leaves no stale index entry behind.
fn metadata_pairs(
    tx: &Transaction<'_>,
    id: i64,
    summary: Option<&[u8]>,
) -> rusqlite::Result<BTreeMap<String, String>> {
    let mut decoded = template();
    match summary.map(|bytes| crate::packed::decode_summary(bytes, &mut decoded)) {
        Some(Ok(())) => Ok(decoded
            .metadata
            .iter()
            .map(|(key, value)| (key.clone(), canonical_json(value)))
            .collect()),
        _ => {
            tx.prepare_cached("DELETE FROM trace_metadata WHERE trace_id = ?1")?
                .execute([id])?;
            Ok(BTreeMap::new())
        }
    }
}

fn delete_metadata(
    tx: &Transaction<'_>,
    id: i64,
    pairs: &BTreeMap<String, String>,
) -> rusqlite::Result<()> {
    if pairs.is_empty() {
        return Ok(());
    }
    let mut stmt = tx.prepare_cached(
        "DELETE FROM trace_metadata WHERE key = ?1 AND value = ?2 AND trace_id = ?3",
    )?;
    for (key, value) in pairs {
        stmt.execute(params![key, value, id])?;
    }
    Ok(())
}

/// Column `index` as bytes (a BLOB, or TEXT edited in by hand), or `None` for NULL.
fn bytes_or_null(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<Vec<u8>>> {
    Ok(row.get_ref(index)?.as_bytes_or_null()?.map(<[u8]>::to_vec))
}

/// SQLite integers are i64; a u64 is stored bit for bit so that it reads back exactly.
/// Values past `i64::MAX` come back negative in SQL, which `stats` checks for.
pub(crate) fn to_sql_u64(value: u64) -> i64 {
    value as i64
}

/// The columns [`summary_from_row`] reads, in order, from the `traces` table aliased `t`.
pub(crate) const SUMMARY_COLUMNS: &str = "t.run_id, t.created_at, t.summary";

/// Builds a summary from the [`SUMMARY_COLUMNS`] of a row, without touching the body.
///
/// `TraceSummary` is `#[non_exhaustive]`, so it cannot be built field by field outside
/// core; `template` is an empty summary (from `TraceSummary::from`) whose public fields
/// are overwritten. Cloning it allocates nothing.
pub(crate) fn summary_from_row(
    row: &Row<'_>,
    template: &TraceSummary,
) -> rusqlite::Result<TraceSummary> {
    let mut s = template.clone();
    s.run_id = row.get(0)?;
    s.created_at = Timestamp::from_micros(row.get(1)?).map_err(|e| bad_column(1, e.to_string()))?;
    // Read as bytes whatever their type: a damaged value is then a decoding error.
    let packed = row
        .get_ref(2)?
        .as_bytes_or_null()?
        .ok_or_else(|| bad_column(2, "no summary"))?;
    crate::packed::decode_summary(packed, &mut s).map_err(|e| bad_column(2, e))?;
    Ok(s)
}

/// An empty summary to fill in, see [`summary_from_row`].
pub(crate) fn template() -> TraceSummary {
    TraceSummary::from(&Trace::new(String::new()))
}
