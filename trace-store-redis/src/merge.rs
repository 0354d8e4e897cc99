//! `merge` as optimistic concurrency: read the stored trace and its version, fold the
//! part into it with core's `Trace::merge` (the one fold; a Lua copy of it would be a
//! second definition to keep in step), then write with a script that succeeds only if
//! the version is still the one read. A conflict means another write landed in
//! between; the fold is done again on what it wrote, so no write is lost.

use std::hash::BuildHasher as _;
use std::time::Duration;

use trace_store_core::{Error, Result, Trace, TraceFilter};

use crate::pool::Repeat;
use crate::scripts::SCRIPTS;
use crate::{Encoded, RedisStore, decode_body, version_token};

/// Reads and compare-and-sets before `merge` gives up. Every conflict is another
/// write that succeeded, so only a run_id under constant heavy contention gets here.
const MERGE_ATTEMPTS: u32 = 200;

/// Traces per page that `reindex` reads.
const REINDEX_PAGE: usize = 500;

impl RedisStore {
    pub(crate) fn merge_part(&self, part: &Trace) -> Result<Trace> {
        part.validate()?;
        let ttl = i64::try_from(self.ttl_ms).unwrap_or(i64::MAX);
        for attempt in 0..MERGE_ATTEMPTS {
            let (stored, version) = self.read_versioned(&part.run_id, "merge")?;
            let merged = match stored {
                Some(mut stored) => {
                    stored.merge(part);
                    stored
                }
                None => part.clone(),
            };
            merged.validate()?;
            if self.write_if_version(&merged, &version, ttl, "merge")? {
                return Ok(merged);
            }
            std::thread::sleep(backoff(attempt));
        }
        // Nothing was written, and the contention passes: retrying later succeeds.
        Err(Error::retryable_backend(
            "redis",
            format!(
                "merge of {:?} on {} conflicted with other writes {MERGE_ATTEMPTS} times in a row; retry it, or spread the writers of one run_id over time",
                part.run_id,
                self.pool.address()
            ),
        ))
    }

    /// Rewrites every trace's summary, searchable text and index entries from its
    /// stored body, as this version of the crate computes them, keeping each trace's
    /// expiry; returns how many traces it rewrote.
    ///
    /// Run it once on a store written by a version of this crate from before sessions,
    /// scores and text search: until then, such traces keep their old summaries (no
    /// `session_id`, `parent_run_id`, `failed_steps` or `scores`) and match no session,
    /// parent, score or text query. Safe while others write: each trace is rewritten by
    /// the compare-and-set of `merge`, and a trace written meanwhile is left as that
    /// write made it. Pages through the store, 500 traces per query.
    pub fn reindex(&self) -> Result<u64> {
        let mut rewritten = 0;
        let mut filter = TraceFilter::new().with_limit(REINDEX_PAGE);
        loop {
            let page = self.summaries(&filter, "reindex")?;
            for summary in &page {
                let (stored, version) = self.read_versioned(&summary.run_id, "reindex")?;
                if let Some(trace) = stored
                    && self.write_if_version(&trace, &version, KEEP_EXPIRY, "reindex")?
                {
                    rewritten += 1;
                }
            }
            match page.last() {
                Some(last) if page.len() == REINDEX_PAGE => {
                    filter = filter.with_after(last.cursor());
                }
                _ => return Ok(rewritten),
            }
        }
    }

    /// The stored trace (if any) and its version, read at one instant.
    fn read_versioned(&self, run_id: &str, action: &str) -> Result<(Option<Trace>, String)> {
        let (body, version): (Option<Vec<u8>>, String) =
            self.pool.run(action, Repeat::Safe, |c| {
                SCRIPTS.read.key(self.keys.base()).arg(run_id).invoke(c)
            })?;
        let stored = body
            .map(|body| decode_body(&self.keys.body(run_id), &body))
            .transpose()?;
        Ok((stored, version))
    }

    /// Writes `trace` with all its indexes if the stored one is still at `expected`;
    /// `false` if another write came in between. `ttl_ms` as merge.lua takes it.
    fn write_if_version(
        &self,
        trace: &Trace,
        expected: &str,
        ttl_ms: i64,
        action: &str,
    ) -> Result<bool> {
        let encoded = Encoded::new(trace)?;
        let mut invocation = SCRIPTS.merge.prepare_invoke();
        // The script treats finding this very token as success, so a retry after a
        // dropped connection does not fold the part in twice.
        invocation
            .key(self.keys.base())
            .arg(ttl_ms)
            .arg(expected)
            .arg(version_token());
        encoded.add_args(&mut invocation);
        let written: u64 = self
            .pool
            .run(action, Repeat::Safe, |c| invocation.invoke(c))?;
        Ok(written == 1)
    }
}

/// merge.lua's TTL argument that keeps the trace's current expiry.
const KEEP_EXPIRY: i64 = -1;

/// A random wait, growing with the attempt (up to about 3 ms), so that writers that
/// keep colliding on one run_id fall out of step.
fn backoff(attempt: u32) -> Duration {
    let spread_us = 50u64 << attempt.min(6);
    let random = std::collections::hash_map::RandomState::new().hash_one(attempt);
    Duration::from_micros(random % spread_us)
}
