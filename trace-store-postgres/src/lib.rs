#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod error;
mod keys;
mod options;
mod pool;
mod schema;
mod sql;
mod stats;
mod write;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use trace_store_core::{
    Error, GroupBy, GroupKey, Result, Trace, TraceFilter, TraceStats, TraceStore, TraceSummary,
    text_contains,
};

pub use crate::options::{PostgresOptions, SCHEMES};
pub use crate::schema::SCHEMA_VERSION;

use crate::error::{Failure, backend};
use crate::pool::{Pool, Session};
use crate::sql::{ORDER, Selection, Tables, refs};

/// A [`TraceStore`] in a PostgreSQL database, for many processes on many machines.
///
/// Calls are synchronous: the calling thread borrows a connection of the pool and
/// drives it until the answer is in (a thread inside a Tokio runtime has a helper
/// thread do it), so the store works from plain threads and from inside any Tokio
/// runtime alike. Cloning is cheap and shares the pool.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    tables: Tables,
    sql: write::WriteSql,
    /// Traces this handle saved, counting towards its next text index batch.
    unindexed: AtomicUsize,
    shown_url: String,
    options: PostgresOptions,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("url", &self.inner.shown_url)
            .field("options", &self.inner.options)
            .finish()
    }
}

impl PostgresStore {
    /// Opens the store a `postgres://` URL names, creating or migrating its tables.
    /// Options may ride in the URL's query (`?schema=team_a&pool_size=16`).
    pub fn open(url: &str) -> Result<PostgresStore> {
        PostgresStore::open_with(url, PostgresOptions::default())
    }

    /// [`PostgresStore::open`] with options; parameters in the URL override them.
    pub fn open_with(url: &str, options: PostgresOptions) -> Result<PostgresStore> {
        let (connection_url, options) = options::parse_url(url, options)?;
        let shown_url = options::redact(url);
        let mut config: tokio_postgres::Config = connection_url.parse().map_err(|e| {
            Error::invalid(format!(
                "{shown_url} is not a PostgreSQL connection URL: {e}"
            ))
        })?;
        config.connect_timeout(options.connect_timeout);
        config.options(format!(
            "-c statement_timeout={}",
            options.statement_timeout.as_millis()
        ));
        let pool = Pool::new(
            config,
            options.pool_size,
            options.connect_timeout,
            shown_url.clone(),
        );
        let store = PostgresStore {
            inner: Arc::new(Inner {
                pool,
                sql: write::WriteSql::new(&Tables::new(&options.schema)),
                unindexed: AtomicUsize::new(0),
                tables: Tables::new(&options.schema),
                shown_url,
                options,
            }),
        };
        store.run("opening the store", async |inner, db| {
            schema::migrate(db, &inner.tables).await
        })?;
        Ok(store)
    }

    /// The options in effect.
    pub fn options(&self) -> &PostgresOptions {
        &self.inner.options
    }

    /// Runs `work` on a connection of the pool and waits for it; `what` names the call
    /// in errors.
    fn run<T: Send>(
        &self,
        what: &str,
        work: impl AsyncFnOnce(&Inner, &Session) -> Result<T> + Send,
    ) -> Result<T> {
        let inner = &*self.inner;
        inner.pool.run(what, async |db| work(inner, db).await)
    }
}

impl Inner {
    /// Summaries (and, with a text query, the search text to recheck) in list order.
    async fn summaries(&self, db: &Session, filter: &TraceFilter) -> Result<Vec<TraceSummary>> {
        let mut selection = Selection::new(&self.tables, filter);
        if !selection.text_in_sql {
            return self
                .summaries_by_reading_bodies(db, filter, selection)
                .await;
        }
        let paging = selection.paging(filter);
        // The text is large and compressed: read it only to recheck a text query.
        let text = if filter.text.is_some() {
            "t.search_text"
        } else {
            "NULL::text"
        };
        let sql = format!(
            "SELECT t.summary, {text} FROM {} t{}{ORDER}{paging}",
            self.tables.traces, selection.condition
        );
        let stmt = db
            .prepare_cached(&sql)
            .await
            .map_err(|e| backend("preparing a query", e))?;
        let rows = db
            .query(&stmt, &refs(&selection.params))
            .await
            .map_err(|e| backend("querying", e))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            if let Some(query) = &filter.text {
                // The LIKE above is the same predicate on the same text; core's
                // predicate still has the last word.
                if !text_contains(row.get::<_, &str>(1), query) {
                    continue;
                }
            }
            out.push(decode_summary(row.get(0))?);
        }
        Ok(out)
    }

    /// A text query SQL cannot evaluate (it holds NUL): read the candidates' bodies,
    /// apply core's predicate, then page.
    async fn summaries_by_reading_bodies(
        &self,
        db: &Session,
        filter: &TraceFilter,
        selection: Selection,
    ) -> Result<Vec<TraceSummary>> {
        let sql = format!(
            "SELECT t.summary, t.body FROM {} t{}{ORDER}",
            self.tables.traces, selection.condition
        );
        let rows = db
            .query(&sql, &refs(&selection.params))
            .await
            .map_err(|e| backend("querying", e))?;
        let mut matched = Vec::new();
        for row in rows {
            let trace = decode_trace(row.get(1))?;
            if filter.matches_text(&trace.search_text()) {
                matched.push(decode_summary(row.get(0))?);
            }
        }
        Ok(matched
            .into_iter()
            .skip(filter.offset)
            .take(filter.limit.unwrap_or(usize::MAX))
            .collect())
    }

    /// Deletes the traces `target` (a query of run_ids) selects, and their scores.
    async fn delete_rows(
        &self,
        db: &Session,
        target: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64> {
        let sql = format!(
            "WITH gone AS (DELETE FROM {} WHERE run_id IN ({target}) RETURNING run_id),
                  scores AS (DELETE FROM {} WHERE run_id IN (SELECT run_id FROM gone)),
                  text_keys AS (DELETE FROM {} WHERE run_id IN (SELECT run_id FROM gone)),
                  pending AS (DELETE FROM {} WHERE run_id IN (SELECT run_id FROM gone))
             SELECT count(*) FROM gone",
            self.tables.traces, self.tables.scores, self.tables.text_keys, self.tables.text_pending
        );
        let row = db
            .query_one(&sql, params)
            .await
            .map_err(|e| backend("deleting traces", e))?;
        Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
    }

    async fn load(&self, db: &Session, run_id: &str) -> Result<Option<Trace>> {
        let sql = format!("SELECT body FROM {} WHERE run_id = $1", self.tables.traces);
        let stmt = db
            .prepare_cached(&sql)
            .await
            .map_err(|e| backend("preparing a load", e))?;
        let row = db
            .query_opt(&stmt, &[&run_id])
            .await
            .map_err(|e| backend(format!("loading trace {run_id:?}"), e))?;
        row.map(|row| decode_trace(row.get(0))).transpose()
    }
}

fn decode_summary(text: &str) -> Result<TraceSummary> {
    serde_json::from_str(text)
        .map_err(|e| Failure::Corrupt(format!("a stored summary does not decode: {e}")).into())
}

fn decode_trace(text: &str) -> Result<Trace> {
    Trace::from_json_slice(text.as_bytes())
}

#[deny(clippy::missing_trait_methods)]
impl TraceStore for PostgresStore {
    fn save(&self, trace: &Trace) -> Result<String> {
        trace.validate()?;
        let row = write::Row::new(trace)?;
        self.run("saving a trace", async |inner, db| {
            write::save_one(inner, db, &row).await?;
            write::maybe_index(inner, db, 1).await;
            Ok(())
        })?;
        Ok(trace.run_id.clone())
    }

    fn load(&self, run_id: &str) -> Result<Trace> {
        if trace_store_core::validate_run_id(run_id).is_err() {
            return Err(Error::not_found(run_id));
        }
        self.run("loading a trace", async |inner, db| {
            inner.load(db, run_id).await
        })?
        .ok_or_else(|| Error::not_found(run_id))
    }

    fn list(&self, limit: usize, offset: usize) -> Result<Vec<TraceSummary>> {
        self.query(&TraceFilter::new().with_limit(limit).with_offset(offset))
    }

    fn query(&self, filter: &TraceFilter) -> Result<Vec<TraceSummary>> {
        filter.validate()?;
        self.run("querying", async |inner, db| {
            inner.summaries(db, filter).await
        })
    }

    fn delete(&self, run_id: &str) -> Result<bool> {
        if trace_store_core::validate_run_id(run_id).is_err() {
            return Ok(false);
        }
        self.run("deleting a trace", async |inner, db| {
            let sql = format!(
                "WITH gone AS (DELETE FROM {} WHERE run_id = $1 RETURNING 1),
                      scores AS (DELETE FROM {} WHERE run_id = $1),
                      text_keys AS (DELETE FROM {} WHERE run_id = $1),
                      pending AS (DELETE FROM {} WHERE run_id = $1)
                 SELECT count(*) FROM gone",
                inner.tables.traces,
                inner.tables.scores,
                inner.tables.text_keys,
                inner.tables.text_pending
            );
            let row = db
                .query_one(&sql, &[&run_id])
                .await
                .map_err(|e| backend(format!("deleting trace {run_id:?}"), e))?;
            Ok(row.get::<_, i64>(0) > 0)
        })
    }

    fn save_many(&self, traces: &[Trace]) -> Result<Vec<String>> {
        traces.iter().try_for_each(Trace::validate)?;
        let rows = traces
            .iter()
            .map(write::Row::new)
            .collect::<Result<Vec<_>>>()?;
        if !rows.is_empty() {
            self.run("saving traces", async |inner, db| {
                write::save_batch(inner, db, &rows).await?;
                write::maybe_index(inner, db, rows.len()).await;
                Ok(())
            })?;
        }
        Ok(traces.iter().map(|t| t.run_id.clone()).collect())
    }

    fn count(&self, filter: &TraceFilter) -> Result<u64> {
        filter.validate()?;
        self.run("counting", async |inner, db| {
            let mut selection = Selection::new(&inner.tables, filter);
            if !selection.text_in_sql {
                return Ok(inner.summaries(db, filter).await?.len() as u64);
            }
            let paging = selection.paging(filter);
            let sql = format!(
                "SELECT count(*) FROM (SELECT 1 FROM {} t{}{ORDER}{paging}) page",
                inner.tables.traces, selection.condition
            );
            let row = db
                .query_one(&sql, &refs(&selection.params))
                .await
                .map_err(|e| backend("counting", e))?;
            Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
        })
    }

    fn stats(&self, filter: &TraceFilter) -> Result<TraceStats> {
        filter.validate()?;
        self.run("computing stats", async |inner, db| {
            stats::totals(inner, db, filter).await
        })
    }

    fn merge(&self, part: &Trace) -> Result<Trace> {
        part.validate()?;
        let parts = std::slice::from_ref(part);
        let mut merged = self.run("merging", async |inner, db| {
            let merged = write::merge_all(inner, db, parts).await?;
            write::maybe_index(inner, db, merged.len()).await;
            Ok(merged)
        })?;
        merged
            .remove(&part.run_id)
            .ok_or_else(|| Failure::Corrupt(format!("merging {:?} lost it", part.run_id)).into())
    }

    fn merge_many(&self, parts: &[Trace]) -> Result<Vec<String>> {
        parts.iter().try_for_each(Trace::validate)?;
        if !parts.is_empty() {
            self.run("merging", async |inner, db| {
                let merged = write::merge_all(inner, db, parts).await?;
                write::maybe_index(inner, db, merged.len()).await;
                Ok(())
            })?;
        }
        Ok(parts.iter().map(|p| p.run_id.clone()).collect())
    }

    fn stats_by(
        &self,
        filter: &TraceFilter,
        group: GroupBy,
    ) -> Result<Vec<(GroupKey, TraceStats)>> {
        filter.validate()?;
        group.validate()?;
        self.run("computing stats", async |inner, db| {
            stats::grouped(inner, db, filter, &group).await
        })
    }

    fn delete_where(&self, filter: &TraceFilter) -> Result<u64> {
        filter.validate()?;
        self.run("deleting traces", async |inner, db| {
            let mut selection = Selection::new(&inner.tables, filter);
            if !selection.text_in_sql {
                let ids: Vec<String> = inner
                    .summaries(db, filter)
                    .await?
                    .into_iter()
                    .map(|s| s.run_id)
                    .collect();
                return inner
                    .delete_rows(db, "SELECT unnest($1::text[])", &[&ids])
                    .await;
            }
            let paging = selection.paging(filter);
            let target = format!(
                "SELECT t.run_id FROM {} t{}{ORDER}{paging}",
                inner.tables.traces, selection.condition,
            );
            inner
                .delete_rows(db, &target, &refs(&selection.params))
                .await
        })
    }
}
