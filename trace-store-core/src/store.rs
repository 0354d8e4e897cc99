//! The [`TraceStore`] trait and its forwarding impls.

use std::fmt::Debug;
use std::sync::Arc;

use crate::{Result, Trace, TraceFilter, TraceStats, TraceSummary};

/// A place that persists and queries traces.
///
/// Five methods are required; `save_many`, `count` and `stats` have provided versions
/// that a backend overrides when it can do better (one transaction, aggregation in the
/// engine). Every implementation obeys the rules C1..C11 of the design contract and
/// proves it by running [`trace-store-conformance`](https://docs.rs/trace-store-conformance).
///
/// Methods take `&self`; share a store across threads with `Arc`. The trait is object
/// safe, and `&T`, `Box<T>` and `Arc<T>` forward to `T`.
pub trait TraceStore: Send + Sync + Debug {
    /// Validates and stores `trace`, replacing any trace with the same run_id, and returns
    /// the run_id. Invalid input is [`Error::InvalidInput`](crate::Error::InvalidInput)
    /// and writes nothing.
    fn save(&self, trace: &Trace) -> Result<String>;

    /// The trace stored under `run_id`, exactly as saved, or
    /// [`Error::NotFound`](crate::Error::NotFound).
    fn load(&self, run_id: &str) -> Result<Trace>;

    /// Summaries newest first (`created_at` descending, then run_id descending), at most
    /// `limit` of them after skipping `offset`. Same as `query` with only those set.
    fn list(&self, limit: usize, offset: usize) -> Result<Vec<TraceSummary>>;

    /// Summaries of the traces `filter` selects, in list order. A contradictory filter
    /// is [`Error::InvalidInput`](crate::Error::InvalidInput).
    fn query(&self, filter: &TraceFilter) -> Result<Vec<TraceSummary>>;

    /// Removes the trace; `true` if it existed.
    fn delete(&self, run_id: &str) -> Result<bool>;

    /// Saves every trace, validating all of them before writing any. Later traces win
    /// over earlier ones with the same run_id. Backends with transactions make this all
    /// or nothing; this provided version saves one by one.
    fn save_many(&self, traces: &[Trace]) -> Result<Vec<String>> {
        traces.iter().try_for_each(Trace::validate)?;
        traces.iter().map(|trace| self.save(trace)).collect()
    }

    /// How many summaries `query(filter)` returns.
    fn count(&self, filter: &TraceFilter) -> Result<u64> {
        Ok(self.query(filter)?.len() as u64)
    }

    /// Totals over the summaries `query(filter)` returns.
    fn stats(&self, filter: &TraceFilter) -> Result<TraceStats> {
        Ok(self.query(filter)?.iter().collect())
    }
}

macro_rules! forward_trace_store {
    ($($wrapper:ty),*) => {$(
        impl<T: TraceStore + ?Sized> TraceStore for $wrapper {
            fn save(&self, trace: &Trace) -> Result<String> {
                (**self).save(trace)
            }
            fn load(&self, run_id: &str) -> Result<Trace> {
                (**self).load(run_id)
            }
            fn list(&self, limit: usize, offset: usize) -> Result<Vec<TraceSummary>> {
                (**self).list(limit, offset)
            }
            fn query(&self, filter: &TraceFilter) -> Result<Vec<TraceSummary>> {
                (**self).query(filter)
            }
            fn delete(&self, run_id: &str) -> Result<bool> {
                (**self).delete(run_id)
            }
            fn save_many(&self, traces: &[Trace]) -> Result<Vec<String>> {
                (**self).save_many(traces)
            }
            fn count(&self, filter: &TraceFilter) -> Result<u64> {
                (**self).count(filter)
            }
            fn stats(&self, filter: &TraceFilter) -> Result<TraceStats> {
                (**self).stats(filter)
            }
        }
    )*};
}

forward_trace_store!(&T, Box<T>, Arc<T>);
