//! Importing a stream of traces into a store, with a policy for bad records.

use std::fmt;
use std::io::BufRead;

use trace_store_core::{Error, Result, Trace, TraceStore};

use crate::{Format, read_traces, reason};

/// How many bad records an [`ImportReport`] keeps for display; the rest are counted.
pub const MAX_REPORTED_ERRORS: usize = 10;

/// Options of [`import`] and [`check`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ImportOptions {
    /// The format of the input; [`Format::Auto`] by default.
    pub format: Format,
    /// Stop at the first record that cannot be read (`true`), or skip and count it
    /// (`false`, the default).
    pub strict: bool,
    /// Traces per `save_many` call.
    pub batch_size: usize,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            format: Format::Auto,
            strict: false,
            batch_size: 256,
        }
    }
}

impl ImportOptions {
    /// Sets the format.
    #[must_use]
    pub fn with_format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// Sets the bad-record policy.
    #[must_use]
    pub fn with_strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// Sets the batch size (at least 1).
    #[must_use]
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }
}

/// A record that could not be read.
#[derive(Debug)]
#[non_exhaustive]
pub struct LineError {
    /// 1-based line number where the record starts.
    pub line_number: u64,
    /// Why it could not be read.
    pub error: Error,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line_number, reason(&self.error))
    }
}

/// What [`import`] or [`check`] did.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct ImportReport {
    /// The format read (detected, under [`Format::Auto`]).
    pub format: Format,
    /// Records read and saved ([`check`]: records that would be saved).
    pub saved: u64,
    /// Records skipped because they could not be read.
    pub skipped: u64,
    /// The first [`MAX_REPORTED_ERRORS`] skipped records and why.
    pub errors: Vec<LineError>,
}

/// Saves every trace of `reader` into `store`, in batches, and reports what it did.
///
/// A record that cannot be read (bad JSON, not a trace, an invalid run_id, ...) is
/// skipped and counted; with [`ImportOptions::strict`] the import stops there instead,
/// with [`Error::InvalidInput`] naming the line, after saving every record before it.
/// To import all or nothing, [`check`] the input first. A failure to read the input or
/// to write the store always stops the import.
///
/// ```
/// use trace_store_core::TraceStore;
/// use trace_store_interop::{ImportOptions, import};
///
/// let store = trace_store_memory::MemoryStore::unbounded();
/// let input = b"{\"run_id\": \"r1\", \"start_time\": 1.0, \"steps\": []}\nnot json\n";
/// let report = import(&store, &mut &input[..], &ImportOptions::default())?;
/// assert_eq!((report.saved, report.skipped), (1, 1));
/// assert_eq!(report.errors[0].to_string().split(':').next(), Some("line 2"));
/// assert!(import(&store, &mut &input[..], &ImportOptions::default().with_strict(true)).is_err());
/// # Ok::<(), trace_store_core::Error>(())
/// ```
pub fn import(
    store: &dyn TraceStore,
    reader: &mut dyn BufRead,
    options: &ImportOptions,
) -> Result<ImportReport> {
    run(Some(store), reader, options)
}

/// Reads `reader` as [`import`] would, without writing anything: `saved` is how many
/// records an import would save. With `strict`, fails at the first bad record.
pub fn check(reader: &mut dyn BufRead, options: &ImportOptions) -> Result<ImportReport> {
    run(None, reader, options)
}

fn run(
    store: Option<&dyn TraceStore>,
    reader: &mut dyn BufRead,
    options: &ImportOptions,
) -> Result<ImportReport> {
    let batch_size = options.batch_size.max(1);
    let traces = read_traces(reader, options.format);
    let mut report = ImportReport {
        format: traces.format(),
        ..ImportReport::default()
    };
    let mut batch: Vec<Trace> = Vec::with_capacity(batch_size);
    let flush = |batch: &mut Vec<Trace>, report: &mut ImportReport| -> Result<()> {
        if let Some(store) = store
            && !batch.is_empty()
        {
            store.save_many(batch)?;
        }
        report.saved += batch.len() as u64;
        batch.clear();
        Ok(())
    };
    for line in traces {
        match line.trace {
            Ok(trace) => {
                batch.push(trace);
                if batch.len() >= batch_size {
                    flush(&mut batch, &mut report)?;
                }
            }
            // The input can no longer be read: nothing after this is trustworthy.
            Err(error @ Error::Io(_)) => {
                flush(&mut batch, &mut report)?;
                return Err(error);
            }
            Err(error) => {
                let bad = LineError {
                    line_number: line.line_number,
                    error,
                };
                if options.strict {
                    flush(&mut batch, &mut report)?;
                    return Err(Error::invalid(bad.to_string()));
                }
                report.skipped += 1;
                if report.errors.len() < MAX_REPORTED_ERRORS {
                    report.errors.push(bad);
                }
            }
        }
    }
    flush(&mut batch, &mut report)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use trace_store_core::{TraceFilter, TraceStoreExt};
    use trace_store_memory::MemoryStore;

    fn selectools_line(run_id: &str) -> String {
        format!(r#"{{"run_id": "{run_id}", "start_time": 1.0, "steps": [{{"type": "llm_call"}}]}}"#)
    }

    fn input(good: usize, bad_at: &[usize]) -> Vec<u8> {
        let mut text = String::new();
        for i in 0..good + bad_at.len() {
            if bad_at.contains(&i) {
                text.push_str("{broken\n");
            } else {
                text.push_str(&selectools_line(&format!("r{i}")));
                text.push('\n');
            }
        }
        text.into_bytes()
    }

    #[test]
    fn skip_counts_and_keeps_the_first_errors() {
        let store = MemoryStore::unbounded();
        let bad: Vec<usize> = (0..15).map(|i| i * 3 + 1).collect();
        let bytes = input(30, &bad);
        let options = ImportOptions::default().with_batch_size(4);
        let report = import(&store, &mut &bytes[..], &options).unwrap();
        assert_eq!((report.saved, report.skipped), (30, 15));
        assert_eq!(report.format, Format::Selectools);
        assert_eq!(report.errors.len(), MAX_REPORTED_ERRORS);
        assert_eq!(report.errors[0].line_number, 2);
        assert_eq!(report.errors[1].line_number, 5);
        assert_eq!(store.count(&TraceFilter::new()).unwrap(), 30);
    }

    #[test]
    fn strict_stops_at_the_bad_line_after_saving_the_lines_before() {
        let store = MemoryStore::unbounded();
        let bytes = input(9, &[6]);
        let options = ImportOptions::default()
            .with_strict(true)
            .with_batch_size(4);
        let error = import(&store, &mut &bytes[..], &options).unwrap_err();
        assert!(matches!(error, Error::InvalidInput { .. }));
        assert!(
            error.to_string().contains("line 7: not a JSON value"),
            "{error}"
        );
        let saved: Vec<String> = store
            .iter_summaries(TraceFilter::new(), 100)
            .map(|s| s.unwrap().run_id)
            .collect();
        assert_eq!(saved.len(), 6, "{saved:?}");
        assert!(store.load_opt("r7").unwrap().is_none());
    }

    #[test]
    fn a_bad_native_line_is_described_as_input_not_as_stored_data() {
        let mut bytes = trace_store_core::Trace::new("a").to_json_vec().unwrap();
        bytes.extend_from_slice(b"\n{\"run_id\": 5}\n");
        let report = check(&mut &bytes[..], &ImportOptions::default()).unwrap();
        assert_eq!(
            (report.format, report.saved, report.skipped),
            (Format::Native, 1, 1)
        );
        let error = report.errors[0].to_string();
        assert!(
            error.starts_with("line 2: cannot decode trace JSON"),
            "{error}"
        );
    }

    #[test]
    fn check_writes_nothing() {
        let bytes = input(5, &[2]);
        let report = check(&mut &bytes[..], &ImportOptions::default()).unwrap();
        assert_eq!((report.saved, report.skipped), (5, 1));
        assert!(check(&mut &bytes[..], &ImportOptions::default().with_strict(true)).is_err());
    }

    #[test]
    fn io_errors_stop_even_when_skipping() {
        struct Failing;
        impl std::io::Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("disk gone"))
            }
        }
        let mut reader = std::io::BufReader::new(Failing);
        let error = check(&mut reader, &ImportOptions::default()).unwrap_err();
        assert!(matches!(error, Error::Io(_)), "{error}");
    }
}
