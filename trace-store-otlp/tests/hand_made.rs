//! Round trips of hand-made traces that set every field.

mod common;

use common::fixture::{at, full_trace};
use serde_json::json;
use trace_store_core::{ErrorInfo, Step, StepKind, Trace};
use trace_store_otlp::{Encoding, decode_traces, encode_traces, proto, semconv};

fn round_trip(trace: &Trace, encoding: Encoding) -> Trace {
    let body = encode_traces(std::slice::from_ref(trace), encoding).unwrap();
    let ingest = decode_traces(&body, encoding).unwrap();
    assert_eq!(ingest.rejected_spans, 0, "{:?}", ingest.error_message);
    assert_eq!(ingest.parts.len(), 1);
    ingest.parts.into_iter().next().unwrap()
}

/// Attribute keys of every span in `trace`'s OTLP form.
fn wire_keys(trace: &Trace) -> Vec<Vec<String>> {
    let body = encode_traces(std::slice::from_ref(trace), Encoding::Protobuf).unwrap();
    let request = trace_store_otlp::decode_request(&body, Encoding::Protobuf).unwrap();
    request
        .resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
        .map(|span: &proto::Span| span.attributes.iter().map(|kv| kv.key.clone()).collect())
        .collect()
}

#[test]
fn a_trace_with_every_field_round_trips_in_both_encodings() {
    let trace = full_trace();
    for encoding in [Encoding::Json, Encoding::Protobuf] {
        assert_eq!(round_trip(&trace, encoding), trace, "{encoding:?}");
    }
}

#[test]
fn ordinary_steps_travel_as_gen_ai_attributes_not_as_raw_json() {
    let keys = wire_keys(&full_trace());
    assert!(
        keys.iter()
            .all(|span| !span.iter().any(|k| k == semconv::TRACE_STORE_STEP)),
        "{keys:?}"
    );
    let llm = &keys[1];
    for key in [
        semconv::GEN_AI_OPERATION_NAME,
        semconv::GEN_AI_REQUEST_MODEL,
        semconv::GEN_AI_PROVIDER_NAME,
        semconv::GEN_AI_USAGE_INPUT_TOKENS,
        semconv::GEN_AI_USAGE_OUTPUT_TOKENS,
        semconv::GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
        semconv::GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
        semconv::GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
        semconv::GEN_AI_USAGE_COST,
        semconv::GEN_AI_INPUT_MESSAGES,
        semconv::GEN_AI_OUTPUT_MESSAGES,
        "trace_store.attr.trace_store.user_key",
    ] {
        assert!(llm.iter().any(|k| k == key), "{key} missing from {llm:?}");
    }
}

#[test]
fn edge_values_round_trip() {
    let traces = [
        Trace::new("0af7651916cd43dd8448eb211c80319c").with_created_at(at(0)),
        Trace::new("before-1970")
            .with_created_at(at(-1_000))
            .with_step(
                Step::llm_call("m")
                    .with_started_at(at(-5_000))
                    .with_duration_us(u64::MAX),
            ),
        Trace::new("x")
            .with_created_at(at(10))
            .with_step(Step::llm_call("m").with_attribute(semconv::GEN_AI_REQUEST_MODEL, "other"))
            .with_step(Step::llm_call("m").with_attribute(semconv::GEN_AI_REQUEST_MODEL, "m"))
            .with_step(
                Step::new(StepKind::Chain).with_attribute(semconv::GEN_AI_RESPONSE_MODEL, "r"),
            )
            .with_step(Step::new(StepKind::Chain).with_started_at(at(2)))
            .with_step(
                Step::new(StepKind::Agent)
                    .with_id("")
                    .with_name("")
                    .with_error(ErrorInfo::new(""))
                    .with_attribute("k", json!({"trace_store.bytes": "aGk="})),
            ),
    ];
    let mut unset = Trace::new("unset-status").with_created_at(at(1));
    unset.error = Some(ErrorInfo::new("but not failed"));
    unset.schema_version = 0;
    for trace in traces.iter().chain([&unset]) {
        for encoding in [Encoding::Json, Encoding::Protobuf] {
            assert_eq!(&round_trip(trace, encoding), trace, "{encoding:?}");
        }
    }
}

#[test]
fn costs_travel_as_usd_and_as_exact_nano_usd_when_a_double_cannot_hold_them() {
    let exact = 9_007_199_254_740_993; // 2^53 + 1 nano-USD: no f64 holds it
    let trace = Trace::new("c")
        .with_created_at(at(0))
        .with_step(Step::llm_call("m").with_cost_nano_usd(33_709_000))
        .with_step(Step::llm_call("m").with_cost_nano_usd(exact))
        .with_step(Step::llm_call("m").with_cost_nano_usd(-1));
    let keys = wire_keys(&trace);
    let has = |span: &Vec<String>, key: &str| span.iter().any(|k| k == key);
    // keys[0] is the run span.
    assert!(
        has(&keys[1], semconv::GEN_AI_USAGE_COST)
            && !has(&keys[1], semconv::TRACE_STORE_COST_NANO_USD)
    );
    assert!(
        has(&keys[2], semconv::GEN_AI_USAGE_COST)
            && has(&keys[2], semconv::TRACE_STORE_COST_NANO_USD)
    );
    for encoding in [Encoding::Json, Encoding::Protobuf] {
        assert_eq!(round_trip(&trace, encoding), trace);
    }
}
