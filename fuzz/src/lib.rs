//! What the fuzz targets check of every value they get out of the code under test.

use serde_json::Value;
use trace_store_core::{Error, Trace, TraceSummary, canonical_json, json_eq};

/// Panics unless `error` is one of the variants a target allows for bad input: an
/// `Io` or `Backend` error out of an in-memory or temp-file run is a finding (it would
/// be reported to users as a system fault, and retried, instead of as bad data).
pub fn assert_input_error(what: &str, error: &Error) {
    assert!(
        matches!(
            error,
            Error::InvalidInput { .. } | Error::Corrupt { .. } | Error::UnsupportedVersion { .. }
        ),
        "{what}: bad input gave {error:?}, not InvalidInput, Corrupt or UnsupportedVersion"
    );
    // A message that names nothing does not help anyone find the problem.
    assert!(
        !error.to_string().trim().is_empty(),
        "{what}: empty error message"
    );
}

/// Checks the codec's promises on a trace the code under test produced: it encodes,
/// the encoding decodes to the same trace and encodes to the same bytes, its canonical
/// JSON is stable, and its summary survives the JSON round trip that the JSONL and
/// SQLite stores put it through.
pub fn check_trace(trace: &Trace) {
    let bytes = trace
        .to_json_vec()
        .unwrap_or_else(|e| panic!("a decoded trace does not encode: {e}"));
    let again = Trace::from_json_slice(&bytes)
        .unwrap_or_else(|e| panic!("an encoded trace does not decode: {e}"));
    assert_eq!(&again, trace, "decode(encode(trace)) != trace");
    let bytes_again = again.to_json_vec().expect("encodes once, encodes twice");
    assert_eq!(bytes_again, bytes, "the encoding is not stable");

    let value: Value = serde_json::from_slice(&bytes).expect("the encoding is JSON");
    check_canonical(&value);

    let summary = TraceSummary::from(trace);
    let text = serde_json::to_vec(&summary).expect("a summary encodes");
    let summary_again: TraceSummary =
        serde_json::from_slice(&text).expect("an encoded summary decodes");
    assert_eq!(summary_again, summary, "the summary does not survive JSON");

    // Derived views must not panic on anything that decodes.
    let _ = trace.validate();
    let _ = trace.step_parents();
    let _ = trace.search_text();
}

/// The canonical text of `value` is JSON, equal to `value`, and its own canonical text.
pub fn check_canonical(value: &Value) {
    let canonical = canonical_json(value);
    let reparsed: Value = serde_json::from_str(&canonical)
        .unwrap_or_else(|e| panic!("canonical JSON {canonical:?} is not JSON: {e}"));
    assert!(
        json_eq(value, &reparsed),
        "canonical JSON {canonical:?} is not equal to its value"
    );
    assert_eq!(
        canonical_json(&reparsed),
        canonical,
        "canonical JSON is not a fixed point"
    );
}

/// Checks the OTLP decoders on `body` in `encoding`: a malformed body is a typed
/// error; a decoded request re-encodes to bytes that decode and re-encode to the same
/// bytes, in both encodings; every part the import yields is valid, merges into a
/// store, survives the codec round trip, and exports to OTLP that imports again with
/// no span rejected.
pub fn check_otlp(body: &[u8], encoding: trace_store_otlp::Encoding) {
    use trace_store_core::TraceStore;
    use trace_store_otlp::{Encoding, decode_request, decode_response, decode_traces};

    if let Err(error) = decode_response(body, encoding) {
        assert_input_error("decode_response", &error);
    }
    let request = match decode_request(body, encoding) {
        Ok(request) => request,
        Err(error) => {
            assert_input_error("decode_request", &error);
            assert!(
                decode_traces(body, encoding).is_err(),
                "decode_traces accepted it"
            );
            return;
        }
    };
    for to in [Encoding::Protobuf, Encoding::Json] {
        if to == Encoding::Json && !ids_fit_json(&request) {
            // Protobuf carries ids of any length; the JSON reader, as the spec's JSON
            // form, wants 16-byte trace and 8-byte span ids (the import rejects the
            // other spans one by one, so this is no loss there).
            continue;
        }
        let once = trace_store_otlp::encode_request(&request, to);
        let decoded = decode_request(&once, to)
            .unwrap_or_else(|e| panic!("an encoded request does not decode ({to:?}): {e}"));
        let twice = trace_store_otlp::encode_request(&decoded, to);
        assert_eq!(once, twice, "{to:?} encoding of a request is not stable");
    }

    let ingest = decode_traces(body, encoding).expect("decode_traces of a decoded request");
    for part in &ingest.parts {
        part.validate().expect("an imported part is valid");
        check_trace(part);
    }
    let store = trace_store_memory::MemoryStore::unbounded();
    store
        .merge_many(&ingest.parts)
        .expect("the parts of one request merge");
    let stored: Vec<Trace> = store
        .list(usize::MAX, 0)
        .expect("list")
        .iter()
        .map(|summary| store.load(&summary.run_id).expect("a merged trace loads"))
        .collect();
    for trace in &stored {
        check_trace(trace);
    }
    for to in [Encoding::Protobuf, Encoding::Json] {
        let exported = trace_store_otlp::encode_traces(&stored, to)
            .unwrap_or_else(|e| panic!("stored traces do not export ({to:?}): {e}"));
        let again = decode_traces(&exported, to)
            .unwrap_or_else(|e| panic!("exported traces do not import ({to:?}): {e}"));
        assert_eq!(
            again.rejected_spans, 0,
            "{to:?}: spans of an export rejected: {:?}",
            again.error_message
        );
    }
}

/// Whether every trace and span id of `request` has a length OTLP JSON can carry:
/// 16 and 8 bytes, or empty.
fn ids_fit_json(request: &trace_store_otlp::proto::ExportTraceServiceRequest) -> bool {
    let fits = |id: &[u8], len: usize| id.is_empty() || id.len() == len;
    request
        .resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
        .all(|span| {
            fits(&span.trace_id, 16)
                && fits(&span.span_id, 8)
                && fits(&span.parent_span_id, 8)
                && span
                    .links
                    .iter()
                    .all(|link| fits(&link.trace_id, 16) && fits(&link.span_id, 8))
        })
}
