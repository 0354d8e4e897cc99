#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod checkpoint;
mod connection;
mod error;
mod merge;
mod options;
mod packed;
mod rows;
mod schema;
mod sql;
mod stats;
mod text;
mod url;

use std::path::{Path, PathBuf};

use rusqlite::{Transaction, TransactionBehavior, params_from_iter};
pub use trace_store_core::Durability;
use trace_store_core::{
    Error, GroupBy, GroupKey, Result, Trace, TraceFilter, TraceStats, TraceStore, TraceSummary,
};

use crate::connection::Connections;
pub use crate::options::{DEFAULT_FILE_MODE, SqliteOptions};
use crate::rows::{Encoded, SUMMARY_COLUMNS};
pub use crate::schema::SCHEMA_VERSION;
pub use crate::url::{IN_MEMORY_URL, SCHEME};

/// A trace store in a SQLite database file (or a private in-memory database).
///
/// One writer connection, behind a mutex, runs every write as one `BEGIN IMMEDIATE`
/// transaction; several processes may write to the same file, each waiting up to the
/// busy timeout for the others. Reads run on a small pool of reader connections and, in
/// WAL mode, never wait for a writer. Share one store across threads with `Arc`.
pub struct SqliteStore {
    conns: Connections,
    path: Option<PathBuf>,
    /// The database, as error messages name it.
    location: String,
    options: SqliteOptions,
    template: TraceSummary,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("location", &self.location)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

const IN_MEMORY: &str = "the in-memory SQLite database";

/// `save_many` batches from this size on are encoded on a helper thread.
const PIPELINE_MIN_TRACES: usize = 64;
/// Encoded traces the helper thread may run ahead of the writer.
const PIPELINE_DEPTH: usize = 256;

/// Most summaries a query reserves room for before it reads any.
const SUMMARIES_RESERVED: usize = 1024;

/// Why a write transaction stopped.
enum Failure {
    /// SQLite failed.
    Sql(rusqlite::Error),
    /// Anything else, reported as is.
    Store(Error),
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Failure {
        Failure::Sql(e)
    }
}

impl SqliteStore {
    /// Opens the database at `path`, creating it if needed, with default options.
    ///
    /// A file that is not a trace-store database (another application's SQLite
    /// database, or not SQLite at all) is refused and left untouched; a database from a
    /// newer trace-store is [`Error::UnsupportedVersion`]; one from an older version is
    /// migrated. `path` is always a file path, never an SQLite URI (`file:...`).
    ///
    /// ```
    /// use trace_store_core::{Trace, TraceStore};
    /// use trace_store_sqlite::SqliteStore;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = SqliteStore::open(dir.path().join("traces.db"))?;
    /// store.save(&Trace::new("run-1"))?;
    /// drop(store);
    /// let reopened = SqliteStore::open(dir.path().join("traces.db"))?;
    /// assert_eq!(reopened.load("run-1")?.run_id, "run-1");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// Opens the database at `path` with `options`; see [`SqliteStore::open`].
    pub fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<SqliteStore> {
        let path = path.as_ref();
        if path.as_os_str().is_empty() {
            return Err(Error::invalid("the SQLite database path is empty"));
        }
        // SQLite reads ":memory:" as "a new private database per connection", which
        // would give each reader its own empty database.
        if path.as_os_str() == ":memory:" {
            return Self::in_memory_with(options);
        }
        let location = path.display().to_string();
        Ok(SqliteStore {
            conns: Connections::open_file(path, &options, &location)?,
            path: Some(path.to_owned()),
            location,
            options,
            template: rows::template(),
        })
    }

    /// A new private in-memory database, visible from every thread that uses this store
    /// and gone when it is dropped.
    ///
    /// All operations share one connection (SQLite's in-memory databases have no
    /// write-ahead log, so separate readers would only contend for table locks).
    ///
    /// ```
    /// use trace_store_core::{Trace, TraceStore};
    /// use trace_store_sqlite::SqliteStore;
    ///
    /// let store = SqliteStore::in_memory()?;
    /// store.save(&Trace::new("run-1"))?;
    /// assert_eq!(store.list(10, 0)?.len(), 1);
    /// # Ok::<(), trace_store_core::Error>(())
    /// ```
    pub fn in_memory() -> Result<SqliteStore> {
        Self::in_memory_with(SqliteOptions::default())
    }

    fn in_memory_with(options: SqliteOptions) -> Result<SqliteStore> {
        Ok(SqliteStore {
            conns: Connections::open_memory(&options, IN_MEMORY)?,
            path: None,
            location: IN_MEMORY.to_owned(),
            options: options.with_readers(0),
            template: rows::template(),
        })
    }

    /// The database file, or `None` for an in-memory database.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &SqliteOptions {
        &self.options
    }

    /// Closes every connection, reporting what a drop would swallow. The last
    /// connection to the file checkpoints the write-ahead log into the database and
    /// removes it, leaving a single self-contained file.
    pub fn close(self) -> Result<()> {
        self.conns.close(&self.location)
    }

    /// Adds the text of every trace written since the trigram index last took a batch
    /// to the index now. Saves do this by themselves once 256 traces are waiting, and
    /// text queries find waiting traces too (by rechecking each one), so this is never
    /// needed for correct answers; it makes a text query in a store that was just
    /// loaded a pure index lookup (see `query_plan`).
    pub fn index_text(&self) -> Result<()> {
        self.write(
            0,
            || "indexing the searchable text".to_owned(),
            |tx| Ok(text::flush(tx)?),
        )
    }

    /// SQLite's `EXPLAIN QUERY PLAN` for `query(filter)`, one line per step, to check
    /// that a query uses the indexes. In the plan `t` is the `traces` table and `m0`,
    /// `m` are `trace_metadata`, whose primary key starts with `(key, value)`.
    ///
    /// ```
    /// use trace_store_core::TraceFilter;
    /// use trace_store_sqlite::SqliteStore;
    ///
    /// let store = SqliteStore::in_memory()?;
    /// let plan = store.query_plan(&TraceFilter::new().with_metadata("user_id", "u_1"))?;
    /// assert_eq!(plan[0], "SEARCH m0 USING PRIMARY KEY (key=? AND value=?)");
    /// # Ok::<(), trace_store_core::Error>(())
    /// ```
    pub fn query_plan(&self, filter: &TraceFilter) -> Result<Vec<String>> {
        filter.validate()?;
        let conn = self.conns.reader();
        let run = || -> rusqlite::Result<Vec<String>> {
            let text_index = sql::plan_text(&conn, filter)?;
            let statement = sql::select(filter, SUMMARY_COLUMNS, true, text_index.as_deref());
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {}", statement.sql))?;
            let plan = stmt.query_map(params_from_iter(&statement.params), |row| row.get(3))?;
            plan.collect()
        };
        run().map_err(|e| error::map(&self.location, "explaining a query", e))
    }

    /// Runs `work` in one `BEGIN IMMEDIATE` transaction on the writer connection:
    /// all of it is committed, or none. `action` names the work in error messages;
    /// `traces` is how many traces it writes.
    fn write<T>(
        &self,
        traces: u64,
        action: impl FnOnce() -> String,
        work: impl FnOnce(&Transaction<'_>) -> Result<T, Failure>,
    ) -> Result<T> {
        self.write_with(traces, true, action, work)
    }

    /// [`SqliteStore::write`]; without `checkpoint_at_commit`, the commit never runs
    /// SQLite's automatic checkpoint, for bulk deletes: their log can hold a large
    /// part of the database, and copying it back would double the caller's wait. The
    /// checkpoint thread copies it after the commit instead.
    fn write_with<T>(
        &self,
        traces: u64,
        checkpoint_at_commit: bool,
        action: impl FnOnce() -> String,
        work: impl FnOnce(&Transaction<'_>) -> Result<T, Failure>,
    ) -> Result<T> {
        let mut conn = self.conns.writer(&self.location)?;
        let autocheckpoint = |conn: &rusqlite::Connection, pages: i64| {
            conn.pragma_update(None, "wal_autocheckpoint", pages)
                .map_err(|e| error::map(&self.location, "setting the automatic checkpoint", e))
        };
        if !checkpoint_at_commit && self.path.is_some() {
            autocheckpoint(&conn, 0)?;
        }
        // IMMEDIATE takes the write lock up front: two processes that both started
        // deferred transactions could otherwise deadlock upgrading to it.
        let run = || -> Result<T, Failure> {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = work(&tx)?;
            text::flush_if_due(&tx)?;
            tx.commit()?;
            Ok(out)
        };
        let outcome = run();
        if !checkpoint_at_commit && self.path.is_some() {
            // Setting a pragma on an open connection does not fail in practice; should
            // it, the write has still happened (or not) as `outcome` says, and the
            // checkpoint thread still bounds the log.
            let _ = autocheckpoint(&conn, checkpoint::WRITER_AUTOCHECKPOINT);
        }
        // On failure the transaction has been dropped, which rolls it back.
        let out = match outcome {
            Ok(out) => out,
            Err(Failure::Sql(e)) => return Err(error::map(&self.location, action(), e)),
            Err(Failure::Store(e)) => return Err(e),
        };
        drop(conn);
        self.conns.committed(traces);
        Ok(out)
    }

    /// The summaries `query(filter)` returns.
    fn summaries(&self, filter: &TraceFilter) -> rusqlite::Result<Vec<TraceSummary>> {
        let conn = self.conns.reader();
        let text_index = sql::plan_text(&conn, filter)?;
        let statement = sql::select(filter, SUMMARY_COLUMNS, true, text_index.as_deref());
        let mut stmt = conn.prepare_cached(&statement.sql)?;
        let mut rows = stmt.query(params_from_iter(&statement.params))?;
        // Sized for the page up front: growing a vector of summaries copies them all.
        let mut out = Vec::with_capacity(filter.limit.unwrap_or(0).min(SUMMARIES_RESERVED));
        while let Some(row) = rows.next()? {
            out.push(rows::summary_from_row(row, &self.template)?);
        }
        Ok(out)
    }

    /// Totals per group of what `query(filter)` returns, computed in SQL (see
    /// `stats`); `None` for a grouping this crate does not know, which the caller
    /// computes with core.
    fn stats_in_sql<K: Ord>(
        &self,
        filter: &TraceFilter,
        group: Option<&GroupBy>,
        key: impl Fn(rusqlite::types::ValueRef<'_>) -> rusqlite::Result<K>,
    ) -> Result<Option<std::collections::BTreeMap<K, TraceStats>>> {
        let conn = self.conns.reader();
        stats::compute(&conn, filter, group, key)
            .map_err(|e| error::map(&self.location, "computing stats", e))
    }

    /// Reads the stored trace `run_id` on `conn`; `None` if there is none.
    fn read_trace(&self, conn: &rusqlite::Connection, run_id: &str) -> Result<Option<Trace>> {
        match rows::load(conn, run_id)
            .map_err(|e| error::map(&self.location, format!("loading trace {run_id:?}"), e))?
        {
            Some(Ok(trace)) => Ok(Some(trace)),
            Some(Err(Error::Corrupt { message, at })) => Err(Error::corrupt_at(
                at.with_key(run_id),
                format!("trace {run_id:?} in {}: {message}", self.location),
            )),
            Some(Err(other)) => Err(other),
            None => Ok(None),
        }
    }
}

impl TraceStore for SqliteStore {
    fn save(&self, trace: &Trace) -> Result<String> {
        let encoded = Encoded::new(trace)?;
        self.write(
            1,
            || format!("saving trace {:?}", trace.run_id),
            |tx| Ok(encoded.write(tx)?),
        )?;
        Ok(trace.run_id.clone())
    }

    fn load(&self, run_id: &str) -> Result<Trace> {
        let conn = self.conns.reader();
        self.read_trace(&conn, run_id)?
            .ok_or_else(|| Error::not_found(run_id))
    }

    fn list(&self, limit: usize, offset: usize) -> Result<Vec<TraceSummary>> {
        self.query(&TraceFilter::new().with_limit(limit).with_offset(offset))
    }

    fn query(&self, filter: &TraceFilter) -> Result<Vec<TraceSummary>> {
        filter.validate()?;
        self.summaries(filter)
            .map_err(|e| error::map(&self.location, "querying traces", e))
    }

    fn delete(&self, run_id: &str) -> Result<bool> {
        self.write(
            1,
            || format!("deleting trace {run_id:?}"),
            |tx| Ok(rows::delete(tx, run_id)?),
        )
    }

    fn save_many(&self, traces: &[Trace]) -> Result<Vec<String>> {
        // Bad input is reported before anything is written; the one transaction makes
        // the rest all or nothing.
        traces.iter().try_for_each(Trace::validate)?;
        if traces.is_empty() {
            // Nothing to write: no reason to wait for the write lock.
            return Ok(Vec::new());
        }
        let count = traces.len() as u64;
        let action = || format!("saving {count} traces");
        if traces.len() < PIPELINE_MIN_TRACES {
            let encoded = traces
                .iter()
                .map(Encoded::new)
                .collect::<Result<Vec<_>>>()?;
            self.write(count, action, |tx| {
                encoded.iter().try_for_each(|e| e.write(tx))?;
                Ok(())
            })?;
        } else {
            // Encoding (JSON above all) is a third of a large batch: a helper thread
            // encodes while this one writes.
            std::thread::scope(|scope| {
                let (sender, receiver) = std::sync::mpsc::sync_channel(PIPELINE_DEPTH);
                let encoder = std::thread::Builder::new()
                    .name("trace-store-sqlite-encode".into())
                    .spawn_scoped(scope, move || {
                        for trace in traces {
                            // The writer stopped (it failed): nothing more to do.
                            if sender.send(Encoded::new(trace)).is_err() {
                                break;
                            }
                        }
                    });
                if let Err(e) = encoder {
                    return Err(Error::backend(
                        "sqlite",
                        format!("cannot start the encoding thread: {e}"),
                    ));
                }
                self.write(count, action, |tx| {
                    let mut written = 0;
                    for encoded in receiver {
                        encoded.map_err(Failure::Store)?.write(tx)?;
                        written += 1;
                    }
                    // Never commit part of a batch, whatever stopped the encoder.
                    if written != traces.len() {
                        return Err(Failure::Store(Error::backend(
                            "sqlite",
                            format!(
                                "the encoding thread stopped after {written} of {count} traces"
                            ),
                        )));
                    }
                    Ok(())
                })
            })?;
        }
        Ok(traces.iter().map(|trace| trace.run_id.clone()).collect())
    }

    fn count(&self, filter: &TraceFilter) -> Result<u64> {
        filter.validate()?;
        let conn = self.conns.reader();
        let count = || -> rusqlite::Result<i64> {
            let text_index = sql::plan_text(&conn, filter)?;
            let statement = sql::count(filter, text_index.as_deref());
            conn.prepare_cached(&statement.sql)?
                .query_row(params_from_iter(&statement.params), |row| row.get(0))
        };
        count()
            .map(|n| n as u64)
            .map_err(|e| error::map(&self.location, "counting traces", e))
    }

    fn stats(&self, filter: &TraceFilter) -> Result<TraceStats> {
        filter.validate()?;
        // Every filter has an SQL form, so there is always an answer; no trace
        // selected is no group.
        Ok(self
            .stats_in_sql(filter, None, |_| Ok(()))?
            .and_then(|groups| groups.into_values().next())
            .unwrap_or_default())
    }

    fn merge(&self, part: &Trace) -> Result<Trace> {
        self.merge_one(part)
    }

    fn merge_many(&self, parts: &[Trace]) -> Result<Vec<String>> {
        self.merge_batch(parts)
    }

    fn stats_by(
        &self,
        filter: &TraceFilter,
        group: GroupBy,
    ) -> Result<Vec<(GroupKey, TraceStats)>> {
        filter.validate()?;
        group.validate()?;
        match self.stats_in_sql(filter, Some(&group), |g| stats::group_key(&group, g))? {
            Some(groups) => {
                // The order GroupBy::stats defines: by key, days newest first.
                let mut out: Vec<_> = groups.into_iter().collect();
                if group == GroupBy::Day {
                    out.reverse();
                }
                Ok(out)
            }
            None => Ok(group.stats(&self.query(filter)?)),
        }
    }

    fn delete_where(&self, filter: &TraceFilter) -> Result<u64> {
        filter.validate()?;
        // Exactly what query(filter) returns, paging included, chosen and deleted in
        // one transaction.
        let deleted = self.write_with(
            1,
            false,
            || "deleting the traces a filter selects".to_owned(),
            |tx| {
                let text_index = sql::plan_text(tx, filter)?;
                let selection =
                    sql::select(filter, "t.id", sql::is_paged(filter), text_index.as_deref());
                Ok(rows::delete_selected(tx, &selection)?)
            },
        )?;
        self.conns.committed(deleted.saturating_sub(1));
        Ok(deleted)
    }
}
