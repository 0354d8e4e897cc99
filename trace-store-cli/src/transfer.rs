//! Moving traces: export, import, copy, and compacting a JSONL store.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, IsTerminal, Write};
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use trace_store::{
    Result, StoreUrl, Trace, TraceFilter, TraceStats, TraceStore, TraceStoreExt, TraceSummary,
};
use trace_store_interop::{Format, ImportOptions, ImportReport};

use crate::error::{CliError, CliResult, Context, describe};
use crate::store::{self, Need, file_of, open};

/// A progress bar on standard error when it is a terminal; a hidden one otherwise.
fn progress(total: u64, message: &str, template: &str) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    ProgressBar::new(total)
        .with_style(style)
        .with_message(message.to_owned())
}

const TRACES: &str = "{msg} [{wide_bar}] {pos}/{len} traces, {eta}";
const BYTES: &str = "{msg} [{wide_bar}] {bytes}/{total_bytes}, {eta}";

fn stderr_is_terminal() -> bool {
    io::stderr().is_terminal()
}

/// Counts the lines written through it (one per trace) on a progress bar.
struct CountingWriter<W> {
    inner: W,
    bar: ProgressBar,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        let lines = buf[..written].iter().filter(|&&b| b == b'\n').count();
        self.bar.inc(lines as u64);
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

pub(crate) fn export(
    url: &str,
    filter: &TraceFilter,
    output: Option<&Path>,
    json: bool,
    out: &mut dyn Write,
) -> CliResult {
    let store = open(url, Need::Existing)?;
    // Counting costs a query; only a visible progress bar needs it.
    let total = if stderr_is_terminal() {
        store.count(filter)?
    } else {
        0
    };
    let bar = progress(total, "exporting", TRACES);
    let written = match output.filter(|path| *path != Path::new("-")) {
        None => {
            let stdout = io::stdout();
            let mut writer = CountingWriter {
                inner: BufWriter::new(stdout.lock()),
                bar: bar.clone(),
            };
            store.export_jsonl(filter, &mut writer)?
        }
        Some(path) => {
            // Written beside the target and renamed over it, so a failed export never
            // leaves a truncated file where a good one was.
            let dir = match path.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir,
                _ => Path::new("."),
            };
            let what = || format!("cannot write {}", path.display());
            let file = temp_file_for(path, dir).context(what)?;
            let mut writer = CountingWriter {
                inner: BufWriter::new(file.as_file()),
                bar: bar.clone(),
            };
            let written = store.export_jsonl(filter, &mut writer).context(what)?;
            drop(writer);
            file.persist(path).map_err(|e| e.error).context(what)?;
            written
        }
    };
    bar.finish_and_clear();
    if let Some(path) = output.filter(|path| *path != Path::new("-")) {
        if json {
            crate::print_json(out, &json!({"exported": written, "file": path}))?;
        } else {
            writeln!(out, "exported {written} traces to {}", path.display())?;
        }
    }
    Ok(())
}

/// A temporary file in `dir` to rename over `target`, with the permissions `target`
/// would get from a plain create (or already has), not the owner-only ones temporary
/// files get: an export is meant to be read, possibly by someone else.
fn temp_file_for(target: &Path, dir: &Path) -> io::Result<tempfile::NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Like `File::create`: 0o666, narrowed by the umask.
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let file = builder.tempfile_in(dir)?;
    if let Some(existing) = std::fs::metadata(target).ok().filter(|m| m.is_file()) {
        file.as_file().set_permissions(existing.permissions())?;
    }
    Ok(file)
}

/// One input of `import`: a file or standard input.
fn input(path: &Path) -> CliResult<(Box<dyn io::Read>, u64)> {
    if path == Path::new("-") {
        return Ok((Box::new(io::stdin().lock()), 0));
    }
    let what = || format!("cannot read {}", path.display());
    let file = File::open(path).context(what)?;
    let metadata = file.metadata().context(what)?;
    if metadata.is_dir() {
        return Err(CliError::usage(format!(
            "cannot read {}: it is a directory",
            path.display()
        )));
    }
    Ok((Box::new(file), metadata.len()))
}

fn name(path: &Path) -> String {
    if path == Path::new("-") {
        "standard input".to_owned()
    } else {
        path.display().to_string()
    }
}

pub(crate) fn import(
    url: &str,
    files: &[std::path::PathBuf],
    format: Format,
    strict: bool,
    json: bool,
    out: &mut dyn Write,
) -> CliResult {
    let options = ImportOptions::default()
        .with_format(format)
        .with_strict(strict);
    // Every file must open before anything is written.
    for path in files {
        input(path)?;
    }
    if strict {
        // All or nothing: read every file once before writing any trace.
        for path in files.iter().filter(|p| *p != Path::new("-")) {
            let (reader, _) = input(path)?;
            trace_store_interop::check(&mut BufReader::new(reader), &options).map_err(|error| {
                CliError::usage(format!("{}: {}", name(path), describe(&error)))
            })?;
        }
    }
    let store = open(url, Need::Create)?;
    let mut reports: Vec<(String, ImportReport)> = Vec::new();
    for path in files {
        let (reader, size) = input(path)?;
        let short = path
            .file_name()
            .map_or_else(|| name(path), |n| n.to_string_lossy().into());
        let bar = progress(size, &format!("importing {short}"), BYTES);
        let mut reader: Box<dyn BufRead> =
            Box::new(BufReader::with_capacity(1 << 16, bar.wrap_read(reader)));
        let report = trace_store_interop::import(&*store, &mut reader, &options)
            .map_err(|error| CliError::usage(format!("{}: {}", name(path), describe(&error))))?;
        bar.finish_and_clear();
        reports.push((name(path), report));
    }

    let saved: u64 = reports.iter().map(|(_, r)| r.saved).sum();
    let skipped: u64 = reports.iter().map(|(_, r)| r.skipped).sum();
    if json {
        let files: Vec<_> = reports
            .iter()
            .map(|(file, r)| {
                json!({
                    "file": file,
                    "format": r.format.as_str(),
                    "saved": r.saved,
                    "skipped": r.skipped,
                    "errors": r.errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
                })
            })
            .collect();
        crate::print_json(
            out,
            &json!({"saved": saved, "skipped": skipped, "files": files}),
        )?;
    } else {
        for (file, report) in &reports {
            writeln!(
                out,
                "{file}: imported {} traces ({})",
                report.saved, report.format
            )?;
            for error in &report.errors {
                writeln!(out, "  skipped {error}")?;
            }
            let unlisted = report.skipped - report.errors.len() as u64;
            if unlisted > 0 {
                writeln!(out, "  ... and {unlisted} more unreadable lines")?;
            }
        }
        if skipped > 0 {
            writeln!(
                out,
                "imported {saved} traces into {}; skipped {skipped} unreadable lines (--strict stops at the first)",
                store::display(url)
            )?;
        } else if reports.len() > 1 {
            writeln!(out, "imported {saved} traces into {}", store::display(url))?;
        }
    }
    if saved == 0 && skipped > 0 {
        return Err(CliError::usage(
            "no trace could be read from the input (wrong --format?)",
        ));
    }
    Ok(())
}

/// A store that forwards to another and ticks a progress bar for each trace saved.
#[derive(Debug)]
struct Ticking<'a> {
    inner: &'a dyn TraceStore,
    bar: ProgressBar,
}

impl TraceStore for Ticking<'_> {
    fn save(&self, trace: &Trace) -> Result<String> {
        let run_id = self.inner.save(trace)?;
        self.bar.inc(1);
        Ok(run_id)
    }
    fn load(&self, run_id: &str) -> Result<Trace> {
        self.inner.load(run_id)
    }
    fn list(&self, limit: usize, offset: usize) -> Result<Vec<TraceSummary>> {
        self.inner.list(limit, offset)
    }
    fn query(&self, filter: &TraceFilter) -> Result<Vec<TraceSummary>> {
        self.inner.query(filter)
    }
    fn delete(&self, run_id: &str) -> Result<bool> {
        self.inner.delete(run_id)
    }
    fn save_many(&self, traces: &[Trace]) -> Result<Vec<String>> {
        let run_ids = self.inner.save_many(traces)?;
        self.bar.inc(run_ids.len() as u64);
        Ok(run_ids)
    }
    fn count(&self, filter: &TraceFilter) -> Result<u64> {
        self.inner.count(filter)
    }
    fn stats(&self, filter: &TraceFilter) -> Result<TraceStats> {
        self.inner.stats(filter)
    }
}

/// True if both URLs name the same store, or the same file under two schemes (which
/// could only fail, or worse, read one format as the other).
fn same_store(a: &StoreUrl, b: &StoreUrl) -> bool {
    match (file_of(a), file_of(b)) {
        (Some(x), Some(y)) => match (x.canonicalize(), y.canonicalize()) {
            (Ok(x), Ok(y)) => x == y,
            _ => x == y,
        },
        _ => matches!((a, b), (StoreUrl::Redis { .. }, StoreUrl::Redis { .. })) && a == b,
    }
}

pub(crate) fn copy(
    url: &str,
    to: &str,
    filter: &TraceFilter,
    json: bool,
    out: &mut dyn Write,
) -> CliResult {
    let (from_url, to_url) = (store::parse(url)?, store::parse(to)?);
    if same_store(&from_url, &to_url) {
        return Err(CliError::usage(format!(
            "--to {to_url} is the store being copied from"
        )));
    }
    let source = open(url, Need::Existing)?;
    let target = open(to, Need::Create)?;
    let total = if stderr_is_terminal() {
        source.count(filter)?
    } else {
        0
    };
    let ticking = Ticking {
        inner: &*target,
        bar: progress(total, "copying", TRACES),
    };
    let copied = source.copy_to(&ticking, filter)?;
    ticking.bar.finish_and_clear();
    if json {
        crate::print_json(
            out,
            &json!({"copied": copied, "from": from_url.to_string(), "to": to_url.to_string()}),
        )?;
    } else {
        writeln!(out, "copied {copied} traces from {from_url} to {to_url}")?;
    }
    Ok(())
}

pub(crate) fn compact(url: &str, json: bool, out: &mut dyn Write) -> CliResult {
    let parsed = store::parse(url)?;
    let StoreUrl::Jsonl { path, durability } = &parsed else {
        return Err(CliError::usage(format!(
            "compact works on jsonl:// stores; {parsed} reclaims space by itself"
        )));
    };
    let what = || format!("cannot compact {}", path.display());
    if !path.exists() {
        return Err(CliError::usage(format!(
            "store {parsed} does not exist (no file {})",
            path.display()
        )));
    }
    let before = std::fs::metadata(path).context(what)?.len();
    let options = trace_store::jsonl::JsonlOptions::default().with_durability(*durability);
    let store = trace_store::JsonlStore::open_with(path, options).context(what)?;
    store.compact().context(what)?;
    let after = std::fs::metadata(path).context(what)?.len();
    if json {
        crate::print_json(
            out,
            &json!({"file": path, "bytes_before": before, "bytes_after": after}),
        )?;
    } else {
        writeln!(
            out,
            "compacted {}: {} → {} bytes",
            path.display(),
            crate::render::thousands(before),
            crate::render::thousands(after)
        )?;
    }
    Ok(())
}
