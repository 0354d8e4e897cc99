//! STUB: replaced by the SQLite backend work (issue 3).
#![deny(missing_docs)]

use std::path::Path;
use std::time::Duration;

pub use trace_store_core::Durability;
use trace_store_core::{Error, Result, Trace, TraceFilter, TraceStore, TraceSummary};

/// Options of [`SqliteStore::open_with`].
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct SqliteOptions {
    /// Durability of each save.
    pub durability: Durability,
    /// How long a writer waits for another process's lock.
    pub busy_timeout: Option<Duration>,
    /// Reader connections.
    pub readers: Option<usize>,
}

impl SqliteOptions {
    /// Sets the durability.
    #[must_use]
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }
}

/// A trace store in a SQLite database.
#[derive(Debug)]
pub struct SqliteStore {}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore> {
        Self::open_with(path, SqliteOptions::default())
    }
    /// Opens with options.
    pub fn open_with(_path: impl AsRef<Path>, _options: SqliteOptions) -> Result<SqliteStore> {
        Err(unimplemented())
    }
    /// A private in-memory database.
    pub fn in_memory() -> Result<SqliteStore> {
        Err(unimplemented())
    }
}

impl TraceStore for SqliteStore {
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
    Error::backend("sqlite", "STUB: not implemented yet")
}
