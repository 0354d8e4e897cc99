//! OTLP -> model -> OTLP on payloads this crate did not write: the spec's example and
//! hand-written requests using every part of a span.

mod common;

use common::{assert_otlp_round_trip, spans_of};
use serde_json::json;
use trace_store_core::{Status, StepKind, Timestamp};
use trace_store_otlp::{Encoding, decode_request, decode_traces, encode_request};

const SPEC_EXAMPLE: &[u8] = include_bytes!("data/opentelemetry-proto-examples-trace.json");

#[test]
fn the_spec_example_maps_to_one_step_and_back_unchanged() {
    let parts = assert_otlp_round_trip(SPEC_EXAMPLE, Encoding::Json);
    assert_eq!(parts.len(), 1);
    let trace = &parts[0];
    assert_eq!(trace.run_id, "5b8efff798038103d269b633813fc60c");
    assert_eq!(trace.status, Status::Unset, "no root span, so no header");
    assert_eq!(trace.name, None);
    assert_eq!(
        trace.created_at,
        Timestamp::from_micros(1_544_712_660_000_000).unwrap()
    );
    let step = &trace.steps[0];
    assert_eq!(step.id.as_deref(), Some("eee19b7ec3c1b174"));
    assert_eq!(step.parent_id.as_deref(), Some("eee19b7ec3c1b173"));
    assert_eq!(step.name.as_deref(), Some("I'm a server span"));
    assert_eq!(step.duration_us, 1_000_000);
    assert_eq!(step.kind, StepKind::Chain);
    assert_eq!(step.attributes["my.span.attr"], "some value");
    assert_eq!(step.attributes["trace_store.otlp.span_kind"], 2);
    assert_eq!(
        step.attributes["trace_store.otlp.resource"],
        json!({"attributes": {"service.name": "my.service"}})
    );

    // The same request as protobuf round-trips too.
    let request = decode_request(SPEC_EXAMPLE, Encoding::Json).unwrap();
    assert_otlp_round_trip(
        &encode_request(&request, Encoding::Protobuf),
        Encoding::Protobuf,
    );
}

/// A request using every span part: events, links, trace state, flags, dropped counts,
/// sub-µs times, non-OK statuses, bytes and non-finite doubles, two resources, GenAI
/// attributes in foreign spellings.
fn rich_request() -> serde_json::Value {
    let trace = "0af7651916cd43dd8448eb211c80319c";
    json!({"resourceSpans": [
        {"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "agent"}}], "droppedAttributesCount": 1},
         "schemaUrl": "https://opentelemetry.io/schemas/1.30.0",
         "scopeSpans": [{"scope": {"name": "openai-instrumentation", "version": "0.1"}, "spans": [
            {"traceId": trace, "spanId": "b7ad6b7169203331", "name": "invoke_agent support",
             "kind": "SPAN_KIND_SERVER", "startTimeUnixNano": "1700000000000000123", "endTimeUnixNano": "1700000001500000999",
             "traceState": "vendor=x", "flags": 257,
             "attributes": [
                {"key": "gen_ai.operation.name", "value": {"stringValue": "invoke_agent"}},
                {"key": "gen_ai.conversation.id", "value": {"stringValue": "conv-1"}},
                {"key": "count", "value": {"intValue": "7"}},
                {"key": "ratio", "value": {"doubleValue": "NaN"}},
                {"key": "blob", "value": {"bytesValue": "AAEC"}},
                {"key": "list", "value": {"arrayValue": {"values": [{"intValue": 1}, {"doubleValue": 1.0}, {}]}}}
             ],
             "status": {"code": "STATUS_CODE_OK", "message": "fine"}},
            {"traceId": trace, "spanId": "00f067aa0ba902b7", "parentSpanId": "b7ad6b7169203331", "name": "chat gpt-4o",
             "kind": 3, "startTimeUnixNano": 1700000000100000000u64, "endTimeUnixNano": 1700000000900000000u64,
             "attributes": [
                {"key": "gen_ai.operation.name", "value": {"stringValue": "text_completion"}},
                {"key": "gen_ai.system", "value": {"stringValue": "openai"}},
                {"key": "gen_ai.response.model", "value": {"stringValue": "gpt-4o-2024"}},
                {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "100"}},
                {"key": "gen_ai.usage.output_tokens", "value": {"intValue": 0}},
                {"key": "gen_ai.usage.cost", "value": {"doubleValue": 0.0123}}
             ],
             "events": [{"timeUnixNano": "1700000000200000000", "name": "exception",
                         "attributes": [{"key": "exception.type", "value": {"stringValue": "RateLimit"}}], "droppedAttributesCount": 2}],
             "links": [{"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "traceState": "a=b",
                        "attributes": [{"key": "link.kind", "value": {"stringValue": "follows"}}], "flags": 1}],
             "droppedAttributesCount": 3, "droppedEventsCount": 4, "droppedLinksCount": 5,
             "status": {"code": 2, "message": "rate limited"}}
         ]}]},
        {"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "tools"}}]},
         "scopeSpans": [{"scope": {"name": "tools"}, "spans": [
            {"traceId": trace, "spanId": "1111111111111111", "parentSpanId": "00f067aa0ba902b7", "name": "execute_tool search",
             "startTimeUnixNano": "1700000000300000000", "endTimeUnixNano": "1700000000200000000",
             "attributes": [
                {"key": "gen_ai.tool.name", "value": {"stringValue": "search"}},
                {"key": "gen_ai.tool.call.id", "value": {"stringValue": "call_9"}},
                {"key": "gen_ai.tool.call.arguments", "value": {"kvlistValue": {"values": [{"key": "q", "value": {"stringValue": "otel"}}, {"key": "q", "value": {"stringValue": "again"}}]}}},
                {"key": "error.type", "value": {"stringValue": "Timeout"}}
             ]}
         ]}]}
    ]})
}

#[test]
fn every_span_part_survives_otlp_model_otlp() {
    let body = serde_json::to_vec(&rich_request()).unwrap();
    let parts = assert_otlp_round_trip(&body, Encoding::Json);
    let request = decode_request(&body, Encoding::Json).unwrap();
    assert_otlp_round_trip(
        &encode_request(&request, Encoding::Protobuf),
        Encoding::Protobuf,
    );

    assert_eq!(parts.len(), 1);
    let trace = &parts[0];
    assert_eq!(
        trace.name.as_deref(),
        Some("invoke_agent support"),
        "the root span names the run"
    );
    assert_eq!(trace.session_id.as_deref(), Some("conv-1"));
    assert_eq!(trace.status, Status::Ok);
    assert_eq!(trace.created_at.as_micros(), 1_700_000_000_000_000);
    let [agent, chat, tool] = &trace.steps[..] else {
        panic!("three steps expected: {:?}", trace.steps);
    };
    assert_eq!(agent.kind, StepKind::Agent);
    assert_eq!(chat.kind, StepKind::LlmCall);
    assert_eq!(chat.model.as_deref(), Some("gpt-4o-2024"));
    assert_eq!(chat.provider.as_deref(), Some("openai"));
    assert_eq!(chat.usage.input_tokens, 100);
    assert_eq!(chat.cost_nano_usd, 12_300_000);
    assert_eq!(chat.status, Status::Error);
    assert_eq!(chat.error.as_ref().unwrap().message, "rate limited");
    assert_eq!(chat.parent_id.as_deref(), Some("b7ad6b7169203331"));
    assert_eq!(tool.kind, StepKind::ToolCall);
    assert_eq!(
        tool.tool.as_ref().unwrap().call_id.as_deref(),
        Some("call_9")
    );
    assert_eq!(
        tool.duration_us, 0,
        "an end before the start is a zero duration"
    );
    assert_eq!(
        tool.input,
        Some(json!({"trace_store.kvlist": [["q", "otel"], ["q", "again"]]}))
    );
}

#[test]
fn spans_keep_nanosecond_times() {
    let body = serde_json::to_vec(&rich_request()).unwrap();
    let ingest = decode_traces(&body, Encoding::Json).unwrap();
    let again = trace_store_otlp::encode_traces(&ingest.parts, Encoding::Json).unwrap();
    let spans = spans_of(&again, Encoding::Json);
    let root = &spans["0af7651916cd43dd8448eb211c80319c/b7ad6b7169203331"];
    assert_eq!(root["start"], "1700000000000000123");
    assert_eq!(root["end"], "1700000001500000999");
}
