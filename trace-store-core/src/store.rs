//! The [`TraceStore`] trait and its forwarding impls.

use std::fmt::Debug;
use std::sync::Arc;

use crate::{GroupBy, GroupKey, Result, Trace, TraceFilter, TraceStats, TraceSummary};

/// A place that persists and queries traces.
///
/// Five methods are required; the others have provided versions that a backend
/// overrides when it can do better (one transaction, aggregation in the engine, an
/// atomic merge). Methods take `&self`; share a store across threads with `Arc`. The
/// trait is object safe, and `&T`, `Box<T>` and `Arc<T>` forward to `T`.
///
/// # Contract
///
/// Every implementation obeys these rules, and proves it by running the conformance
/// suite (crate `trace-store-conformance`), whose every failure message names the rule
/// it checks. Backends never differ in an answer.
///
/// - **C1 round trip**: `load(save(t)?)? == t`, exactly, for any valid trace (unicode,
///   5 MB payloads, every JSON type, nested steps, every [`StepKind`](crate::StepKind)
///   including `Other`, scores).
/// - **C2 upsert**: saving an existing run_id replaces it; `list` never shows a run_id
///   twice; `load` returns the newest save; order follows the new `created_at`.
/// - **C3 order**: `list` and `query` return newest first by `(created_at DESC, run_id
///   DESC)`, so equal `created_at` values come back in a deterministic order.
/// - **C4 paging**: filter, then order, then `after` (keyset cursor), then `offset`,
///   then `limit`. `list(l, o)` equals a query with only limit and offset set. Offset
///   past the end and `limit` 0 give empty pages; no limit returns all matches.
///   [`TraceSummary::cursor`] with [`TraceFilter::after`] pages through a store being
///   written to without skipping or repeating an unchanged trace.
/// - **C5 filter**: every set criterion must hold. `since`/`until` and
///   `min_steps`/`max_steps` are inclusive; `status`, `name`, `session_id`, `parent_run_id` exact.
///   `metadata_match`: every key present at top level with an equal value, equality
///   being that of [`canonical_json`](crate::canonical_json): `1 == 1.0`, `"1" != 1`,
///   `true != 1`, `null` matches only an explicit null, objects compare by content.
///   `score`: the trace-level score has a value in the inclusive range.
/// - **C6 bad filter**: `min_steps > max_steps`, `since > until`, an empty text query
///   or a score range with `min > max` is [`Error::InvalidInput`](crate::Error).
/// - **C7 delete**: `true`, then `false`; afterwards `load` is `NotFound` and no
///   `list`, `query`, `count`, `stats`, text search or grouped stats sees the trace.
/// - **C8 concurrency**: threads saving, loading, querying and deleting on one shared
///   store lose nothing; racing saves of one run_id leave exactly one of them.
/// - **C9 sharing** (durable backends): two handles on one location, in one process or
///   two, see each other's completed writes.
/// - **C10 durability** (durable backends): a save that returned `Ok` survives SIGKILL
///   of the process; reopening never fails on what a killed writer left behind.
/// - **C11 errors**: every failure is a typed [`Error`](crate::Error), never a panic; a
///   broken backend gives `Error::Backend` or `Error::Io` naming what failed.
/// - **C12 merge**: [`TraceStore::merge`] folds a part into the stored trace by
///   [`Trace::merge`], atomically per run_id: concurrent merges of disjoint steps into
///   one run_id (threads, and processes on durable backends) lose none.
/// - **C13 text search**: [`TraceFilter::text`] selects traces whose
///   [`Trace::search_text`] contains the query case-insensitively; an index may only
///   narrow the candidates, core's predicate decides.
/// - **C14 grouped stats**: [`TraceStore::stats_by`] gives, per group, exactly the
///   stats of the traces `query(filter)` returns that fall in it, in the order
///   [`GroupBy::stats`] defines.
/// - **C15 bulk delete**: [`TraceStore::delete_where`] deletes exactly what
///   `query(filter)` returns and says how many; retention
///   ([`TraceStoreExt::purge`](crate::TraceStoreExt::purge)) is built on it.
///
/// Validation on save: the run_id is 1..=256 bytes without control characters, the
/// schema version is not newer than [`SCHEMA_VERSION`](crate::SCHEMA_VERSION), scores
/// are finite; see [`Trace::validate`]. Invalid input writes nothing.
///
/// # Wrappers
///
/// A store that wraps another (to count, log, cache or add latency) must forward
/// **every** method, provided ones included: a wrapper that forwards only the required
/// five silently replaces the inner store's atomic `merge` and engine-side `stats_by`
/// with the slow, non-atomic provided versions. Put
/// `#[deny(clippy::missing_trait_methods)]` on the `impl` so a method added to this
/// trait later fails the build instead:
///
/// ```
/// use trace_store_core::*;
///
/// #[derive(Debug)]
/// struct Logged<S>(S);
///
/// #[deny(clippy::missing_trait_methods)]
/// impl<S: TraceStore> TraceStore for Logged<S> {
///     fn save(&self, trace: &Trace) -> Result<String> {
///         eprintln!("save {}", trace.run_id);
///         self.0.save(trace)
///     }
///     fn load(&self, run_id: &str) -> Result<Trace> { self.0.load(run_id) }
///     fn list(&self, limit: usize, offset: usize) -> Result<Vec<TraceSummary>> { self.0.list(limit, offset) }
///     fn query(&self, filter: &TraceFilter) -> Result<Vec<TraceSummary>> { self.0.query(filter) }
///     fn delete(&self, run_id: &str) -> Result<bool> { self.0.delete(run_id) }
///     fn save_many(&self, traces: &[Trace]) -> Result<Vec<String>> { self.0.save_many(traces) }
///     fn count(&self, filter: &TraceFilter) -> Result<u64> { self.0.count(filter) }
///     fn stats(&self, filter: &TraceFilter) -> Result<TraceStats> { self.0.stats(filter) }
///     fn merge(&self, part: &Trace) -> Result<Trace> { self.0.merge(part) }
///     fn merge_many(&self, parts: &[Trace]) -> Result<Vec<String>> { self.0.merge_many(parts) }
///     fn stats_by(&self, filter: &TraceFilter, group: GroupBy) -> Result<Vec<(GroupKey, TraceStats)>> {
///         self.0.stats_by(filter, group)
///     }
///     fn delete_where(&self, filter: &TraceFilter) -> Result<u64> { self.0.delete_where(filter) }
/// }
/// ```
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

    /// Folds `part` into the stored trace with the same run_id by [`Trace::merge`] and
    /// returns the result, which is now stored; with no stored trace, saves `part`
    /// (rule C12). An invalid `part`, or a fold whose result is invalid, is
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) and writes nothing.
    ///
    /// This provided version (load, fold, save) is not atomic: two merges racing on one
    /// run_id can lose one of them. Every built-in backend overrides it with an atomic
    /// one; a backend of yours must too (the conformance suite's concurrent merge cases
    /// check it).
    fn merge(&self, part: &Trace) -> Result<Trace> {
        part.validate()?;
        let merged = match self.load(&part.run_id) {
            Ok(mut stored) => {
                stored.merge(part);
                stored
            }
            Err(crate::Error::NotFound { .. }) => part.clone(),
            Err(error) => return Err(error),
        };
        merged.validate()?;
        self.save(&merged)?;
        Ok(merged)
    }

    /// Folds every part into its stored trace as [`merge`](Self::merge) would, parts
    /// with the same run_id in the order given, and returns the run_ids in that order.
    /// Every part is validated before anything is written. Backends with transactions
    /// fold a batch in one transaction, all or nothing, and write each run_id once;
    /// this provided version merges one part at a time. This is what a collector
    /// receiving many spans of a few traces per request calls.
    fn merge_many(&self, parts: &[Trace]) -> Result<Vec<String>> {
        parts.iter().try_for_each(Trace::validate)?;
        parts
            .iter()
            .map(|part| self.merge(part).map(|merged| merged.run_id))
            .collect()
    }

    /// Totals per group of the traces `query(filter)` returns (rule C14), in the order
    /// [`GroupBy::stats`] defines. Backends with a query engine compute it there.
    fn stats_by(
        &self,
        filter: &TraceFilter,
        group: GroupBy,
    ) -> Result<Vec<(GroupKey, TraceStats)>> {
        group.validate()?;
        Ok(group.stats(&self.query(filter)?))
    }

    /// Deletes exactly the traces `query(filter)` returns, paging included, and says
    /// how many (rule C15). Backends with transactions make it all or nothing; this
    /// provided version deletes one by one.
    fn delete_where(&self, filter: &TraceFilter) -> Result<u64> {
        let mut deleted = 0;
        for summary in self.query(filter)? {
            if self.delete(&summary.run_id)? {
                deleted += 1;
            }
        }
        Ok(deleted)
    }
}

macro_rules! forward_trace_store {
    ($($wrapper:ty),*) => {$(
        #[deny(clippy::missing_trait_methods)]
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
            fn merge(&self, part: &Trace) -> Result<Trace> {
                (**self).merge(part)
            }
            fn merge_many(&self, parts: &[Trace]) -> Result<Vec<String>> {
                (**self).merge_many(parts)
            }
            fn stats_by(
                &self,
                filter: &TraceFilter,
                group: GroupBy,
            ) -> Result<Vec<(GroupKey, TraceStats)>> {
                (**self).stats_by(filter, group)
            }
            fn delete_where(&self, filter: &TraceFilter) -> Result<u64> {
                (**self).delete_where(filter)
            }
        }
    )*};
}

forward_trace_store!(&T, Box<T>, Arc<T>);
