#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod keys;
mod options;
mod pool;
mod scripts;
pub mod server;

use std::fmt;

use redis::Connection;
use trace_store_core::{
    Error, Result, Trace, TraceFilter, TraceStats, TraceStore, TraceSummary, validate_run_id,
};

pub use options::RedisOptions;

use keys::Keys;
use pool::Pool;
use scripts::SCRIPTS;

/// Oldest server this crate works with (`ZRANGESTORE` came in 6.2).
const MIN_SERVER_VERSION: (u32, u32) = (6, 2);

/// Traces removed per script call by [`RedisStore::clear`], so a large namespace never
/// blocks the server for long.
const CLEAR_BATCH: usize = 1000;

/// A trace store on a Redis server: traces and their indexes under one key prefix,
/// changed only by atomic Lua scripts, queried through the indexes.
///
/// Cheap to share: all methods take `&self` and borrow a connection from an internal
/// pool for each call. See the crate documentation for the key layout.
pub struct RedisStore {
    pool: Pool,
    keys: Keys,
    options: RedisOptions,
    ttl_ms: u64,
    /// The URL as given, with any password replaced.
    url: String,
}

impl RedisStore {
    /// Connects to `url` (`redis://[user:password@]host[:port][/db][?prefix=..&ttl=..]`,
    /// also `redis+unix:///path`); see [`RedisOptions`] for the parameters.
    ///
    /// Opening checks the server at once (address, password, version 6.2 or newer),
    /// so a wrong URL fails here, as [`Error::Backend`], rather than at the first save.
    pub fn open(url: &str) -> Result<RedisStore> {
        Self::open_with(url, RedisOptions::default())
    }

    /// Connects with `options`; parameters in the URL override them.
    pub fn open_with(url: &str, options: RedisOptions) -> Result<RedisStore> {
        let mut options = options;
        let parsed = options::parse_url(url, &mut options)?;
        options.validate()?;
        let keys = Keys::new(options.prefix());
        let client = redis::Client::open(parsed.connect.as_str()).map_err(|e| {
            Error::invalid(format!("Redis URL {} is not usable: {e}", parsed.redacted))
        })?;
        let pool = Pool::new(
            client,
            parsed.address,
            options.connect_timeout(),
            options.read_timeout(),
            options.pool_size(),
        );
        let ttl_ms = options
            .ttl()
            .map_or(0, |ttl| u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
        let store = RedisStore {
            pool,
            keys,
            options,
            ttl_ms,
            url: parsed.redacted,
        };
        store.check_server()?;
        Ok(store)
    }

    /// The options in force (the URL's parameters included).
    pub fn options(&self) -> &RedisOptions {
        &self.options
    }

    /// Round trip to the server: `Ok` if it answers.
    pub fn ping(&self) -> Result<()> {
        self.pool
            .run("PING", |c| redis::cmd("PING").query::<String>(c))
            .map(drop)
    }

    /// Removes every trace and index of this store's prefix (and nothing else), in
    /// batches; returns how many traces were removed.
    pub fn clear(&self) -> Result<u64> {
        let mut removed = 0;
        loop {
            let batch: u64 = self.pool.run("clear", |c| {
                SCRIPTS
                    .clear
                    .arg(self.keys.base())
                    .arg(CLEAR_BATCH)
                    .invoke(c)
            })?;
            removed += batch;
            if batch == 0 {
                return Ok(removed);
            }
        }
    }

    fn check_server(&self) -> Result<()> {
        let info: String = self
            .pool
            .run("open", |c| redis::cmd("INFO").arg("server").query(c))?;
        let version = info
            .lines()
            .find_map(|line| line.strip_prefix("redis_version:"))
            .unwrap_or("0.0.0")
            .trim();
        let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        let found = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        if found < MIN_SERVER_VERSION {
            return Err(Error::backend(
                "redis",
                format!(
                    "the Redis server at {} runs version {version}; trace-store-redis needs {}.{} or newer",
                    self.pool.address(),
                    MIN_SERVER_VERSION.0,
                    MIN_SERVER_VERSION.1
                ),
            ));
        }
        Ok(())
    }

    /// Saves `traces` in one script run, all or nothing.
    fn write(&self, traces: &[Trace], action: &str) -> Result<Vec<String>> {
        traces.iter().try_for_each(Trace::validate)?;
        if traces.is_empty() {
            return Ok(Vec::new());
        }
        let mut invocation = SCRIPTS.save.prepare_invoke();
        invocation.arg(self.keys.base()).arg(self.ttl_ms);
        for trace in traces {
            let summary = TraceSummary::from(trace);
            let summary_json = serde_json::to_vec(&summary)
                .map_err(|e| Error::invalid(format!("cannot encode summary: {e}")))?;
            invocation
                .arg(&trace.run_id)
                .arg(trace.to_json_vec()?)
                .arg(summary_json)
                .arg(summary.steps)
                .arg(keys::index_record(&summary));
        }
        let _: u64 = self.pool.run(action, |c| invocation.invoke(c))?;
        Ok(traces.iter().map(|trace| trace.run_id.clone()).collect())
    }

    /// Runs the query script in `mode` (`page` or `count`).
    fn run_query<T: redis::FromRedisValue>(
        &self,
        filter: &TraceFilter,
        mode: &str,
        action: &str,
    ) -> Result<T> {
        let (hi, lo) = keys::lex_bounds(filter);
        let bound = |n: usize| n.min(i64::MAX as usize).to_string();
        let steps = |n: Option<usize>| n.map(bound).unwrap_or_default();
        let suffixes = keys::filter_suffixes(filter);
        let mut invocation = SCRIPTS.query.prepare_invoke();
        invocation
            .arg(self.keys.base())
            .arg(mode)
            .arg(hi)
            .arg(lo)
            .arg(bound(filter.offset))
            .arg(filter.limit.map_or_else(|| "-1".to_owned(), bound))
            .arg(steps(filter.min_steps))
            .arg(steps(filter.max_steps))
            .arg(suffixes.len());
        for suffix in &suffixes {
            invocation.arg(suffix);
        }
        self.pool
            .run(action, |c: &mut Connection| invocation.invoke(c))
    }

    fn summaries(&self, filter: &TraceFilter, action: &str) -> Result<Vec<TraceSummary>> {
        filter.validate()?;
        if filter.limit == Some(0) {
            return Ok(Vec::new());
        }
        let raw: Vec<Vec<u8>> = self.run_query(filter, "page", action)?;
        raw.iter()
            .map(|bytes| {
                serde_json::from_slice(bytes).map_err(|e| {
                    Error::corrupt(format!(
                        "a trace summary under the Redis prefix {:?} cannot be decoded: {e}",
                        self.options.prefix()
                    ))
                })
            })
            .collect()
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (open, idle) = self.pool.usage();
        f.debug_struct("RedisStore")
            .field("url", &self.url)
            .field("prefix", &self.options.prefix())
            .field("ttl", &self.options.ttl().map(|t| t.as_secs_f64()))
            .field("connections_open", &open)
            .field("connections_idle", &idle)
            .finish()
    }
}

impl TraceStore for RedisStore {
    fn save(&self, trace: &Trace) -> Result<String> {
        self.write(std::slice::from_ref(trace), "save")?;
        Ok(trace.run_id.clone())
    }

    fn load(&self, run_id: &str) -> Result<Trace> {
        // No stored trace has an invalid run_id; answer without asking the server.
        if validate_run_id(run_id).is_err() {
            return Err(Error::not_found(run_id));
        }
        let key = self.keys.body(run_id);
        let body: Option<Vec<u8>> = self
            .pool
            .run("load", |c| redis::cmd("GET").arg(&key).query(c))?;
        let body = body.ok_or_else(|| Error::not_found(run_id))?;
        Trace::from_json_slice(&body).map_err(|error| match error {
            Error::Corrupt { message } => Error::corrupt(format!("Redis key {key:?}: {message}")),
            other => other,
        })
    }

    fn list(&self, limit: usize, offset: usize) -> Result<Vec<TraceSummary>> {
        self.summaries(
            &TraceFilter::new().with_limit(limit).with_offset(offset),
            "list",
        )
    }

    fn query(&self, filter: &TraceFilter) -> Result<Vec<TraceSummary>> {
        self.summaries(filter, "query")
    }

    fn delete(&self, run_id: &str) -> Result<bool> {
        if validate_run_id(run_id).is_err() {
            return Ok(false);
        }
        let removed: u64 = self.pool.run("delete", |c| {
            SCRIPTS.delete.arg(self.keys.base()).arg(run_id).invoke(c)
        })?;
        Ok(removed > 0)
    }

    fn save_many(&self, traces: &[Trace]) -> Result<Vec<String>> {
        self.write(traces, "save_many")
    }

    fn count(&self, filter: &TraceFilter) -> Result<u64> {
        filter.validate()?;
        if filter.limit == Some(0) {
            return Ok(0);
        }
        self.run_query(filter, "count", "count")
    }

    fn stats(&self, filter: &TraceFilter) -> Result<TraceStats> {
        Ok(self.summaries(filter, "stats")?.iter().collect())
    }
}
