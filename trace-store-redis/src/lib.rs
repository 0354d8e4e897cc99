#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod clear;
mod keys;
mod merge;
mod options;
mod pool;
mod scripts;

use std::fmt;

use redis::ConnectionLike;
use trace_store_core::{
    CorruptAt, Error, GroupBy, GroupKey, Result, Trace, TraceFilter, TraceStats, TraceStore,
    TraceSummary, validate_run_id,
};

pub use options::{RedisOptions, SCHEMES};

use keys::Keys;
use pool::{Connector, Pool, Repeat};
use scripts::SCRIPTS;

/// Oldest server this crate works with (`ZRANGESTORE` came in 6.2).
const MIN_SERVER_VERSION: (u32, u32) = (6, 2);

/// Most traces, and most bytes of arguments, that one save script takes. Redis runs
/// nothing else while a script runs, so a large `save_many` goes out as several calls
/// of a few milliseconds each rather than one that stalls every other client (10,000
/// traces in one script held the server for half a second).
const SAVE_BATCH_TRACES: usize = 100;
const SAVE_BATCH_BYTES: usize = 1 << 20;

/// Traces removed per script call by `delete_where`, for the same reason.
const DELETE_BATCH: usize = 1000;

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
        let keys = Keys::new(&options.prefix);
        let unusable = |e: redis::RedisError| {
            Error::invalid(format!("Redis URL {} is not usable: {e}", parsed.redacted))
        };
        let connector = if parsed.cluster_seeds.is_empty() {
            Connector::Single(redis::Client::open(parsed.connect.as_str()).map_err(unusable)?)
        } else {
            Connector::Cluster(
                pool::cluster_client(
                    &parsed.cluster_seeds,
                    options.connect_timeout,
                    options.read_timeout,
                )
                .map_err(unusable)?,
            )
        };
        let pool = Pool::new(
            connector,
            parsed.address,
            options.connect_timeout,
            options.read_timeout,
            options.pool_size,
        );
        let ttl_ms = options
            .ttl
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

    fn check_server(&self) -> Result<()> {
        // A Cluster client asks every node and answers with a map of replies; a
        // single server gives one string. Every version must do.
        let info: redis::Value = self.pool.run("open", Repeat::Safe, |c| {
            redis::cmd("INFO").arg("server").query(c)
        })?;
        let versions: Vec<String> = texts(&info)
            .iter()
            .filter_map(|text| {
                text.lines()
                    .find_map(|line| line.strip_prefix("redis_version:"))
                    .map(|version| version.trim().to_owned())
            })
            .collect();
        let versions = if versions.is_empty() {
            vec!["0.0.0".to_owned()]
        } else {
            versions
        };
        for version in &versions {
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
        }
        self.check_eviction_policy();
        Ok(())
    }

    /// Warns (once per process, on stderr) when the server may evict any key: an
    /// `allkeys-*` policy drops index keys as readily as bodies, and traces then
    /// vanish from lists and queries. Not refused: the scripts stay correct and
    /// terminate with keys missing (they drop what is left of a damaged trace, and
    /// reads report a trace whose summary is gone as `Error::Corrupt`), and a server
    /// shared with a cache may have that policy for good reasons. `CONFIG` may be
    /// disabled or renamed (managed services do that): then nothing is checked.
    fn check_eviction_policy(&self) {
        static WARNED: std::sync::Once = std::sync::Once::new();
        let Ok(reply) = self.pool.run("open", Repeat::Safe, |c| {
            redis::cmd("CONFIG")
                .arg("GET")
                .arg("maxmemory-policy")
                .query::<redis::Value>(c)
        }) else {
            return;
        };
        if let Some(policy) = texts(&reply)
            .into_iter()
            .find(|text| text.starts_with("allkeys-"))
        {
            WARNED.call_once(|| {
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stderr(),
                    "trace-store-redis: the Redis server at {} has maxmemory-policy {policy}: under memory pressure it may evict index keys, and traces then disappear from lists and queries; use noeviction (see the crate README)",
                    self.pool.address()
                );
            });
        }
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
            invocation
                .key(self.keys.base())
                .arg(self.ttl_ms)
                .arg(version_token());
            for trace in &encoded[start..end] {
                trace.add_args(&mut invocation);
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
        let mut ranges = Vec::new();
        if filter.min_steps.is_some() || filter.max_steps.is_some() {
            ranges.push((
                "steps".to_owned(),
                steps(filter.min_steps),
                steps(filter.max_steps),
            ));
        }
        if let Some(range) = &filter.score {
            let value = |v: Option<f64>| v.map(keys::score_value).unwrap_or_default();
            ranges.push((
                keys::score_suffix(&range.name),
                value(range.min),
                value(range.max),
            ));
        }
        // Core's predicate lower-cases the query with `str::to_lowercase`; so does this.
        let text = filter.text.as_deref().map(str::to_lowercase);
        let mut invocation = SCRIPTS.query.prepare_invoke();
        invocation
            .key(self.keys.base())
            .arg(mode)
            .arg(hi)
            .arg(lo)
            .arg(bound(filter.offset))
            .arg(filter.limit.map_or_else(|| "-1".to_owned(), bound))
            .arg(text.unwrap_or_default())
            .arg(suffixes.len());
        for suffix in &suffixes {
            invocation.arg(suffix);
        }
        invocation.arg(ranges.len());
        for (suffix, min, max) in &ranges {
            invocation.arg(suffix).arg(min).arg(max);
        }
        self.pool
            .run(action, Repeat::Safe, |c: &mut dyn ConnectionLike| {
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
                &self.options.prefix,
                self.pool.address(),
            )));
        }
        raw.iter()
            .map(|bytes| {
                serde_json::from_slice(bytes).map_err(|e| {
                    Error::corrupt(format!(
                        "a trace summary under the Redis prefix {:?} cannot be decoded: {e}",
                        &self.options.prefix
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

/// One trace as the save and merge scripts take it.
struct Encoded<'a> {
    run_id: &'a str,
    body: Vec<u8>,
    summary: Vec<u8>,
    steps: usize,
    record: String,
    /// Core's searchable text, kept beside the summary for text queries.
    text: String,
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
            text: trace.search_text(),
        })
    }

    /// Bytes sent for this trace.
    fn len(&self) -> usize {
        self.run_id.len()
            + self.body.len()
            + self.summary.len()
            + self.record.len()
            + self.text.len()
    }

    /// The six script arguments of this trace, in the order `store` in common.lua takes.
    fn add_args(&self, invocation: &mut redis::ScriptInvocation<'_>) {
        invocation
            .arg(self.run_id)
            .arg(&self.body)
            .arg(&self.summary)
            .arg(self.steps)
            .arg(&self.record)
            .arg(&self.text);
    }
}

/// A token that no other write, in this process or any other, uses: the version a
/// write leaves on a trace, which merge's compare-and-set compares. A random per-process
/// part (std's `RandomState` is seeded from the OS) and a counter.
fn version_token() -> String {
    use std::hash::BuildHasher as _;
    use std::sync::LazyLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static PROCESS: LazyLock<u64> = LazyLock::new(|| {
        let state = std::collections::hash_map::RandomState::new();
        state.hash_one((std::process::id(), std::time::SystemTime::now()))
    });
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!(
        "{:016x}{:x}",
        *PROCESS,
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (open, idle) = self.pool.usage();
        f.debug_struct("RedisStore")
            .field("url", &self.url)
            .field("prefix", &self.options.prefix)
            .field("ttl", &self.options.ttl.map(|t| t.as_secs_f64()))
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
        decode_body(&key, &body)
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
        let removed: i64 = self.pool.run("delete", Repeat::Never, |c| {
            SCRIPTS.delete.key(self.keys.base()).arg(run_id).invoke(c)
        })?;
        if removed < 0 {
            return self.delete_orphan(run_id, "delete");
        }
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

    fn merge(&self, part: &Trace) -> Result<Trace> {
        self.merge_part(part)
    }

    /// Core's grouping over the summaries `query(filter)` reads (in one script run),
    /// so each group is exactly that query's traces in it.
    fn stats_by(
        &self,
        filter: &TraceFilter,
        group: GroupBy,
    ) -> Result<Vec<(GroupKey, TraceStats)>> {
        group.validate()?;
        Ok(group.stats(&self.summaries(filter, "stats_by")?))
    }

    /// The run_ids `query(filter)` selects (one script run, paging included), then
    /// deleted in script calls of at most 1000 traces, each trace with all
    /// its index entries at once.
    fn delete_where(&self, filter: &TraceFilter) -> Result<u64> {
        filter.validate()?;
        if filter.limit == Some(0) {
            return Ok(0);
        }
        let (ids, _): (Vec<String>, Vec<String>) = self.run_query(filter, "ids", "delete_where")?;
        let mut deleted = 0;
        for batch in ids.chunks(DELETE_BATCH) {
            let mut invocation = SCRIPTS.delete_many.prepare_invoke();
            invocation.key(self.keys.base());
            for run_id in batch {
                invocation.arg(run_id);
            }
            let (removed, orphans): (u64, Vec<String>) =
                self.pool
                    .run("delete_where", Repeat::Never, |c| invocation.invoke(c))?;
            deleted += removed;
            for run_id in &orphans {
                deleted += u64::from(self.delete_orphan(run_id, "delete_where")?);
            }
        }
        Ok(deleted)
    }
}

/// Every string inside a reply (a Cluster client's replies come as a map from node to
/// that node's reply).
fn texts(value: &redis::Value) -> Vec<String> {
    match value {
        redis::Value::BulkString(bytes) => vec![String::from_utf8_lossy(bytes).into_owned()],
        redis::Value::SimpleString(text) | redis::Value::VerbatimString { text, .. } => {
            vec![text.clone()]
        }
        redis::Value::Array(items) | redis::Value::Set(items) => {
            items.iter().flat_map(texts).collect()
        }
        redis::Value::Map(pairs) => pairs
            .iter()
            .flat_map(|(key, value)| texts(key).into_iter().chain(texts(value)))
            .collect(),
        _ => Vec::new(),
    }
}

/// Decodes a stored body, naming the key if it is damaged.
fn decode_body(key: &str, body: &[u8]) -> Result<Trace> {
    Trace::from_json_slice(body).map_err(|error| match error {
        Error::Corrupt { message, .. } => Error::corrupt_at(
            CorruptAt::default().with_key(key),
            format!("Redis key {key:?}: {message}"),
        ),
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_batches_are_bounded_by_count_and_bytes() {
        let small: Vec<Trace> = (0..250).map(|i| Trace::new(format!("r{i}"))).collect();
        // Its blob is sent three times: in the body, the summary's metadata and the
        // searchable text.
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
