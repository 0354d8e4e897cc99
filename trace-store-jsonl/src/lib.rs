//! STUB: replaced by the JSONL backend work (issue 4).
#![deny(missing_docs)]

use std::path::Path;

pub use trace_store_core::Durability;
use trace_store_core::{Error, Result, Trace, TraceFilter, TraceStore, TraceSummary};

/// Options of [`JsonlStore::open_with`].
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct JsonlOptions {
    /// Durability of each append.
    pub durability: Durability,
}

impl JsonlOptions {
    /// Sets the durability.
    #[must_use]
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }
}

/// A trace store in a JSON Lines file.
#[derive(Debug)]
pub struct JsonlStore {}

impl JsonlStore {
    /// Opens (creating if needed) the file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<JsonlStore> {
        Self::open_with(path, JsonlOptions::default())
    }
    /// Opens with options.
    pub fn open_with(_path: impl AsRef<Path>, _options: JsonlOptions) -> Result<JsonlStore> {
        Err(unimplemented())
    }
    /// Rewrites the file without dead records.
    pub fn compact(&self) -> Result<()> {
        Err(unimplemented())
    }
}

impl TraceStore for JsonlStore {
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
    Error::backend("jsonl", "STUB: not implemented yet")
}
