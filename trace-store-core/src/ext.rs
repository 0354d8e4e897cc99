//! Conveniences built only on the [`TraceStore`] trait, for every store.

use std::io::{BufRead, Write};

use crate::{Error, Result, Trace, TraceFilter, TraceStore, TraceSummary};

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
