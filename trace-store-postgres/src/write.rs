//! Writing traces: one row (and its scores) per trace in ONE statement, batches and
//! merges pipelined so that a call costs as few round trips as it can.

use std::collections::HashMap;

use futures_util::future::{try_join, try_join_all, try_join3};
use tokio_postgres::Statement;
use tokio_postgres::types::ToSql;
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
    search_keys: Vec<i32>,
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
            search_keys: search_keys(&search_text),
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
    pub(crate) fn params(&self) -> [&(dyn ToSql + Sync); 25] {
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
            &self.search_keys,
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
        }
    }
}

/// Replaces the stored trace (if any), its indexes included, in ONE statement: a single
/// round trip, atomic on its own. Stale scores go by deleting the names the new trace
/// no longer has and upserting the rest, so no sub-statement touches a row another
/// one writes.
fn upsert_sql(t: &Tables) -> String {
    format!(
        "WITH trace AS (
             INSERT INTO {traces} (run_id, created_at, name, session_id, parent_run_id, status,
                 steps, total_ms, error_count, failed_steps, input_tokens, output_tokens,
                 cost_nano_usd, summary, body, search_text, search_keys, meta, model_names,
                 model_calls, model_input_tokens, model_output_tokens, model_cost_nano_usd)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text::numeric, $10::text::numeric,
                 $11::text::numeric, $12::text::numeric, $13::text::numeric, $14, $15, $16,
                 $17, $18, $19, $20::text[]::numeric[], $21::text[]::numeric[],
                 $22::text[]::numeric[], $23::text[]::numeric[])
             ON CONFLICT (run_id) DO UPDATE SET created_at = EXCLUDED.created_at,
                 name = EXCLUDED.name, session_id = EXCLUDED.session_id,
                 parent_run_id = EXCLUDED.parent_run_id, status = EXCLUDED.status,
                 steps = EXCLUDED.steps, total_ms = EXCLUDED.total_ms,
                 error_count = EXCLUDED.error_count, failed_steps = EXCLUDED.failed_steps,
                 input_tokens = EXCLUDED.input_tokens, output_tokens = EXCLUDED.output_tokens,
                 cost_nano_usd = EXCLUDED.cost_nano_usd, summary = EXCLUDED.summary,
                 body = EXCLUDED.body, search_text = EXCLUDED.search_text,
                 search_keys = EXCLUDED.search_keys, meta = EXCLUDED.meta,
                 model_names = EXCLUDED.model_names, model_calls = EXCLUDED.model_calls,
                 model_input_tokens = EXCLUDED.model_input_tokens,
                 model_output_tokens = EXCLUDED.model_output_tokens,
                 model_cost_nano_usd = EXCLUDED.model_cost_nano_usd
             RETURNING run_id),
         old_scores AS (
             DELETE FROM {scores} WHERE run_id = $1 AND NOT (name = ANY($24::text[]))),
         new_scores AS (
             INSERT INTO {scores} (run_id, name, value)
             SELECT (SELECT run_id FROM trace), * FROM UNNEST($24::text[], $25::float8[])
             ON CONFLICT (run_id, name) DO UPDATE SET value = EXCLUDED.value)
         SELECT 1",
        traces = t.traces,
        scores = t.scores,
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
