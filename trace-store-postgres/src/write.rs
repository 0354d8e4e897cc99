//! Writing a trace: its row, its metadata, scores and per-model rows, in the caller's
//! transaction; and the atomic merge.

use trace_store_core::{Result, Trace, TraceSummary, canonical_json};

use crate::Inner;
use crate::error::{Failure, backend};
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
    metadata: (Vec<String>, Vec<String>),
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
            search_text: storable_text(&trace.search_text()),
            metadata: s
                .metadata
                .iter()
                .map(|(key, value)| (text_key(key), canonical_json(value)))
                .unzip(),
            scores: s
                .scores
                .iter()
                .map(|(name, value)| (text_key(name), *value))
                .unzip(),
            models,
        })
    }
}

/// Replaces the stored trace (if any) with `row`, indexes included, in ONE statement:
/// a single round trip, atomic on its own. The side tables are brought to the new
/// trace's rows by deleting the keys it no longer has and upserting the rest, so no
/// sub-statement touches a row another one writes.
pub(crate) async fn upsert<C: deadpool_postgres::GenericClient>(
    client: &C,
    t: &Tables,
    row: &Row,
) -> Result<()> {
    let failed = |e| backend(format!("saving trace {:?}", row.run_id), e);
    let sql = format!(
        "WITH trace AS (
             INSERT INTO {traces} (run_id, created_at, name, session_id, parent_run_id, status,
                 steps, total_ms, error_count, failed_steps, input_tokens, output_tokens,
                 cost_nano_usd, summary, body, search_text)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text::numeric, $10::text::numeric,
                 $11::text::numeric, $12::text::numeric, $13::text::numeric, $14, $15, $16)
             ON CONFLICT (run_id) DO UPDATE SET created_at = EXCLUDED.created_at,
                 name = EXCLUDED.name, session_id = EXCLUDED.session_id,
                 parent_run_id = EXCLUDED.parent_run_id, status = EXCLUDED.status,
                 steps = EXCLUDED.steps, total_ms = EXCLUDED.total_ms,
                 error_count = EXCLUDED.error_count, failed_steps = EXCLUDED.failed_steps,
                 input_tokens = EXCLUDED.input_tokens, output_tokens = EXCLUDED.output_tokens,
                 cost_nano_usd = EXCLUDED.cost_nano_usd, summary = EXCLUDED.summary,
                 body = EXCLUDED.body, search_text = EXCLUDED.search_text
             RETURNING run_id),
         old_metadata AS (
             DELETE FROM {metadata} WHERE run_id = $1 AND NOT (key = ANY($17::text[]))),
         new_metadata AS (
             INSERT INTO {metadata} (run_id, key, value)
             SELECT (SELECT run_id FROM trace), * FROM UNNEST($17::text[], $18::text[])
             ON CONFLICT (run_id, key) DO UPDATE SET value = EXCLUDED.value),
         old_scores AS (
             DELETE FROM {scores} WHERE run_id = $1 AND NOT (name = ANY($19::text[]))),
         new_scores AS (
             INSERT INTO {scores} (run_id, name, value)
             SELECT (SELECT run_id FROM trace), * FROM UNNEST($19::text[], $20::float8[])
             ON CONFLICT (run_id, name) DO UPDATE SET value = EXCLUDED.value),
         old_models AS (
             DELETE FROM {models} WHERE run_id = $1 AND NOT (model = ANY($21::text[]))),
         new_models AS (
             INSERT INTO {models} (run_id, model, calls, input_tokens, output_tokens, cost_nano_usd)
             SELECT (SELECT run_id FROM trace), * FROM UNNEST($21::text[], $22::text[]::numeric[],
                 $23::text[]::numeric[], $24::text[]::numeric[], $25::text[]::numeric[])
             ON CONFLICT (run_id, model) DO UPDATE SET calls = EXCLUDED.calls,
                 input_tokens = EXCLUDED.input_tokens, output_tokens = EXCLUDED.output_tokens,
                 cost_nano_usd = EXCLUDED.cost_nano_usd)
         SELECT 1",
        traces = t.traces,
        metadata = t.metadata,
        scores = t.scores,
        models = t.models,
    );
    let stmt = client.prepare_cached(&sql).await.map_err(failed)?;
    let [errors, failed_steps, input, output, cost] = &row.counters;
    let [calls, model_input, model_output, model_cost] = &row.models.1;
    client
        .execute(
            &stmt,
            &[
                &row.run_id,
                &row.created_at,
                &row.name,
                &row.session_id,
                &row.parent_run_id,
                &row.status,
                &row.steps,
                &row.total_ms,
                errors,
                failed_steps,
                input,
                output,
                cost,
                &row.summary,
                &row.body,
                &row.search_text,
                &row.metadata.0,
                &row.metadata.1,
                &row.scores.0,
                &row.scores.1,
                &row.models.0,
                calls,
                model_input,
                model_output,
                model_cost,
            ],
        )
        .await
        .map_err(failed)?;
    Ok(())
}

/// Load, fold with core's [`Trace::merge`] and write back in one transaction. The
/// advisory lock on the run_id serializes merges even when no row exists yet to lock.
pub(crate) async fn merge(inner: &Inner, part: &Trace) -> Result<Trace> {
    let failed = |e| backend(format!("merging into trace {:?}", part.run_id), e);
    let mut client = inner.client("merging").await?;
    let tx = client.transaction().await.map_err(failed)?;
    let lock_key = format!("{}\n{}", inner.tables.schema, part.run_id);
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        &[&lock_key],
    )
    .await
    .map_err(failed)?;
    let sql = format!(
        "SELECT body FROM {} WHERE run_id = $1 FOR UPDATE",
        inner.tables.traces
    );
    let stored = tx.query_opt(&sql, &[&part.run_id]).await.map_err(failed)?;
    let merged = match stored {
        Some(row) => {
            let mut stored = Trace::from_json_slice(row.get::<_, &str>(0).as_bytes())?;
            stored.merge(part);
            stored.validate()?;
            stored
        }
        None => part.clone(),
    };
    upsert(&tx, &inner.tables, &Row::new(&merged)?).await?;
    tx.commit().await.map_err(failed)?;
    Ok(merged)
}
