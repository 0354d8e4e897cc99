//! The searchable text of each trace and its trigram index, which follows the saves
//! in batches.
//!
//! A save writes core's `search_text` to `trace_text` and marks the trace in
//! `trace_text_pending`; the FTS5 index takes the marked traces in one go once
//! [`FLUSH_AT`] of them have gathered. Indexing one trace per transaction wrote a new
//! FTS5 segment of a few thousand trigrams at each commit (and FTS5 then merged those
//! segments over and over): a save cost 8 times a bare insert and wrote 17 log pages.
//! A batch shares one segment among the traces.
//!
//! Answers stay exact and every write is seen by the next query (rule C13): a text
//! query takes as candidates what the index finds plus every pending trace, and core's
//! predicate rechecks each candidate against its current `trace_text`. A pending trace
//! may still have an index entry for its old text (an upsert or merge), and a deleted
//! trace stays pending, with its entry, until the batch: that only adds a candidate,
//! which the recheck drops if the text no longer matches (or no trace has the id).

use rusqlite::{Transaction, params};

/// Pending traces from which a save indexes them all in its transaction: one save in
/// this many pays for the batch, and a text query rechecks at most this many
/// unindexed texts.
pub(crate) const FLUSH_AT: i64 = 256;

/// The candidates of a text query beside what the FTS query `?` finds, in SQL.
pub(crate) const CANDIDATES: &str = "SELECT rowid FROM trace_trigrams WHERE trace_trigrams MATCH ? \
     UNION ALL SELECT id FROM trace_text_pending";

/// Sets trace `id`'s searchable text to `text`; `fresh` when the trace was just
/// inserted (no text and no index entry of it can exist).
pub(crate) fn write(
    tx: &Transaction<'_>,
    id: i64,
    text: &str,
    fresh: bool,
) -> rusqlite::Result<()> {
    if !fresh {
        tx.prepare_cached("DELETE FROM trace_text WHERE id = ?1")?
            .execute([id])?;
    }
    // An empty text never contains a query, so it needs no row.
    if !text.is_empty() {
        tx.prepare_cached("INSERT INTO trace_text (id, text) VALUES (?1, ?2)")?
            .execute(params![id, text])?;
    } else if fresh {
        return Ok(());
    }
    // `stale`: the index may hold an entry for an older text, to remove when the
    // batch is indexed. A trace already pending keeps its mark: the index has not
    // changed since.
    tx.prepare_cached(
        "INSERT INTO trace_text_pending (id, stale) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING",
    )?
    .execute(params![id, !fresh])?;
    Ok(())
}

/// Indexes the pending traces if [`FLUSH_AT`] of them have gathered; every write
/// transaction ends with it, so a batch of any size is indexed as one.
pub(crate) fn flush_if_due(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let pending: i64 = tx
        .prepare_cached("SELECT COUNT(*) FROM trace_text_pending")?
        .query_row([], |row| row.get(0))?;
    if pending >= FLUSH_AT {
        flush(tx)?;
    }
    Ok(())
}

/// Indexes every pending trace, in the caller's transaction.
pub(crate) fn flush(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    for sql in [
        "DELETE FROM trace_trigrams WHERE rowid IN (SELECT id FROM trace_text_pending WHERE stale)",
        "INSERT INTO trace_trigrams (rowid, text) SELECT p.id, x.text \
         FROM trace_text_pending p JOIN trace_text x ON x.id = p.id",
        "DELETE FROM trace_text_pending",
    ] {
        tx.prepare_cached(sql)?.execute([])?;
    }
    Ok(())
}

/// Removes trace `id`'s text, and marks its index entry for removal with the next batch.
///
/// Removing the entry at once made FTS5 merge segments in the delete's commit (its
/// tombstones count as written pages): two fifths of a delete's time. Until the batch,
/// the entry only makes the id a candidate of text queries, where it joins no trace
/// (or, should a later save reuse the id, one whose current text is rechecked); and the
/// batch removes it before it indexes whatever text now has that id.
pub(crate) fn delete(tx: &Transaction<'_>, id: i64) -> rusqlite::Result<()> {
    // A trace already pending keeps its mark: a fresh one has no entry to remove, a
    // stale one is already marked for removal.
    tx.prepare_cached(
        "INSERT INTO trace_text_pending (id, stale) VALUES (?1, 1) ON CONFLICT (id) DO NOTHING",
    )?
    .execute([id])?;
    tx.prepare_cached("DELETE FROM trace_text WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}
