//! STUB: replaced by the Redis backend work (issue 5).
#![deny(missing_docs)]

use trace_store_core::{Error, Result, Trace, TraceFilter, TraceStore, TraceSummary};

/// Options of [`RedisStore::open_with`].
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct RedisOptions {
    /// Namespace of every key.
    pub prefix: Option<String>,
}

/// A trace store on a Redis server.
#[derive(Debug)]
pub struct RedisStore {}

impl RedisStore {
    /// Connects to `url` (`redis://host:port/db?prefix=..`).
    pub fn open(url: &str) -> Result<RedisStore> {
        Self::open_with(url, RedisOptions::default())
    }
    /// Connects with options.
    pub fn open_with(_url: &str, _options: RedisOptions) -> Result<RedisStore> {
        Err(unimplemented())
    }
}

impl TraceStore for RedisStore {
    fn save(&self, _trace: &Trace) -> Result<String> {
        Err(unimplemented())
    }
    fn load(&self, _run_id: &str) -> Result<Trace> {
        Err(unimplemented())
    }
    fn list(&self, _limit: usize, _offset: usize) -> Result<Vec<TraceSummary>> {
        Err(unimplemented())
    }
    fn query(&self, _filter: &TraceFilter) -> Result<Vec<TraceSummary>> {
        Err(unimplemented())
    }
    fn delete(&self, _run_id: &str) -> Result<bool> {
        Err(unimplemented())
    }
}

fn unimplemented() -> Error {
    Error::backend("redis", "STUB: not implemented yet")
}
