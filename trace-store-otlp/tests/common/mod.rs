//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;

use serde_json::{Value, json};
use trace_store_core::Trace;
use trace_store_otlp::proto::{AnyValue, KeyValue, any_value::Value as Any};
use trace_store_otlp::{Encoding, decode_request, decode_traces, encode_traces, semconv};

/// A JSON form of an AnyValue that tells every OTLP type apart.
pub fn any_json(any: Option<&AnyValue>) -> Value {
    match any.and_then(|a| a.value.as_ref()) {
        None => json!({"empty": null}),
        Some(Any::StringValue(s)) => json!({"s": s}),
        Some(Any::BoolValue(b)) => json!({"b": b}),
        Some(Any::IntValue(i)) => json!({"i": i.to_string()}),
        Some(Any::DoubleValue(d)) => json!({"d": format!("{d:?}")}),
        Some(Any::BytesValue(b)) => json!({"bytes": b}),
        Some(Any::ArrayValue(a)) => {
            json!({"a": a.values.iter().map(|v| any_json(Some(v))).collect::<Vec<_>>()})
        }
        Some(Any::KvlistValue(l)) => {
            json!({"kv": l.values.iter().map(|kv| json!([kv.key, any_json(kv.value.as_ref())])).collect::<Vec<_>>()})
        }
    }
}

fn attributes_json(list: &[KeyValue]) -> Value {
    let map: BTreeMap<&str, Value> = list
        .iter()
        .map(|kv| (kv.key.as_str(), any_json(kv.value.as_ref())))
        .collect();
    json!(map)
}

/// Every span of an OTLP body, by `trace_id/span_id`, with everything OTLP says about it
/// (resource and scope included) in a comparable form.
pub fn spans_of(body: &[u8], encoding: Encoding) -> BTreeMap<String, Value> {
    let request = decode_request(body, encoding).unwrap();
    let mut out = BTreeMap::new();
    for rs in &request.resource_spans {
        let resource = rs.resource.clone().unwrap_or_default();
        for ss in &rs.scope_spans {
            let scope = ss.scope.clone().unwrap_or_default();
            for span in &ss.spans {
                let status = span.status.clone().unwrap_or_default();
                let value = json!({
                    "parent": hex(&span.parent_span_id),
                    "name": span.name,
                    "kind": span.kind,
                    "start": span.start_time_unix_nano.to_string(),
                    "end": span.end_time_unix_nano.to_string(),
                    "status": [status.code, status.message],
                    "attributes": attributes_json(&span.attributes),
                    "trace_state": span.trace_state,
                    "flags": span.flags,
                    "dropped": [span.dropped_attributes_count, span.dropped_events_count, span.dropped_links_count],
                    "events": span.events.iter().map(|e| json!([e.name, e.time_unix_nano.to_string(), attributes_json(&e.attributes), e.dropped_attributes_count])).collect::<Vec<_>>(),
                    "links": span.links.iter().map(|l| json!([hex(&l.trace_id), hex(&l.span_id), l.trace_state, attributes_json(&l.attributes), l.dropped_attributes_count, l.flags])).collect::<Vec<_>>(),
                    "resource": [attributes_json(&resource.attributes), resource.dropped_attributes_count, rs.schema_url],
                    "scope": [scope.name, scope.version, attributes_json(&scope.attributes), scope.dropped_attributes_count, ss.schema_url],
                });
                out.insert(
                    format!("{}/{}", hex(&span.trace_id), hex(&span.span_id)),
                    value,
                );
            }
        }
    }
    out
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// OTLP -> model -> OTLP: asserts every span comes back with everything it had.
pub fn assert_otlp_round_trip(body: &[u8], encoding: Encoding) -> Vec<Trace> {
    let ingest = decode_traces(body, encoding).unwrap();
    assert_eq!(ingest.rejected_spans, 0, "{:?}", ingest.error_message);
    for out_encoding in [Encoding::Json, Encoding::Protobuf] {
        let again = encode_traces(&ingest.parts, out_encoding).unwrap();
        let (before, mut after) = (spans_of(body, encoding), spans_of(&again, out_encoding));
        // The one attribute a span may gain: the operation name the conventions require.
        for (id, span) in &mut after {
            let had = before
                .get(id)
                .and_then(|b| b["attributes"].get(semconv::GEN_AI_OPERATION_NAME))
                .is_some();
            if !had && let Some(map) = span["attributes"].as_object_mut() {
                map.remove(semconv::GEN_AI_OPERATION_NAME);
            }
        }
        assert_eq!(before, after, "{encoding:?} -> model -> {out_encoding:?}");
    }
    ingest.parts
}

/// model -> OTLP -> model, in one encoding; returns the decoded traces.
pub fn model_round_trip(traces: &[Trace], encoding: Encoding) -> Vec<Trace> {
    let body = encode_traces(traces, encoding).unwrap();
    let ingest = decode_traces(&body, encoding).unwrap();
    assert_eq!(ingest.rejected_spans, 0, "{:?}", ingest.error_message);
    ingest.parts
}

/// How many spans of the OTLP form of `traces` fell back to raw step JSON.
pub fn raw_steps(traces: &[Trace]) -> usize {
    let body = encode_traces(traces, Encoding::Protobuf).unwrap();
    spans_of(&body, Encoding::Protobuf)
        .values()
        .filter(|span| span["attributes"].get(semconv::TRACE_STORE_STEP).is_some())
        .count()
}
pub mod fixture;
