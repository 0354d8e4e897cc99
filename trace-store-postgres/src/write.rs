//! Writing traces: one row (and its scores) per trace in ONE statement, batches and
//! merges pipelined so that a call costs as few round trips as it can.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use futures_util::future::{try_join, try_join_all, try_join3};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Statement};
use trace_store_core::{Result, Trace, TraceSummary, canonical_json};

use crate::Inner;
use crate::error::{Failure, backend};
use crate::keys::search_keys;
use crate::pool::Session;
use crate::sql::{Tables, storable_text, text_key};

/// Everything written for one trace, encoded before any I/O.
pub(crate) struct Row {
    run_id: String,
    created_at: i64,
    name: Option<String>,
    session_id: Option<String>,
    parent_run_id: Option<String>,
    status: String,
    steps: i64,
    total_ms: f64,
    counters: [String; 5],
    summary: String,
    body: String,
    search_text: String,
    meta: Vec<String>,
    scores: (Vec<String>, Vec<f64>),
    models: (Vec<String>, [Vec<String>; 4]),
}

impl Row {
    pub(crate) fn new(trace: &Trace) -> Result<Row> {
        let s = TraceSummary::from(trace);
        let summary = serde_json::to_string(&s)
            .map_err(|e| Failure::Corrupt(format!("cannot encode the summary: {e}")))?;
        let mut models = (Vec::new(), [Vec::new(), Vec::new(), Vec::new(), Vec::new()]);
        for (model, usage) in &s.models {
            models.0.push(text_key(model));
            models.1[0].push(usage.calls.to_string());
            models.1[1].push(usage.input_tokens.to_string());
            models.1[2].push(usage.output_tokens.to_string());
            models.1[3].push(usage.cost_nano_usd.to_string());
        }
        let search_text = storable_text(&trace.search_text());
        Ok(Row {
            run_id: trace.run_id.clone(),
            created_at: trace.created_at.as_micros(),
            name: trace.name.as_deref().map(text_key),
            session_id: trace.session_id.as_deref().map(text_key),
            parent_run_id: trace.parent_run_id.as_deref().map(text_key),
            status: trace.status.as_str().to_owned(),
            steps: i64::try_from(s.steps).unwrap_or(i64::MAX),
            total_ms: s.total_ms,
            counters: [
                s.error_count.to_string(),
                s.failed_steps.to_string(),
                s.input_tokens.to_string(),
                s.output_tokens.to_string(),
                s.cost_nano_usd.to_string(),
            ],
            summary,
            body: trace.to_json_string()?,
            search_text,
            meta: s
                .metadata
                .iter()
                .map(|(key, value)| meta_pair(key, value))
                .collect(),
            scores: s
                .scores
                .iter()
                .map(|(name, value)| (text_key(name), *value))
                .unzip(),
            models,
        })
    }

    /// The parameters of [`upsert_sql`], in its order.
    pub(crate) fn params(&self) -> [&(dyn ToSql + Sync); 24] {
        let [errors, failed_steps, input, output, cost] = &self.counters;
        let [calls, model_input, model_output, model_cost] = &self.models.1;
        [
            &self.run_id,
            &self.created_at,
            &self.name,
            &self.session_id,
            &self.parent_run_id,
            &self.status,
            &self.steps,
            &self.total_ms,
            errors,
            failed_steps,
            input,
            output,
            cost,
            &self.summary,
            &self.body,
            &self.search_text,
            &self.meta,
            &self.models.0,
            calls,
            model_input,
            model_output,
            model_cost,
            &self.scores.0,
            &self.scores.1,
        ]
    }
}

/// One metadata entry as stored: the JSON-encoded key, then core's canonical JSON of
/// the value. A JSON string ends at its first unescaped quote, so the pair splits back
/// unambiguously and equal pairs mean equal key and equal value (C5).
pub(crate) fn meta_pair(key: &str, value: &serde_json::Value) -> String {
    let mut pair = text_key(key);
    pair.push_str(&canonical_json(value));
    pair
}

/// The statements writes use, written out once per store.
pub(crate) struct WriteSql {
    pub(crate) upsert: String,
    merge_lock: String,
    merge_read: String,
    index_pop: String,
    index_put: String,
    index_flush: String,
    keys_index: String,
}

impl WriteSql {
    pub(crate) fn new(t: &Tables) -> WriteSql {
        WriteSql {
            upsert: upsert_sql(t),
            merge_lock: "SELECT pg_advisory_xact_lock(h) FROM (SELECT DISTINCT \
                 hashtextextended(k, 0) AS h FROM unnest($1::text[]) AS k ORDER BY 1) AS ordered"
                .to_owned(),
            merge_read: format!(
                "SELECT run_id, body FROM {} WHERE run_id = ANY($1) ORDER BY run_id FOR UPDATE",
                t.traces
            ),
            index_pop: format!(
                "WITH popped AS (
                     DELETE FROM {pending} WHERE run_id IN (
                         SELECT run_id FROM {pending} ORDER BY run_id LIMIT $1
                         FOR UPDATE SKIP LOCKED)
                     RETURNING run_id)
                 SELECT t.run_id, t.search_text FROM popped p JOIN {traces} t
                     ON t.run_id = p.run_id",
                pending = t.text_pending,
                traces = t.traces,
            ),
            index_put: format!(
                "INSERT INTO {} (run_id, keys)
                 SELECT id, keys::integer[] FROM unnest($1::text[], $2::text[]) AS u(id, keys)
                 ON CONFLICT (run_id) DO UPDATE SET keys = EXCLUDED.keys",
                t.text_keys
            ),
            index_flush: "SELECT gin_clean_pending_list($1::text::regclass)".to_owned(),
            keys_index: format!("{}.text_keys_keys", t.schema),
        }
    }
}

/// Replaces the stored trace (if any), its indexes included, in ONE statement: a single
/// round trip, atomic on its own. Stale scores go by deleting the names the new trace
/// no longer has and upserting the rest, so no sub-statement touches a row another
/// one writes. The text keys are left to [`index_pending`]: the trace is marked
/// pending, with an update when it already is, which locks the mark, so that a batch
/// computing keys from the text this save replaces either skips the trace or makes this
/// save wait and mark it again after the batch.
fn upsert_sql(t: &Tables) -> String {
    format!(
        "WITH trace AS (
             INSERT INTO {traces} (run_id, created_at, name, session_id, parent_run_id, status,
                 steps, total_ms, error_count, failed_steps, input_tokens, output_tokens,
                 cost_nano_usd, summary, body, search_text, meta, model_names,
                 model_calls, model_input_tokens, model_output_tokens, model_cost_nano_usd)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text::numeric, $10::text::numeric,
                 $11::text::numeric, $12::text::numeric, $13::text::numeric, $14, $15, $16,
                 $17, $18, $19::text[]::numeric[], $20::text[]::numeric[],
                 $21::text[]::numeric[], $22::text[]::numeric[])
             ON CONFLICT (run_id) DO UPDATE SET created_at = EXCLUDED.created_at,
                 name = EXCLUDED.name, session_id = EXCLUDED.session_id,
                 parent_run_id = EXCLUDED.parent_run_id, status = EXCLUDED.status,
                 steps = EXCLUDED.steps, total_ms = EXCLUDED.total_ms,
                 error_count = EXCLUDED.error_count, failed_steps = EXCLUDED.failed_steps,
                 input_tokens = EXCLUDED.input_tokens, output_tokens = EXCLUDED.output_tokens,
                 cost_nano_usd = EXCLUDED.cost_nano_usd, summary = EXCLUDED.summary,
                 body = EXCLUDED.body, search_text = EXCLUDED.search_text,
                 meta = EXCLUDED.meta,
                 model_names = EXCLUDED.model_names, model_calls = EXCLUDED.model_calls,
                 model_input_tokens = EXCLUDED.model_input_tokens,
                 model_output_tokens = EXCLUDED.model_output_tokens,
                 model_cost_nano_usd = EXCLUDED.model_cost_nano_usd
             RETURNING run_id),
         old_scores AS (
             DELETE FROM {scores} WHERE run_id = $1 AND NOT (name = ANY($23::text[]))),
         new_scores AS (
             INSERT INTO {scores} (run_id, name, value)
             SELECT (SELECT run_id FROM trace), * FROM UNNEST($23::text[], $24::float8[])
             ON CONFLICT (run_id, name) DO UPDATE SET value = EXCLUDED.value),
         pending AS (
             INSERT INTO {pending} (run_id) VALUES ($1)
             ON CONFLICT (run_id) DO UPDATE SET run_id = EXCLUDED.run_id)
         SELECT 1",
        traces = t.traces,
        scores = t.scores,
        pending = t.text_pending,
    )
}

/// Saves one trace: one statement, no transaction around it (it is atomic alone).
pub(crate) async fn save_one(inner: &Inner, db: &Session, row: &Row) -> Result<()> {
    let failed = |e| backend(format!("saving trace {:?}", row.run_id), e);
    let upsert = db.prepare_cached(&inner.sql.upsert).await.map_err(failed)?;
    db.execute_raw(&upsert, row.params())
        .await
        .map_err(failed)?;
    Ok(())
}

/// Saves rows in one transaction, all statements pipelined: one round trip whatever the
/// batch size.
pub(crate) async fn save_batch(inner: &Inner, db: &Session, rows: &[Row]) -> Result<()> {
    let failed = |e| backend("saving traces", e);
    let upsert = db.prepare_cached(&inner.sql.upsert).await.map_err(failed)?;
    pipelined_commit(db, &upsert, rows).await.map_err(failed)
}

/// `BEGIN`, an upsert per row and `COMMIT`, sent together. Every request is on the wire
/// before the first answer is read, so even when an upsert fails the `COMMIT` (then a
/// rollback) follows it and the connection goes back to the pool outside any
/// transaction.
async fn pipelined_commit(
    client: &Session,
    upsert: &Statement,
    rows: &[Row],
) -> std::result::Result<(), tokio_postgres::Error> {
    let begin = client.batch_execute("BEGIN");
    let writes = try_join_all(
        rows.iter()
            .map(|row| client.execute_raw(upsert, row.params())),
    );
    let commit = client.batch_execute("COMMIT");
    try_join3(begin, writes, commit).await.map(drop)
}

/// Folds every part into its stored trace in one transaction and writes each run_id
/// once; returns the merged traces by run_id.
///
/// Merges of the same run_id are serialized by a transaction-scoped advisory lock (a
/// run_id with no row yet has nothing `FOR UPDATE` could lock), taken for every run_id
/// of the batch in one statement, in hash order so that two batches never wait on each
/// other in a cycle; the stored rows are then read `FOR UPDATE`, which orders merges
/// against plain saves of the same rows.
pub(crate) async fn merge_all(
    inner: &Inner,
    client: &Session,
    parts: &[Trace],
) -> Result<HashMap<String, Trace>> {
    let what = match parts {
        [part] => format!("merging into trace {:?}", part.run_id),
        _ => format!("merging {} parts", parts.len()),
    };
    let failed = |e| backend(what.clone(), e);
    let mut ids: Vec<String> = parts.iter().map(|p| p.run_id.clone()).collect();
    ids.sort_unstable();
    ids.dedup();
    let lock_keys: Vec<String> = ids
        .iter()
        .map(|id| format!("{}\n{id}", inner.tables.schema))
        .collect();
    let lock = client
        .prepare_cached(&inner.sql.merge_lock)
        .await
        .map_err(failed)?;
    let read = client
        .prepare_cached(&inner.sql.merge_read)
        .await
        .map_err(failed)?;
    let upsert = client
        .prepare_cached(&inner.sql.upsert)
        .await
        .map_err(failed)?;
    let opened = try_join3(
        client.batch_execute("BEGIN"),
        client.execute(&lock, &[&lock_keys]),
        client.query(&read, &[&ids]),
    )
    .await;
    let folded = opened.map_err(failed).and_then(|(_, _, stored)| {
        let mut merged = HashMap::with_capacity(ids.len());
        for row in stored {
            let trace = Trace::from_json_slice(row.get::<_, &str>(1).as_bytes())?;
            merged.insert(trace.run_id.clone(), trace);
        }
        for part in parts {
            match merged.get_mut(&part.run_id) {
                Some(stored) => stored.merge(part),
                None => {
                    merged.insert(part.run_id.clone(), part.clone());
                }
            }
        }
        let rows = merged
            .values()
            .map(|trace| trace.validate().and_then(|()| Row::new(trace)))
            .collect::<Result<Vec<_>>>()?;
        Ok((merged, rows))
    });
    let (merged, rows) = match folded {
        Ok(folded) => folded,
        Err(error) => {
            // The transaction may be open (or aborted): end it before the connection
            // goes back to the pool.
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(error);
        }
    };
    let writes = try_join_all(
        rows.iter()
            .map(|row| client.execute_raw(&upsert, row.params())),
    );
    try_join(writes, client.batch_execute("COMMIT"))
        .await
        .map_err(failed)?;
    Ok(merged)
}

/// Computes the text keys of up to `limit` pending traces and stores them, inside the
/// caller's transaction; returns how many it took. Traces another batch holds are
/// skipped, so batches run side by side.
pub(crate) async fn index_pending(db: &Client, sql: &WriteSql, limit: i64) -> Result<usize> {
    let failed = |e| backend("indexing saved text", e);
    let popped = db.query(&sql.index_pop, &[&limit]).await.map_err(failed)?;
    let (ids, keys): (Vec<&str>, Vec<String>) = popped
        .iter()
        .map(|row| {
            (
                row.get::<_, &str>(0),
                array_literal(&search_keys(row.get::<_, &str>(1))),
            )
        })
        .unzip();
    if !ids.is_empty() {
        db.execute(&sql.index_put, &[&ids, &keys])
            .await
            .map_err(failed)?;
    }
    Ok(popped.len())
}

/// `{1,2,3}`: a batch's keys travel as text, since arrays of arrays must be rectangular.
fn array_literal(keys: &[i32]) -> String {
    let mut text = String::with_capacity(keys.len() * 8 + 2);
    text.push('{');
    for (i, key) in keys.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        let _ = write!(text, "{key}");
    }
    text.push('}');
    text
}

/// Saves between two batches of [`index_pending`] by one handle. Pending traces cost
/// every text query a `LIKE` over their text, so a few hundred is the most worth
/// keeping; a batch of this many costs a few hundred milliseconds of server time.
const INDEX_EVERY: usize = 256;

/// Counts `saved` traces against the handle's next batch and, when one is due, runs it
/// in its own transaction: at least as many traces as were saved since the last one.
/// A batch that fails leaves its traces pending, which keeps answers exact, so its
/// error is not the caller's: the save itself has committed.
pub(crate) async fn maybe_index(inner: &Inner, db: &Session, saved: usize) {
    let before = inner.unindexed.fetch_add(saved, Ordering::Relaxed);
    if (before + saved) / INDEX_EVERY == before / INDEX_EVERY {
        return;
    }
    let limit = i64::try_from(saved.max(INDEX_EVERY) * 2).unwrap_or(i64::MAX);
    let batch = async {
        db.batch_execute("BEGIN")
            .await
            .map_err(|e| backend("indexing saved text", e))?;
        index_pending(db, &inner.sql, limit).await?;
        db.batch_execute("COMMIT")
            .await
            .map_err(|e| backend("indexing saved text", e))
    };
    if batch.await.is_err() {
        let _ = db.batch_execute("ROLLBACK").await;
        return;
    }
    // A role that does not own the index may not flush it; the server then merges the
    // list itself when it is full or at the next vacuum.
    let _ = flush_keys(db, &inner.sql).await;
}

/// Merges the GIN index's pending list into its tree. A batch's keys go to that list,
/// which every search reads whole; merging a whole batch at once, sorted, costs far
/// less per key than merging every few dozen traces' worth, as a small list would.
pub(crate) async fn flush_keys(db: &Client, sql: &WriteSql) -> Result<()> {
    db.execute(&sql.index_flush, &[&sql.keys_index])
        .await
        .map(drop)
        .map_err(|e| backend("merging the text index's pending keys", e))
}
