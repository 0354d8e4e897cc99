//! Hot shared paths: JSON codec, summary derivation, canonical JSON, filter matching.

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use std::hint::black_box;
use trace_store_core::{
    Step, StepKind, Timestamp, Trace, TraceFilter, TraceSummary, canonical_json,
};

fn ten_step_trace() -> Trace {
    let mut trace = Trace::new("8c725b58bb09b58a5a7c7825944c83b9")
        .with_created_at(Timestamp::from_micros(1_767_249_377_075_216).unwrap_or_default())
        .with_metadata("user_id", "user_071")
        .with_metadata("env", "dev")
        .with_metadata("model", "gpt-4o-mini");
    for i in 0..10u64 {
        let step = if i % 2 == 0 {
            Step::llm_call("gpt-4o-mini")
                .with_usage(1900 + i, 600)
                .with_cost_nano_usd(33_709_000)
                .with_attribute(
                    "selectools.summary",
                    "graph node token token cache error agent",
                )
        } else {
            Step::tool_call("fetch_url")
                .with_input(json!({"q": "policy memory trace request", "n": 3}))
                .with_output("policy memory trace request context search policy node value")
        };
        trace = trace.with_step(step.with_duration_us(900_000 + i));
    }
    trace
        .steps
        .push(Step::new(StepKind::from_name("guardrail")));
    trace
}

fn bench(c: &mut Criterion) {
    let trace = ten_step_trace();
    let bytes = trace.to_json_vec().unwrap_or_default();
    let summary = TraceSummary::from(&trace);
    let meta =
        json!({"user": "user_071", "tags": ["a", "b"], "score": 1.0, "nested": {"z": 1, "a": 2}});
    let filter = TraceFilter::new()
        .with_metadata("user_id", "user_071")
        .with_min_steps(5);

    c.bench_function("encode_10_step_trace", |b| {
        b.iter(|| black_box(&trace).to_json_vec())
    });
    c.bench_function("decode_10_step_trace", |b| {
        b.iter(|| Trace::from_json_slice(black_box(&bytes)))
    });
    c.bench_function("summary_from_trace", |b| {
        b.iter(|| TraceSummary::from(black_box(&trace)))
    });
    c.bench_function("canonical_json", |b| {
        b.iter(|| canonical_json(black_box(&meta)))
    });
    c.bench_function("filter_matches", |b| {
        b.iter(|| black_box(&filter).matches(black_box(&summary)))
    });
    c.bench_function("validate_10_step_trace", |b| {
        b.iter(|| black_box(&trace).validate())
    });

    // What an in-memory index (memory, JSONL) does for `query`: filter 10,000 summaries
    // in list order, one user_id in a hundred matching.
    let summaries: Vec<TraceSummary> = (0..10_000)
        .map(|i| {
            let mut s = summary.clone();
            s.run_id = format!("run-{i:05}");
            s.metadata
                .insert("user_id".into(), json!(format!("user_{:03}", i % 100)));
            s
        })
        .collect();
    c.bench_function("filter_page_10k_summaries", |b| {
        b.iter(|| black_box(&filter).page(black_box(&summaries)).count())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
