//! Inputs found by the fuzz targets in `fuzz/` (scripts/fuzz), reduced by hand.

use trace_store_core::TraceStore;
use trace_store_memory::MemoryStore;
use trace_store_otlp::proto::{ExportTraceServiceRequest, Link, ResourceSpans, ScopeSpans, Span};
use trace_store_otlp::{Encoding, decode_traces, encode_request, encode_traces};

/// A span whose link has a 19-byte trace id: legal bytes in protobuf, and the span is
/// accepted (its own ids are right). Found by `otlp_protobuf`.
fn request_with_odd_link() -> Vec<u8> {
    let span = Span {
        trace_id: vec![0x11; 16],
        span_id: vec![0x22; 8],
        name: "chain".into(),
        start_time_unix_nano: 1_768_178_070_221_759_000,
        end_time_unix_nano: 1_768_178_071_565_051_000,
        links: vec![Link {
            trace_id: b"trace_store.unnamed".to_vec(),
            span_id: vec![0x33; 8],
            ..Link::default()
        }],
        ..Span::default()
    };
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![span],
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    };
    encode_request(&request, Encoding::Protobuf)
}

/// A trace the receiver stored from protobuf must export as OTLP JSON that imports
/// again: `trace-store export --format otlp` followed by `import` of the same file.
/// Today the link's 19-byte trace id is written into the JSON as 38 hex digits, and the
/// JSON reader refuses the whole request ("traceId ... is not 16 bytes of hex").
#[test]
fn a_stored_trace_with_an_odd_link_id_exports_to_json_that_imports() {
    let ingest = decode_traces(&request_with_odd_link(), Encoding::Protobuf).unwrap();
    assert_eq!(ingest.rejected_spans, 0, "{:?}", ingest.error_message);
    let store = MemoryStore::unbounded();
    store.merge_many(&ingest.parts).unwrap();
    let stored: Vec<_> = store
        .list(usize::MAX, 0)
        .unwrap()
        .iter()
        .map(|summary| store.load(&summary.run_id).unwrap())
        .collect();
    assert_eq!(stored.len(), 1);
    for encoding in [Encoding::Protobuf, Encoding::Json] {
        let exported = encode_traces(&stored, encoding).unwrap();
        let again = decode_traces(&exported, encoding)
            .unwrap_or_else(|e| panic!("{encoding:?} export does not import: {e}"));
        assert_eq!(again.rejected_spans, 0, "{:?}", again.error_message);
        assert_eq!(again.parts.len(), 1);
    }
}
