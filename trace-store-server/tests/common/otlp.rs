//! OTLP payloads built with `opentelemetry-proto`, independent of trace-store-otlp.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, status};
use prost::Message;

pub const TRACE_ID: [u8; 16] = [
    0x5b, 0x8e, 0xfa, 0xf1, 0x9e, 0x2a, 0x4c, 0x3d, 0x8a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f, 0x60, 0x71,
];

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

pub fn string(key: &str, value: &str) -> KeyValue {
    kv(key, any_value::Value::StringValue(value.to_owned()))
}

pub fn int(key: &str, value: i64) -> KeyValue {
    kv(key, any_value::Value::IntValue(value))
}

pub fn span_id(index: u64) -> Vec<u8> {
    (index + 1).to_be_bytes().to_vec()
}

/// Span `index` of a binary tree rooted at span 0: an LLM call with GenAI attributes.
pub fn tree_span(trace_id: &[u8], index: u64, start_nanos: u64) -> Span {
    let parent = if index == 0 {
        Vec::new()
    } else {
        span_id((index - 1) / 2)
    };
    Span {
        trace_id: trace_id.to_vec(),
        span_id: span_id(index),
        parent_span_id: parent,
        name: format!("chat step-{index}"),
        kind: 1,
        start_time_unix_nano: start_nanos + index * 1_000,
        end_time_unix_nano: start_nanos + index * 1_000 + 500_000,
        attributes: vec![
            string("gen_ai.operation.name", "chat"),
            string("gen_ai.request.model", "gpt-4o-mini"),
            string("gen_ai.provider.name", "openai"),
            int("gen_ai.usage.input_tokens", 10),
            int("gen_ai.usage.output_tokens", 2),
        ],
        status: Some(Status {
            message: String::new(),
            code: status::StatusCode::Ok as i32,
        }),
        ..Default::default()
    }
}

pub fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![string("service.name", "robustness-test")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "test".to_owned(),
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

pub fn protobuf(spans: Vec<Span>) -> Vec<u8> {
    request(spans).encode_to_vec()
}

pub fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}
