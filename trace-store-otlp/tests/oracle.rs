//! `opentelemetry-proto` (the OpenTelemetry project's own Rust types) reads what this
//! crate writes, in both encodings, and agrees on every span.

mod common;

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest as OracleRequest, ExportTraceServiceResponse as OracleResponse,
};
use prost::Message as _;
use trace_store_otlp::{Encoding, decode_traces, encode_response, encode_traces};

fn traces() -> Vec<trace_store_core::Trace> {
    vec![common::fixture::full_trace()]
}

fn oracle_spans(request: &OracleRequest) -> Vec<(String, String, String, u64, u64, usize, i32)> {
    let mut out = Vec::new();
    for rs in &request.resource_spans {
        for ss in &rs.scope_spans {
            for span in &ss.spans {
                out.push((
                    common::hex(&span.trace_id),
                    common::hex(&span.span_id),
                    common::hex(&span.parent_span_id),
                    span.start_time_unix_nano,
                    span.end_time_unix_nano,
                    span.attributes.len(),
                    span.status.as_ref().map_or(0, |s| s.code),
                ));
            }
        }
    }
    out
}

#[test]
fn our_protobuf_and_json_decode_with_opentelemetry_proto_to_the_same_spans() {
    let protobuf = encode_traces(&traces(), Encoding::Protobuf).unwrap();
    let json = encode_traces(&traces(), Encoding::Json).unwrap();
    let from_protobuf = OracleRequest::decode(protobuf.as_slice()).unwrap();
    let from_json: OracleRequest = serde_json::from_slice(&json).unwrap();
    let spans = oracle_spans(&from_protobuf);
    assert_eq!(spans.len(), 5, "a run span and four steps");
    assert_eq!(spans, oracle_spans(&from_json));
    // The oracle's own protobuf is byte-compatible with ours: re-encoding decodes back.
    let again = decode_traces(&from_protobuf.encode_to_vec(), Encoding::Protobuf).unwrap();
    assert_eq!(again.parts, traces());
}

#[test]
fn what_opentelemetry_proto_writes_we_read() {
    let protobuf = encode_traces(&traces(), Encoding::Protobuf).unwrap();
    let oracle = OracleRequest::decode(protobuf.as_slice()).unwrap();
    let oracle_json = serde_json::to_vec(&oracle).unwrap();
    let ingest = decode_traces(&oracle_json, Encoding::Json).unwrap();
    assert_eq!(ingest.parts, traces());
}

#[test]
fn responses_decode_with_opentelemetry_proto() {
    let body = encode_response(3, "bad span", Encoding::Protobuf);
    let response = OracleResponse::decode(body.as_slice()).unwrap();
    let partial = response.partial_success.unwrap();
    assert_eq!(
        (partial.rejected_spans, partial.error_message.as_str()),
        (3, "bad span")
    );
    // The JSON Protobuf Encoding writes int64 as a string, which opentelemetry-proto's
    // serde support does not read (it wants a number), so the JSON form is checked here
    // against the spec's shape and our own lenient reader.
    let json = encode_response(3, "bad span", Encoding::Json);
    let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(
        value,
        serde_json::json!({"partialSuccess": {"rejectedSpans": "3", "errorMessage": "bad span"}})
    );
    assert_eq!(
        trace_store_otlp::decode_response(&json, Encoding::Json).unwrap(),
        (3, "bad span".to_owned())
    );
    let numeric = br#"{"partial_success": {"rejected_spans": 3}}"#;
    assert_eq!(
        trace_store_otlp::decode_response(numeric, Encoding::Json)
            .unwrap()
            .0,
        3
    );
    assert_eq!(encode_response(0, "", Encoding::Protobuf), Vec::<u8>::new());
    assert_eq!(encode_response(0, "", Encoding::Json), b"{}");
}
