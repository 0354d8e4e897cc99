//! Moving traces: export, import, copy, and compacting a JSONL store.

use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal, Write};
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use same_file::Handle;
use serde_json::json;
use trace_store::{
    GroupBy, GroupKey, Result, StoreUrl, Trace, TraceFilter, TraceStats, TraceStore, TraceStoreExt,
    TraceSummary,
};
use trace_store_interop::{ImportOptions, ImportReport};

use crate::args::{ExportFormat, FormatArg};
use crate::error::{CliError, CliResult, Context, describe};
use crate::output::Target;
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
    mode: u32,
    format: ExportFormat,
    json: bool,
    out: &mut dyn Write,
) -> CliResult {
    refuse_own_file(url, output)?;
    let target = Target::resolve(output)?;
    let store = open(url, Need::Read)?;
    // Counting costs a query; only a visible progress bar needs it.
    let total = if stderr_is_terminal() {
        store.count(filter)?
    } else {
        0
    };
    let bar = progress(total, "exporting", TRACES);
    let file = target.file().map(Path::to_path_buf);
    let written = target.write(mode, |writer| {
        let mut writer = CountingWriter {
            inner: writer,
            bar: bar.clone(),
        };
        match format {
            ExportFormat::Jsonl => Ok(store.export_jsonl(filter, &mut writer)?),
            ExportFormat::OtlpJson => crate::otlp::export_json(&*store, filter, &mut writer),
        }
    })?;
    bar.finish_and_clear();
    if let Some(path) = file {
        if json {
            crate::print_json(out, &json!({"exported": written, "file": path}))?;
        } else {
            writeln!(out, "exported {written} traces to {}", path.display())?;
        }
    }
    Ok(())
}

/// Refuses to export into the file the store lives in (by identity: device and inode,
/// so through a symlink or another path too): that would destroy the store as it is read.
fn refuse_own_file(url: &str, output: Option<&Path>) -> CliResult {
    let parsed = store::parse(url)?;
    let files = store::files_of(&parsed);
    if files.is_empty() {
        return Ok(());
    }
    let output = output.filter(|path| *path != Path::new("-"));
    let stdout = Handle::stdout();
    // Only regular files are opened: a FIFO named as a store would block the open.
    let is_store = files
        .iter()
        .filter(|file| std::fs::metadata(file).is_ok_and(|metadata| metadata.is_file()))
        .filter_map(|file| Handle::from_path(file).ok())
        .any(|file| match output {
            Some(path) => crate::output::names(path, &file),
            None => stdout.as_ref().is_ok_and(|stdout| *stdout == file),
        });
    if !is_store {
        return Ok(());
    }
    let into = output.map_or_else(
        || "standard output".to_owned(),
        |path| format!("-o {}", path.display()),
    );
    Err(CliError::usage(format!(
        "{into} is a file of the store being exported ({parsed}); export into another file"
    )))
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

/// `export --otlp-http URL`: pushes the selected traces as OTLP protobuf.
pub(crate) fn push(
    url: &str,
    filter: &TraceFilter,
    endpoint: &str,
    headers: &[(String, String)],
    json: bool,
    out: &mut dyn Write,
) -> CliResult {
    let store = open(url, Need::Read)?;
    let report = crate::otlp::push(&*store, filter, endpoint, headers)?;
    let shown = trace_store_otlp::redact_url(endpoint);
    if json {
        return crate::print_json(
            out,
            &json!({"traces": report.traces, "spans": report.spans, "requests": report.requests,
                    "retries": report.retries, "rejected_spans": report.rejected_spans,
                    "endpoint": shown}),
        );
    }
    writeln!(
        out,
        "pushed {} traces ({} spans) to {shown} in {} requests{}",
        report.traces,
        report.spans,
        report.requests,
        if report.retries > 0 {
            format!(", {} retried", report.retries)
        } else {
            String::new()
        }
    )?;
    if report.rejected_spans > 0 {
        writeln!(
            out,
            "the endpoint rejected {} spans: {}",
            report.rejected_spans,
            report.error_messages.join("; ")
        )?;
    }
    Ok(())
}

/// True if the file starts like OTLP JSON (or `--format otlp-json` says so).
fn is_otlp(path: &Path, format: FormatArg) -> CliResult<bool> {
    match format {
        FormatArg::OtlpJson => Ok(true),
        FormatArg::Auto if path != Path::new("-") => {
            let (reader, _) = input(path)?;
            let mut reader = BufReader::with_capacity(4096, reader);
            Ok(crate::otlp::looks_like_otlp(reader.fill_buf()?))
        }
        _ => Ok(false),
    }
}

pub(crate) fn import(
    url: &str,
    files: &[std::path::PathBuf],
    format_arg: FormatArg,
    strict: bool,
    json: bool,
    out: &mut dyn Write,
) -> CliResult {
    let format = format_arg.interop();
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
            if is_otlp(path, format_arg)? {
                continue;
            }
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
        let otlp = match format_arg {
            FormatArg::OtlpJson => true,
            FormatArg::Auto => crate::otlp::looks_like_otlp(reader.fill_buf()?),
            _ => false,
        };
        if otlp {
            let done = crate::otlp::import(&*store, &mut reader)
                .map_err(|error| CliError::usage(format!("{}: {}", name(path), error.message)))?;
            bar.finish_and_clear();
            if json {
                crate::print_json(
                    out,
                    &json!({"file": name(path), "format": "otlp-json", "requests": done.requests,
                            "traces": done.traces, "rejected_spans": done.rejected_spans}),
                )?;
            } else {
                writeln!(
                    out,
                    "{}: merged {} traces from {} OTLP requests{}",
                    name(path),
                    done.traces,
                    done.requests,
                    if done.rejected_spans > 0 {
                        format!("; {} spans rejected", done.rejected_spans)
                    } else {
                        String::new()
                    }
                )?;
            }
            continue;
        }
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

#[deny(clippy::missing_trait_methods)]
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
    fn merge(&self, part: &Trace) -> Result<Trace> {
        let merged = self.inner.merge(part)?;
        self.bar.inc(1);
        Ok(merged)
    }
    fn merge_many(&self, parts: &[Trace]) -> Result<Vec<String>> {
        let run_ids = self.inner.merge_many(parts)?;
        self.bar.inc(run_ids.len() as u64);
        Ok(run_ids)
    }
    fn stats_by(
        &self,
        filter: &TraceFilter,
        group: GroupBy,
    ) -> Result<Vec<(GroupKey, TraceStats)>> {
        self.inner.stats_by(filter, group)
    }
    fn delete_where(&self, filter: &TraceFilter) -> Result<u64> {
        self.inner.delete_where(filter)
    }
}

/// True if both URLs name the same store, or the same file under two schemes (which
/// could only fail, or worse, read one format as the other).
fn same_store(a: &StoreUrl, b: &StoreUrl) -> bool {
    match (file_of(a), file_of(b)) {
        (Some(x), Some(y)) => same_file::is_same_file(x, y).unwrap_or(x == y),
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
    let source = open(url, Need::Read)?;
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
    let StoreUrl::Jsonl {
        path, durability, ..
    } = &parsed
    else {
        return Err(CliError::usage(format!(
            "compact works on jsonl:// stores; {parsed} reclaims space by itself"
        )));
    };
    let what = || format!("cannot compact {}", path.display());
    store::check_tilde(&parsed, Need::Existing)?;
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
