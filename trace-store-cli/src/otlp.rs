//! OpenTelemetry in and out: `export --format otlp-json`, `export --otlp-http URL` and
//! `import` of OTLP JSON, through the `trace-store-otlp` mapping.

use std::io::{BufRead, Write};

use trace_store::{Trace, TraceFilter, TraceStore, TraceStoreExt};
use trace_store_otlp::{Encoding, PushOptions, PushReport};

use crate::error::{CliError, CliResult};

/// Traces per OTLP request written as one line of `export --format otlp-json`, and per
/// `push_http` call (which splits further by span count).
const TRACES_PER_REQUEST: usize = 64;

/// True if the stream starts like an OTLP JSON export request (`{"resourceSpans": ...`),
/// as the OpenTelemetry file exporter and `export --format otlp-json` write it.
pub(crate) fn looks_like_otlp(start: &[u8]) -> bool {
    let text = String::from_utf8_lossy(&start[..start.len().min(4096)]);
    let text = text.trim_start_matches('\u{feff}').trim_start();
    let Some(rest) = text.strip_prefix('{') else {
        return false;
    };
    let rest = rest.trim_start();
    rest.starts_with("\"resourceSpans\"") || rest.starts_with("\"resource_spans\"")
}

/// What an OTLP import did.
#[derive(Debug, Default)]
pub(crate) struct OtlpImport {
    pub(crate) requests: u64,
    pub(crate) traces: u64,
    pub(crate) rejected_spans: u64,
}

/// Reads OTLP JSON export requests (one per line, or one document) and folds every
/// trace part into the store with `merge`, so spans of one trace spread over many
/// requests assemble into one trace. A request that does not decode stops the import
/// with its line number; the requests before it stay imported.
pub(crate) fn import(store: &dyn TraceStore, reader: &mut dyn BufRead) -> CliResult<OtlpImport> {
    let mut report = OtlpImport::default();
    let mut whole = Vec::new();
    reader.read_to_end(&mut whole)?;
    let requests: Vec<(usize, &[u8])> = if whole.iter().filter(|&&b| b == b'\n').count() <= 1
        || serde_json::from_slice::<serde_json::Value>(&whole).is_ok()
    {
        vec![(1, whole.as_slice())]
    } else {
        whole
            .split(|&b| b == b'\n')
            .enumerate()
            .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
            .map(|(i, line)| (i + 1, line))
            .collect()
    };
    for (line, bytes) in requests {
        let ingest = trace_store_otlp::decode_traces(bytes, Encoding::Json).map_err(|error| {
            CliError::usage(format!(
                "line {line}: not an OTLP JSON export request: {}",
                crate::error::describe(&error)
            ))
        })?;
        for part in &ingest.parts {
            store.merge(part)?;
        }
        report.requests += 1;
        report.traces += ingest.parts.len() as u64;
        report.rejected_spans += ingest.rejected_spans;
    }
    Ok(report)
}

/// Writes the selected traces as OTLP JSON, one export request per line.
pub(crate) fn export_json(
    store: &dyn TraceStore,
    filter: &TraceFilter,
    writer: &mut dyn Write,
) -> CliResult<u64> {
    let mut written = 0;
    let mut batch: Vec<Trace> = Vec::with_capacity(TRACES_PER_REQUEST);
    let flush = |batch: &mut Vec<Trace>, writer: &mut dyn Write| -> CliResult {
        if batch.is_empty() {
            return Ok(());
        }
        let mut line = trace_store_otlp::encode_traces(batch, Encoding::Json)?;
        line.push(b'\n');
        writer.write_all(&line)?;
        batch.clear();
        Ok(())
    };
    for trace in store.iter_traces(filter.clone(), 256) {
        batch.push(trace?);
        written += 1;
        if batch.len() == TRACES_PER_REQUEST {
            flush(&mut batch, writer)?;
        }
    }
    flush(&mut batch, writer)?;
    writer.flush()?;
    Ok(written)
}

/// Pushes the selected traces to an OTLP/HTTP endpoint as protobuf, with retries on
/// 429 and 503 (see `trace_store_otlp::push_http`).
pub(crate) fn push(
    store: &dyn TraceStore,
    filter: &TraceFilter,
    endpoint: &str,
    headers: &[(String, String)],
) -> CliResult<PushReport> {
    let options = PushOptions::default();
    let mut total = PushReport::default();
    let mut batch: Vec<Trace> = Vec::with_capacity(TRACES_PER_REQUEST);
    let send = |batch: &mut Vec<Trace>, total: &mut PushReport| -> CliResult {
        if batch.is_empty() {
            return Ok(());
        }
        let report = trace_store_otlp::push_http(endpoint, batch, headers, &options)?;
        total.traces += report.traces;
        total.spans += report.spans;
        total.requests += report.requests;
        total.retries += report.retries;
        total.rejected_spans += report.rejected_spans;
        total.error_messages.extend(report.error_messages);
        batch.clear();
        Ok(())
    };
    for trace in store.iter_traces(filter.clone(), 256) {
        batch.push(trace?);
        if batch.len() == TRACES_PER_REQUEST {
            send(&mut batch, &mut total)?;
        }
    }
    send(&mut batch, &mut total)?;
    Ok(total)
}

/// `--header K=V`.
pub(crate) fn parse_header(text: &str) -> Result<(String, String), String> {
    let (key, value) = text.split_once('=').ok_or_else(|| {
        "expected NAME=VALUE, as in --header 'Authorization=Bearer abc'".to_owned()
    })?;
    let key = key.trim();
    if key.is_empty()
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
    {
        return Err(format!("{key:?} is not an HTTP header name"));
    }
    Ok((key.to_owned(), value.trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otlp_json_is_told_from_native_and_selectools_lines() {
        assert!(looks_like_otlp(br#"{"resourceSpans":[{"scopeSpans":[]}]}"#));
        assert!(looks_like_otlp(b"\n  { \"resource_spans\": []}"));
        assert!(!looks_like_otlp(
            br#"{"run_id":"r","created_at":"2026-01-01T00:00:00Z"}"#
        ));
        assert!(!looks_like_otlp(br#"[{"resourceSpans":[]}]"#));
        assert!(!looks_like_otlp(b""));
    }

    #[test]
    fn headers() {
        assert_eq!(
            parse_header("Authorization=Bearer a=b"),
            Ok(("Authorization".into(), "Bearer a=b".into()))
        );
        assert!(parse_header("no-equals").is_err());
        assert!(parse_header("bad name=x").is_err());
    }
}
