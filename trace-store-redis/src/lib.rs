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
use pool::{Pool, Repeat};
use scripts::SCRIPTS;

/// Oldest server this crate works with (`ZRANGESTORE` came in 6.2).
const MIN_SERVER_VERSION: (u32, u32) = (6, 2);

/// Traces removed per script call by [`RedisStore::clear`], so a large namespace never
/// blocks the server for long.
const CLEAR_BATCH: usize = 1000;

/// Most traces, and most bytes of arguments, that one save script takes. Redis runs
/// nothing else while a script runs, so a large `save_many` goes out as several calls
/// of a few milliseconds each rather than one that stalls every other client (10,000
/// traces in one script held the server for half a second).
const SAVE_BATCH_TRACES: usize = 100;
const SAVE_BATCH_BYTES: usize = 1 << 20;

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
            .run("PING", Repeat::Safe, |c| {
                redis::cmd("PING").query::<String>(c)
            })
            .map(drop)
    }

    /// Removes every trace and index of this store's prefix (and nothing else), in
    /// batches; returns how many traces were removed.
    pub fn clear(&self) -> Result<u64> {
        let mut removed = 0;
        loop {
            let batch: u64 = self.pool.run("clear", Repeat::Never, |c| {
                SCRIPTS
                    .clear
                    .key(self.keys.base())
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
        let info: String = self.pool.run("open", Repeat::Safe, |c| {
            redis::cmd("INFO").arg("server").query(c)
        })?;
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

    /// Saves `traces`: all validated and encoded first, so bad input writes nothing;
    /// then one script run per batch, each batch all or nothing.
    fn write(&self, traces: &[Trace], action: &str) -> Result<()> {
        traces.iter().try_for_each(Trace::validate)?;
        let encoded = traces
            .iter()
            .map(Encoded::new)
            .collect::<Result<Vec<_>>>()?;
        let mut start = 0;
        while start < encoded.len() {
            let end = start + batch_len(&encoded[start..]);
            let mut invocation = SCRIPTS.save.prepare_invoke();
            invocation.key(self.keys.base()).arg(self.ttl_ms);
            for trace in &encoded[start..end] {
                invocation
                    .arg(trace.run_id)
                    .arg(&trace.body)
                    .arg(&trace.summary)
                    .arg(trace.steps)
                    .arg(&trace.record);
            }
            let batch_action;
            let action = if start == 0 && end == encoded.len() {
                action
            } else {
                // Say how far a failed save_many got: earlier batches are saved.
                batch_action = format!(
                    "{action} of traces {}..={end} of {} (the {start} before them are saved)",
                    start + 1,
                    encoded.len()
                );
                &batch_action
            };
            let _: u64 = self
                .pool
                .run(action, Repeat::Safe, |c| invocation.invoke(c))?;
            start = end;
        }
        Ok(())
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
            .key(self.keys.base())
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
        self.pool.run(action, Repeat::Safe, |c: &mut Connection| {
            invocation.invoke(c)
        })
    }

    fn summaries(&self, filter: &TraceFilter, action: &str) -> Result<Vec<TraceSummary>> {
        filter.validate()?;
        if filter.limit == Some(0) {
            return Ok(Vec::new());
        }
        let (raw, damaged): (Vec<Vec<u8>>, Vec<String>) = self.run_query(filter, "page", action)?;
        if let Some(run_id) = damaged.first() {
            return Err(Error::corrupt(format!(
                "the summary of the trace {run_id:?} ({} damaged in all) under the Redis prefix {:?} on {} is missing while the trace is there: the server evicted keys (set maxmemory-policy to noeviction) or they were edited by hand; load and save such a trace again, or delete it",
                damaged.len(),
                self.options.prefix(),
                self.pool.address(),
            )));
        }
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

/// How many of `traces` (at least one, if there are any) the next save script takes.
fn batch_len(traces: &[Encoded<'_>]) -> usize {
    let mut bytes = 0;
    let mut len = 0;
    for trace in traces.iter().take(SAVE_BATCH_TRACES) {
        bytes += trace.len();
        if len > 0 && bytes > SAVE_BATCH_BYTES {
            break;
        }
        len += 1;
    }
    len
}

/// One trace as the save script takes it.
struct Encoded<'a> {
    run_id: &'a str,
    body: Vec<u8>,
    summary: Vec<u8>,
    steps: usize,
    record: String,
}

impl<'a> Encoded<'a> {
    fn new(trace: &'a Trace) -> Result<Encoded<'a>> {
        let summary = TraceSummary::from(trace);
        Ok(Encoded {
            run_id: &trace.run_id,
            body: trace.to_json_vec()?,
            summary: serde_json::to_vec(&summary)
                .map_err(|e| Error::invalid(format!("cannot encode summary: {e}")))?,
            steps: summary.steps,
            record: keys::index_record(&summary),
        })
    }

    /// Bytes sent for this trace.
    fn len(&self) -> usize {
        self.run_id.len() + self.body.len() + self.summary.len() + self.record.len()
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
        let body: Option<Vec<u8>> = self.pool.run("load", Repeat::Safe, |c| {
            redis::cmd("GET").arg(&key).query(c)
        })?;
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
        let removed: u64 = self.pool.run("delete", Repeat::Never, |c| {
            SCRIPTS.delete.key(self.keys.base()).arg(run_id).invoke(c)
        })?;
        Ok(removed > 0)
    }

    fn save_many(&self, traces: &[Trace]) -> Result<Vec<String>> {
        self.write(traces, "save_many")?;
        Ok(traces.iter().map(|trace| trace.run_id.clone()).collect())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_batches_are_bounded_by_count_and_bytes() {
        let small: Vec<Trace> = (0..250).map(|i| Trace::new(format!("r{i}"))).collect();
        // Its blob is sent twice, in the body and in the summary's metadata.
        let big = Trace::new("big").with_metadata("blob", "x".repeat(SAVE_BATCH_BYTES / 4 + 1));
        let mut traces = small.clone();
        traces.insert(3, big.clone());
        traces.insert(4, big.clone());
        let encoded: Vec<Encoded<'_>> = traces.iter().map(|t| Encoded::new(t).unwrap()).collect();
        let mut lengths = Vec::new();
        let mut start = 0;
        while start < encoded.len() {
            let len = batch_len(&encoded[start..]);
            lengths.push(len);
            start += len;
        }
        // Three small and one big; the second big alone would overflow with the first;
        // then the count bound.
        assert_eq!(lengths, [4, 100, 100, 48]);
        // A trace larger than the byte bound still goes, alone.
        let huge = Trace::new("huge").with_metadata("blob", "x".repeat(SAVE_BATCH_BYTES));
        let alone = [
            Encoded::new(&huge).unwrap(),
            Encoded::new(&small[0]).unwrap(),
        ];
        assert_eq!(batch_len(&alone), 1);
        assert_eq!(batch_len(&[]), 0);
    }
}
