//! Conveniences built only on the [`TraceStore`] trait, for every store.

use std::io::{BufRead, Write};

use crate::{Error, Result, Timestamp, Trace, TraceFilter, TraceStore, TraceSummary};

/// Traces per `save_many` call when copying or importing.
const BATCH: usize = 256;

/// Conveniences available on every [`TraceStore`], including `dyn TraceStore`.
///
/// ```
/// # fn demo(store: &dyn trace_store_core::TraceStore) -> trace_store_core::Result<()> {
/// use trace_store_core::{TraceFilter, TraceStoreExt};
///
/// if let Some(trace) = store.load_opt("run-1")? {
///     println!("{} steps", trace.steps.len());
/// }
/// for summary in store.iter_summaries(TraceFilter::new(), 500) {
///     println!("{}", summary?.run_id);
/// }
/// # Ok(()) }
/// ```
pub trait TraceStoreExt: TraceStore {
    /// `load`, with `None` instead of [`Error::NotFound`].
    fn load_opt(&self, run_id: &str) -> Result<Option<Trace>> {
        match self.load(run_id) {
            Ok(trace) => Ok(Some(trace)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Every summary `filter` selects, fetched `page_size` at a time with keyset
    /// cursors, so writes during the walk never make it skip or repeat an unchanged
    /// trace. The filter's own cursor, offset and limit apply to the whole walk.
    fn iter_summaries(&self, filter: TraceFilter, page_size: usize) -> SummaryPages<'_, Self> {
        SummaryPages {
            store: self,
            remaining: filter.limit,
            filter: TraceFilter {
                limit: None,
                ..filter
            },
            page_size: page_size.max(1),
            page: Vec::new().into_iter(),
            done: false,
        }
    }

    /// Every trace `filter` selects, loaded one by one in list order while summaries are
    /// fetched `page_size` at a time. A trace deleted during the walk is skipped.
    fn iter_traces(
        &self,
        filter: TraceFilter,
        page_size: usize,
    ) -> impl Iterator<Item = Result<Trace>> + '_ {
        self.iter_summaries(filter, page_size)
            .filter_map(|summary| match summary {
                Ok(summary) => self.load_opt(&summary.run_id).transpose(),
                Err(error) => Some(Err(error)),
            })
    }

    /// Copies every trace `filter` selects into `target` (upserting) and returns how
    /// many were copied.
    fn copy_to(&self, target: &dyn TraceStore, filter: &TraceFilter) -> Result<u64> {
        save_in_batches(target, self.iter_traces(filter.clone(), BATCH))
    }

    /// Writes every trace `filter` selects to `writer` as JSON Lines (one trace JSON per
    /// line, newest first) and returns how many were written.
    fn export_jsonl(&self, filter: &TraceFilter, writer: &mut dyn Write) -> Result<u64> {
        let mut written = 0;
        for trace in self.iter_traces(filter.clone(), BATCH) {
            let mut line = trace?.to_json_vec()?;
            line.push(b'\n');
            writer.write_all(&line)?;
            written += 1;
        }
        writer.flush()?;
        Ok(written)
    }

    /// Applies a retention policy as of `now`: deletes every trace created before
    /// `now - max_age`, then every trace but the newest `max_count`, each through
    /// [`TraceStore::delete_where`], and reports how many went for which reason.
    ///
    /// ```
    /// use std::time::Duration;
    /// use trace_store_core::{RetentionPolicy, Timestamp, Trace, TraceStore, TraceStoreExt};
    /// # let store = trace_store_memory::MemoryStore::unbounded();
    /// let now = Timestamp::now();
    /// for (i, age_days) in [0i64, 1, 2, 40].iter().enumerate() {
    ///     let created = now.saturating_add_micros(-age_days * 86_400_000_000);
    ///     store.save(&Trace::new(format!("r{i}")).with_created_at(created))?;
    /// }
    /// let policy = RetentionPolicy::new().with_max_age(Duration::from_secs(30 * 86_400)).with_max_count(2);
    /// let report = store.purge(&policy, now)?;
    /// assert_eq!((report.deleted_by_age, report.deleted_by_count), (1, 1));
    /// assert_eq!(store.list(10, 0)?.len(), 2);
    /// assert_eq!(store.purge_preview(&policy, now)?.deleted(), 0, "nothing left to purge");
    /// # Ok::<(), trace_store_core::Error>(())
    /// ```
    fn purge(&self, policy: &RetentionPolicy, now: Timestamp) -> Result<PurgeReport> {
        let mut report = PurgeReport::default();
        if let Some(older) = policy.too_old(now) {
            report.deleted_by_age = self.delete_where(&older)?;
        }
        if let Some(max_count) = policy.max_count {
            let keep = usize::try_from(max_count).unwrap_or(usize::MAX);
            if keep == 0 {
                report.deleted_by_count = self.delete_where(&TraceFilter::new())?;
            } else if let Some(last_kept) = self.list(1, keep - 1)?.pop() {
                let beyond = TraceFilter::new().with_after(last_kept.cursor());
                report.deleted_by_count = self.delete_where(&beyond)?;
            }
        }
        Ok(report)
    }

    /// What [`TraceStoreExt::purge`] would delete as of `now`, counted with
    /// [`TraceStore::count`] and deleting nothing (a dry run). The age limit removes the
    /// oldest traces, so the count limit then removes what remains past the newest
    /// `max_count`.
    fn purge_preview(&self, policy: &RetentionPolicy, now: Timestamp) -> Result<PurgeReport> {
        let deleted_by_age = match policy.too_old(now) {
            Some(older) => self.count(&older)?,
            None => 0,
        };
        let deleted_by_count = match policy.max_count {
            Some(keep) => self
                .count(&TraceFilter::new())?
                .saturating_sub(deleted_by_age)
                .saturating_sub(keep),
            None => 0,
        };
        Ok(PurgeReport {
            deleted_by_age,
            deleted_by_count,
        })
    }

    /// Saves every trace of a JSON Lines stream as [`TraceStoreExt::export_jsonl`] writes
    /// it and returns how many were saved. Stops at the first line that is not a valid
    /// trace, with [`Error::InvalidInput`] naming the line; the batches before it are
    /// already saved.
    fn import_jsonl(&self, reader: &mut dyn BufRead) -> Result<u64> {
        let traces = jsonl_traces(reader).map(|line| {
            line.trace
                .map_err(|error| Error::invalid(format!("line {}: {error}", line.line_number)))
        });
        save_in_batches(self, traces)
    }
}

/// What [`TraceStoreExt::purge`] keeps: nothing older than `max_age`, and at most the
/// newest `max_count` traces. An unset limit does not apply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetentionPolicy {
    /// Traces created longer ago than this are deleted.
    pub max_age: Option<std::time::Duration>,
    /// Only this many of the newest traces are kept.
    pub max_count: Option<u64>,
}

impl RetentionPolicy {
    /// A policy that keeps everything.
    pub fn new() -> RetentionPolicy {
        RetentionPolicy::default()
    }

    /// Deletes traces created longer ago than `max_age`.
    #[must_use]
    pub fn with_max_age(mut self, max_age: std::time::Duration) -> RetentionPolicy {
        self.max_age = Some(max_age);
        self
    }

    /// Keeps only the newest `max_count` traces.
    #[must_use]
    pub fn with_max_count(mut self, max_count: u64) -> RetentionPolicy {
        self.max_count = Some(max_count);
        self
    }

    /// The traces the age limit removes as of `now`: created before `now - max_age`.
    /// `None` without an age limit, or when the limit reaches before the first
    /// timestamp there is.
    pub fn too_old(&self, now: Timestamp) -> Option<TraceFilter> {
        let age = i64::try_from(self.max_age?.as_micros()).unwrap_or(i64::MAX);
        let cutoff = now.saturating_add_micros(age.saturating_neg());
        (cutoff > Timestamp::MIN)
            .then(|| TraceFilter::new().with_until(cutoff.saturating_add_micros(-1)))
    }
}

/// What [`TraceStoreExt::purge`] deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct PurgeReport {
    /// Traces deleted for being older than `max_age`.
    pub deleted_by_age: u64,
    /// Traces deleted for being beyond the newest `max_count`.
    pub deleted_by_count: u64,
}

impl PurgeReport {
    /// Traces deleted in all.
    pub fn deleted(&self) -> u64 {
        self.deleted_by_age + self.deleted_by_count
    }
}

/// Saves traces with `save_many`, [`BATCH`] at a time; returns how many were saved.
fn save_in_batches<S: TraceStore + ?Sized>(
    target: &S,
    traces: impl Iterator<Item = Result<Trace>>,
) -> Result<u64> {
    let mut saved = 0;
    let mut batch = Vec::with_capacity(BATCH);
    for trace in traces {
        batch.push(trace?);
        if batch.len() == BATCH {
            saved += target.save_many(&batch)?.len() as u64;
            batch.clear();
        }
    }
    saved += target.save_many(&batch)?.len() as u64;
    Ok(saved)
}

impl<T: TraceStore + ?Sized> TraceStoreExt for T {}

/// Iterator returned by [`TraceStoreExt::iter_summaries`].
#[derive(Debug)]
pub struct SummaryPages<'a, S: ?Sized> {
    store: &'a S,
    filter: TraceFilter,
    remaining: Option<usize>,
    page_size: usize,
    page: std::vec::IntoIter<TraceSummary>,
    done: bool,
}

impl<S: TraceStore + ?Sized> Iterator for SummaryPages<'_, S> {
    type Item = Result<TraceSummary>;

    fn next(&mut self) -> Option<Result<TraceSummary>> {
        if self.remaining == Some(0) {
            return None;
        }
        if let Some(summary) = self.page.next() {
            self.remaining = self.remaining.map(|n| n - 1);
            return Some(Ok(summary));
        }
        if self.done {
            return None;
        }
        let want = self
            .remaining
            .map_or(self.page_size, |n| n.min(self.page_size));
        let page_filter = self.filter.clone().with_limit(want);
        match self.store.query(&page_filter) {
            Ok(page) => {
                self.done = page.len() < want;
                self.filter.offset = 0;
                self.filter.after = page
                    .last()
                    .map(TraceSummary::cursor)
                    .or(self.filter.after.take());
                self.page = page.into_iter();
                self.next()
            }
            Err(error) => {
                self.done = true;
                self.remaining = Some(0);
                Some(Err(error))
            }
        }
    }
}

/// One line of a JSON Lines stream of traces.
#[derive(Debug)]
pub struct JsonlLine {
    /// 1-based line number.
    pub line_number: u64,
    /// The decoded trace, or why the line is not one.
    pub trace: Result<Trace>,
}

/// Reads a JSON Lines stream of native traces, one result per non-blank line, so a
/// caller can stop at the first bad line or count and skip bad lines.
pub fn jsonl_traces(reader: &mut dyn BufRead) -> impl Iterator<Item = JsonlLine> + '_ {
    jsonl_lines(reader, |line| {
        let trace = Trace::from_json_slice(line)?;
        trace.validate()?;
        Ok(trace)
    })
}

/// Reads a JSON Lines stream, decoding each non-blank line with `decode` (for formats
/// other than the native one), with the same line numbering and I/O error handling as
/// [`jsonl_traces`]: an I/O error is reported once and ends the stream.
pub fn jsonl_lines<'a>(
    reader: &'a mut dyn BufRead,
    mut decode: impl FnMut(&[u8]) -> Result<Trace> + 'a,
) -> impl Iterator<Item = JsonlLine> + 'a {
    let mut line_number = 0;
    let mut buffer = Vec::new();
    let mut failed = false;
    std::iter::from_fn(move || {
        while !failed {
            buffer.clear();
            line_number += 1;
            match reader.read_until(b'\n', &mut buffer) {
                Ok(0) => return None,
                Ok(_) if buffer.iter().all(u8::is_ascii_whitespace) => continue,
                Ok(_) => {
                    return Some(JsonlLine {
                        line_number,
                        trace: decode(&buffer),
                    });
                }
                Err(error) => {
                    // A reader that failed once cannot be trusted to resume.
                    failed = true;
                    return Some(JsonlLine {
                        line_number,
                        trace: Err(error.into()),
                    });
                }
            }
        }
        None
    })
}
