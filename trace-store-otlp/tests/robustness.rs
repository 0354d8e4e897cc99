//! The decoder never panics and never trusts sizes: random, truncated, deep and
//! non-UTF-8 bodies are typed errors or rejected spans, and the lenient reader takes what
//! real exporters send.

mod common;

use proptest::prelude::*;
use serde_json::json;
use trace_store_core::Error;
use trace_store_otlp::proto::any_value::Value as Any;
use trace_store_otlp::proto::{
    AnyValue, ArrayValue, ExportTraceServiceRequest, KeyValue, ResourceSpans, ScopeSpans, Span,
};
use trace_store_otlp::{Encoding, decode_request, decode_traces, encode_request, encode_traces};

fn sample_body(encoding: Encoding) -> Vec<u8> {
    encode_traces(&[common::fixture::full_trace()], encoding).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        for encoding in [Encoding::Json, Encoding::Protobuf] {
            let _ = decode_traces(&body, encoding);
        }
    }

    #[test]
    fn truncated_and_corrupted_bodies_never_panic(cut in any::<prop::sample::Index>(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4)) {
        for encoding in [Encoding::Json, Encoding::Protobuf] {
            let mut body = sample_body(encoding);
            for (at, byte) in &flips {
                let i = at.index(body.len());
                body[i] ^= byte;
            }
            let end = cut.index(body.len());
            if let Err(error) = decode_traces(&body[..end], encoding) {
                prop_assert!(matches!(error, Error::InvalidInput { .. }), "{error}");
            }
        }
    }
}

#[test]
fn a_truncated_protobuf_body_is_invalid_input() {
    let body = sample_body(Encoding::Protobuf);
    let error = decode_traces(&body[..body.len() - 3], Encoding::Protobuf).unwrap_err();
    assert!(matches!(error, Error::InvalidInput { .. }), "{error}");
}

#[test]
fn invalid_utf8_is_invalid_input() {
    // A span name (field 5 of Span) holding 0xFF.
    let mut body = sample_body(Encoding::Protobuf);
    let at = body
        .windows(4)
        .position(|w| w == b"plan")
        .expect("the step name is in the body");
    body[at] = 0xFF;
    assert!(matches!(
        decode_traces(&body, Encoding::Protobuf),
        Err(Error::InvalidInput { .. })
    ));
    assert!(matches!(
        decode_traces(b"{\"resourceSpans\": [\xff]}", Encoding::Json),
        Err(Error::InvalidInput { .. })
    ));
}

#[test]
fn deep_json_and_deep_any_values_are_refused() {
    let deep_json = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(matches!(
        decode_traces(deep_json.as_bytes(), Encoding::Json),
        Err(Error::InvalidInput { .. })
    ));

    // AnyValues nesting deeper than the readers allow make the whole body malformed:
    // serde_json stops at 128 levels, prost at 100 nested messages.
    let mut value = json!({"intValue": "1"});
    for _ in 0..45 {
        value = json!({"arrayValue": {"values": [value]}});
    }
    let body = json!({"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203332", "name": "deep",
         "attributes": [{"key": "deep", "value": value}]}
    ]}]}]});
    assert!(matches!(
        decode_traces(body.to_string().as_bytes(), Encoding::Json),
        Err(Error::InvalidInput { .. })
    ));
    let request = decode_request(
        body.to_string()
            .replace("\"deep\", \"value\"", "\"x\", \"value\"")
            .as_bytes(),
        Encoding::Json,
    );
    assert!(request.is_err());

    let mut any = AnyValue {
        value: Some(Any::IntValue(1)),
    };
    for _ in 0..60 {
        any = AnyValue {
            value: Some(Any::ArrayValue(ArrayValue { values: vec![any] })),
        };
    }
    let mut span = Span {
        trace_id: vec![1; 16],
        span_id: vec![1; 8],
        ..Span::default()
    };
    span.attributes.push(KeyValue {
        key: "deep".into(),
        value: Some(any),
    });
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![span],
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    };
    let body = encode_request(&request, Encoding::Protobuf);
    assert!(matches!(
        decode_traces(&body, Encoding::Protobuf),
        Err(Error::InvalidInput { .. })
    ));
}

#[test]
fn spans_with_bad_ids_are_rejected_not_fatal() {
    let body = json!({"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": "00000000000000000000000000000000", "spanId": "b7ad6b7169203331", "name": "zero trace id"},
        {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "", "name": "no span id"},
        {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331", "name": "fine"}
    ]}]}]});
    let ingest = decode_traces(body.to_string().as_bytes(), Encoding::Json).unwrap();
    assert_eq!(ingest.rejected_spans, 2);
    assert_eq!(ingest.parts.len(), 1);
    // A malformed id string, though, makes the body malformed: nothing is taken.
    let bad = json!({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "xyz", "spanId": "b7ad6b7169203331"}]}]}]});
    assert!(matches!(
        decode_traces(bad.to_string().as_bytes(), Encoding::Json),
        Err(Error::InvalidInput { .. })
    ));
}

#[test]
fn the_lenient_reader_takes_snake_case_string_ints_enum_names_and_upper_case_ids() {
    let camel = json!({"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331",
        "name": "chat", "kind": 1, "startTimeUnixNano": "1000", "endTimeUnixNano": "3000",
        "attributes": [{"key": "gen_ai.usage.input_tokens", "value": {"intValue": "12"}}],
        "status": {"code": 2, "message": "boom"}}]}]}]});
    let snake = json!({"resource_spans": [{"scope_spans": [{"spans": [{
        "trace_id": "0AF7651916CD43DD8448EB211C80319C", "span_id": "B7AD6B7169203331",
        "name": "chat", "kind": "SPAN_KIND_INTERNAL", "start_time_unix_nano": 1000, "end_time_unix_nano": 3000,
        "attributes": [{"key": "gen_ai.usage.input_tokens", "value": {"int_value": 12}}],
        "status": {"code": "STATUS_CODE_ERROR", "message": "boom"}}]}]}]});
    let a = decode_traces(camel.to_string().as_bytes(), Encoding::Json).unwrap();
    let b = decode_traces(snake.to_string().as_bytes(), Encoding::Json).unwrap();
    assert_eq!(a.parts, b.parts);
    let step = &a.parts[0].steps[0];
    assert_eq!(step.usage.input_tokens, 12);
    assert_eq!(step.error.as_ref().unwrap().message, "boom");
    let unknown_enum = json!({"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331", "kind": "SPAN_KIND_NOPE"}]}]}]});
    assert!(decode_traces(unknown_enum.to_string().as_bytes(), Encoding::Json).is_err());
}

#[test]
fn the_strict_writer_follows_the_json_protobuf_encoding() {
    let body = sample_body(Encoding::Json);
    let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let span = &value["resourceSpans"][0]["scopeSpans"][0]["spans"][1];
    let trace_id = span["traceId"].as_str().unwrap();
    assert_eq!(trace_id.len(), 32);
    assert!(
        trace_id
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
    );
    assert!(
        span["startTimeUnixNano"].is_string(),
        "64-bit integers are strings"
    );
    assert!(span["kind"].is_number(), "enums are integers");
    assert!(
        span.get("parentSpanId").is_some() && span.get("parent_span_id").is_none(),
        "camelCase"
    );
    let int_attr = span["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|kv| kv["key"] == "gen_ai.usage.input_tokens")
        .unwrap();
    assert_eq!(int_attr["value"], json!({"intValue": "1200"}));
}
