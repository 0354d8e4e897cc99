//! Spans of one trace sent over many requests, in any order, assemble through
//! `TraceStore::merge` into the trace sent at once.

mod common;

use proptest::prelude::*;
use trace_store_core::{Step, Trace, TraceStore};
use trace_store_memory::MemoryStore;
use trace_store_otlp::proto::{ExportTraceServiceRequest, ResourceSpans, ScopeSpans};
use trace_store_otlp::{Encoding, decode_request, decode_traces, encode_request, encode_traces};

use common::fixture as hand_made_traces;

/// One request per span, keeping each span's resource and scope.
fn one_request_per_span(body: &[u8]) -> Vec<Vec<u8>> {
    let request = decode_request(body, Encoding::Protobuf).unwrap();
    let mut out = Vec::new();
    for rs in &request.resource_spans {
        for ss in &rs.scope_spans {
            for span in &ss.spans {
                let single = ExportTraceServiceRequest {
                    resource_spans: vec![ResourceSpans {
                        resource: rs.resource.clone(),
                        scope_spans: vec![ScopeSpans {
                            scope: ss.scope.clone(),
                            spans: vec![span.clone()],
                            schema_url: ss.schema_url.clone(),
                        }],
                        schema_url: rs.schema_url.clone(),
                    }],
                };
                out.push(encode_request(&single, Encoding::Protobuf));
            }
        }
    }
    out
}

/// Steps in a canonical order: arrival order is all a receiver knows, so the test
/// compares step sets.
fn normalised(mut trace: Trace) -> Trace {
    trace
        .steps
        .sort_by_key(|s: &Step| serde_json::to_string(s).unwrap());
    trace
}

fn assemble(trace: &Trace, order: &[usize]) -> Trace {
    let body = encode_traces(std::slice::from_ref(trace), Encoding::Protobuf).unwrap();
    let requests = one_request_per_span(&body);
    let store = MemoryStore::unbounded();
    for &i in order {
        let ingest = decode_traces(&requests[i % requests.len()], Encoding::Protobuf).unwrap();
        assert_eq!(ingest.rejected_spans, 0, "{:?}", ingest.error_message);
        for part in &ingest.parts {
            store.merge(part).unwrap();
        }
    }
    store.load(&trace.run_id).unwrap()
}

fn span_count(trace: &Trace) -> usize {
    let body = encode_traces(std::slice::from_ref(trace), Encoding::Protobuf).unwrap();
    one_request_per_span(&body).len()
}

#[test]
fn reversed_single_span_requests_assemble_into_the_trace() {
    let trace = hand_made_traces::full_trace();
    let n = span_count(&trace);
    assert!(n > 2, "the run span and the steps travel apart");
    let reversed: Vec<usize> = (0..n).rev().collect();
    let assembled = assemble(&trace, &reversed);
    assert_eq!(normalised(assembled), normalised(trace));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn shuffled_single_span_requests_assemble_into_the_trace(seed in any::<u64>()) {
        let trace = hand_made_traces::full_trace();
        let n = span_count(&trace);
        let mut order: Vec<usize> = (0..n).collect();
        // A Fisher-Yates shuffle driven by the seed.
        let mut state = seed | 1;
        for i in (1..n).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            order.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let assembled = assemble(&trace, &order);
        prop_assert_eq!(normalised(assembled), normalised(trace));
    }
}

#[test]
fn a_part_without_its_run_span_sets_no_header_and_a_created_at_no_earlier_than_the_run() {
    let trace = hand_made_traces::full_trace();
    let body = encode_traces(std::slice::from_ref(&trace), Encoding::Protobuf).unwrap();
    for request in one_request_per_span(&body).iter().skip(1) {
        let ingest = decode_traces(request, Encoding::Protobuf).unwrap();
        let part = &ingest.parts[0];
        assert_eq!(part.run_id, trace.run_id);
        assert_eq!(
            (part.name.as_ref(), part.status),
            (None, trace_store_core::Status::Unset)
        );
        assert!(part.metadata.is_empty() && part.scores.is_empty() && part.error.is_none());
        assert!(
            part.created_at >= trace.created_at,
            "merge keeps the earlier created_at"
        );
    }
}
