//! model -> OTLP -> model is exact for generated traces, in both encodings.

mod common;

use proptest::prelude::*;
use serde_json::{Map, Value};
use trace_store_core::{
    ErrorInfo, Score, ScoreSource, Status, Step, StepKind, Timestamp, ToolCall, Trace, Usage,
};
use trace_store_otlp::{Encoding, semconv};

fn timestamp() -> impl Strategy<Value = Timestamp> {
    prop_oneof![
        4 => 1_600_000_000_000_000i64..1_900_000_000_000_000,
        1 => Timestamp::MIN.as_micros()..=Timestamp::MAX.as_micros(),
        1 => Just(0i64),
    ]
    .prop_map(|us| Timestamp::from_micros(us).unwrap())
}

/// Keys that collide with what the mapping writes, mixed with ordinary ones.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z]{1,8}(\\.[a-z]{1,5})?",
        1 => prop::sample::select(vec![
            semconv::GEN_AI_REQUEST_MODEL, semconv::GEN_AI_RESPONSE_MODEL, semconv::GEN_AI_OPERATION_NAME,
            semconv::GEN_AI_USAGE_INPUT_TOKENS, semconv::GEN_AI_USAGE_COST, semconv::GEN_AI_TOOL_NAME,
            semconv::GEN_AI_INPUT_MESSAGES, semconv::GEN_AI_SYSTEM, semconv::ERROR_TYPE, semconv::SESSION_ID,
            semconv::TRACE_STORE_RUN, semconv::TRACE_STORE_STEP, semconv::TRACE_STORE_STEP_ID,
            "trace_store.attr.x", "trace_store.otlp.events", "trace_store.otlp.time_ns",
            "trace_store.otlp.resource", "trace_store.u64", "trace_store.bytes", "trace_store.object",
            "trace_store.json", "trace_store.kvlist", "trace_store.double",
        ]).prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop_oneof![Just(1.0f64), Just(-0.0), Just(0.5)].prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
        prop::sample::select(vec!["aGk=", "NaN", "Infinity", "[1]", "5"]).prop_map(Value::from),
    ];
    leaf.prop_recursive(6, 48, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..5)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn deep_value() -> impl Strategy<Value = Value> {
    (1usize..64).prop_map(|depth| (0..depth).fold(Value::from(1), |v, _| Value::Array(vec![v])))
}

fn opt_string() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![3 => "[a-z0-9-]{0,10}", 1 => "[0-9a-f]{16}", 1 => any::<String>()])
}

fn status() -> impl Strategy<Value = Status> {
    prop::sample::select(Status::ALL.to_vec())
}

fn error_info() -> impl Strategy<Value = ErrorInfo> {
    (opt_string(), ".{0,10}", prop::option::of(".{0,10}")).prop_map(|(kind, message, stack)| {
        let mut error = ErrorInfo::new(message);
        error.error_type = kind;
        error.stacktrace = stack;
        error
    })
}

fn kind() -> impl Strategy<Value = StepKind> {
    prop_oneof![
        prop::sample::select(vec![
            "llm_call",
            "tool_call",
            "tool_selection",
            "retrieval",
            "embedding",
            "agent",
            "chain",
            "guardrail",
            "cache_hit",
            "memory",
            "error",
            "custom",
            "planner",
        ])
        .prop_map(StepKind::from_name),
        "[a-z_]{1,10}".prop_map(|name| StepKind::from_name(&name)),
    ]
}

prop_compose! {
    fn step()(
        id in opt_string(), parent in opt_string(), kind in kind(), name in opt_string(),
        started in prop::option::of(timestamp()), duration in prop_oneof![any::<u64>(), 0u64..10_000_000],
        status in status(), model in opt_string(), provider in opt_string(),
        tokens in prop::array::uniform5(prop_oneof![Just(0u64), any::<u64>(), 0u64..100_000]),
        cost in prop_oneof![Just(0i64), any::<i64>(), -1_000_000i64..1_000_000_000],
        tool in prop::option::of((".{0,8}", opt_string())),
        input in prop::option::of(prop_oneof![json_value(), deep_value()]),
        output in prop::option::of(json_value()),
        error in prop::option::of(error_info()),
        attributes in prop::collection::btree_map(key(), json_value(), 0..6),
    ) -> Step {
        let mut step = Step::new(kind);
        step.id = id;
        step.parent_id = parent;
        step.name = name;
        step.started_at = started;
        step.duration_us = duration;
        step.status = status;
        step.model = model;
        step.provider = provider;
        let mut usage = Usage::default();
        [usage.input_tokens, usage.output_tokens, usage.cache_read_input_tokens,
         usage.cache_creation_input_tokens, usage.reasoning_tokens] = tokens;
        step.usage = usage;
        step.cost_nano_usd = cost;
        step.tool = tool.map(|(name, call_id)| {
            let tool = ToolCall::new(name);
            match call_id { Some(id) => tool.with_call_id(id), None => tool }
        });
        step.input = input;
        step.output = output;
        step.error = error;
        step.attributes = attributes;
        step
    }
}

prop_compose! {
    fn score()(
        name in "[a-z]{1,8}", value in prop::option::of(-10.0f64..10.0), label in opt_string(),
        comment in opt_string(), source in prop::sample::select(vec!["human", "llm", "code", "ragas"]),
        step_id in opt_string(), created_at in timestamp(),
    ) -> Score {
        let mut score = Score::new(name).with_source(ScoreSource::from_name(source)).with_created_at(created_at);
        score.value = value;
        score.label = label;
        score.comment = comment;
        score.step_id = step_id;
        score
    }
}

prop_compose! {
    fn trace()(
        run_id in prop_oneof!["[0-9a-f]{32}", "[a-zA-Z0-9_.:-]{1,40}", "[^\\x00-\\x1f\\x7f]{1,20}"],
        parent in opt_string(), name in opt_string(), session in opt_string(),
        created_at in timestamp(), ended_at in prop::option::of(timestamp()), status in status(),
        error in prop::option::of(error_info()),
        metadata in prop::collection::btree_map(key(), json_value(), 0..4),
        steps in prop::collection::vec(step(), 0..6),
        scores in prop::collection::vec(score(), 0..3),
        schema_version in prop_oneof![9 => Just(1u32), 1 => Just(0u32)],
    ) -> Trace {
        let mut trace = Trace::new(run_id).with_created_at(created_at);
        trace.parent_run_id = parent;
        trace.name = name;
        trace.session_id = session;
        trace.ended_at = ended_at;
        trace.status = status;
        trace.error = error;
        trace.metadata = metadata;
        trace.steps = steps;
        for score in scores {
            trace.add_score(score);
        }
        trace.schema_version = schema_version;
        trace
    }
}

fn check(traces: Vec<Trace>) -> Result<(), TestCaseError> {
    // Distinct run_ids: one request holds one part per run.
    let mut seen = std::collections::HashSet::new();
    let traces: Vec<Trace> = traces
        .into_iter()
        .filter(|t| seen.insert(t.run_id.clone()))
        .collect();
    for trace in &traces {
        prop_assume!(trace.validate().is_ok());
    }
    for encoding in [Encoding::Json, Encoding::Protobuf] {
        let back = common::model_round_trip(&traces, encoding);
        prop_assert_eq!(&back, &traces, "{:?}", encoding);
    }
    Ok(())
}

#[test]
fn generated_traces_round_trip_exactly() {
    // The generator's strategy tree is deep; debug builds need more than the default
    // 2 MiB test-thread stack to build it.
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(|| {
            let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
                cases: 128,
                failure_persistence: None,
                ..ProptestConfig::default()
            });
            if let Err(failure) = runner.run(&prop::collection::vec(trace(), 1..4), check) {
                panic!("{failure}");
            }
        })
        .unwrap()
        .join()
        .unwrap();
}
