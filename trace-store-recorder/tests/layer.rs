//! TraceLayer over hand-made spans.
#![cfg(feature = "tracing")]

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use support::StalledStore;
use trace_store_core::{Status, StepKind, Trace, TraceFilter, TraceStore};
use trace_store_memory::MemoryStore;
use trace_store_recorder::{Capture, GenAiSpans, Recorder, RecorderOptions, TraceLayer};
use tracing::Dispatch;
use tracing::instrument::WithSubscriber;
use tracing_subscriber::layer::SubscriberExt;

fn setup(options: RecorderOptions) -> (Arc<MemoryStore>, Recorder, Dispatch) {
    let store = Arc::new(MemoryStore::unbounded());
    let recorder = Recorder::spawn(store.clone(), options);
    let dispatch =
        Dispatch::new(tracing_subscriber::registry().with(TraceLayer::new(recorder.clone())));
    (store, recorder, dispatch)
}

fn only_trace(store: &MemoryStore) -> Trace {
    let all = store.query(&TraceFilter::default()).expect("query");
    assert_eq!(all.len(), 1, "expected one run, got {all:?}");
    store.load(&all[0].run_id).expect("load")
}

#[test]
fn every_operation_name_maps_to_its_kind() {
    let cases = [
        ("chat", StepKind::LlmCall),
        ("text_completion", StepKind::LlmCall),
        ("generate_content", StepKind::LlmCall),
        ("chat_streaming", StepKind::LlmCall),
        ("embeddings", StepKind::Embedding),
        ("execute_tool", StepKind::ToolCall),
        ("invoke_agent", StepKind::Agent),
        ("create_agent", StepKind::Agent),
        ("invoke_workflow", StepKind::Chain),
        ("retrieval", StepKind::Retrieval),
        ("rerank", StepKind::Other("rerank".to_owned())),
    ];
    let (store, recorder, dispatch) = setup(RecorderOptions::new());
    tracing::dispatcher::with_default(&dispatch, || {
        let root = tracing::info_span!("root", trace_store.run_id = "ops");
        let _root = root.enter();
        for (operation, _) in &cases {
            tracing::info_span!("op", gen_ai.operation.name = *operation).in_scope(|| {});
        }
    });
    recorder.flush().expect("flush");
    let trace = store.load("ops").expect("load");
    assert_eq!(trace.steps.len(), cases.len() + 1);
    for ((operation, kind), step) in cases.iter().zip(&trace.steps[1..]) {
        assert_eq!(&step.kind, kind, "{operation}");
        assert_eq!(step.attributes["gen_ai.operation.name"], *operation);
        assert_eq!(step.parent_id, trace.steps[0].id);
    }
}

#[test]
fn without_an_operation_name_a_tool_or_a_model_tells_the_kind() {
    let (store, recorder, dispatch) = setup(RecorderOptions::new());
    tracing::dispatcher::with_default(&dispatch, || {
        let root = tracing::info_span!("root", trace_store.run_id = "no-op");
        let _root = root.enter();
        tracing::info_span!("m", gen_ai.request.model = "gpt-4o").in_scope(|| {});
        tracing::info_span!("t", gen_ai.tool.name = "search", gen_ai.request.model = "x")
            .in_scope(|| {});
        tracing::info_span!("g", gen_ai.conversation.id = "c").in_scope(|| {});
    });
    recorder.flush().expect("flush");
    let kinds: Vec<StepKind> = store.load("no-op").expect("load").steps[1..]
        .iter()
        .map(|step| step.kind.clone())
        .collect();
    assert_eq!(
        kinds,
        [StepKind::LlmCall, StepKind::ToolCall, StepKind::Chain]
    );
}

#[test]
fn every_field_alias_is_mapped() {
    let (store, recorder, dispatch) = setup(RecorderOptions::new());
    tracing::dispatcher::with_default(&dispatch, || {
        let agent = tracing::info_span!(
            "invoke_agent",
            trace_store.run_id = "aliases",
            gen_ai.operation.name = "invoke_agent",
            gen_ai.agent.name = "weather-bot",
            gen_ai.conversation.id = "conv-1",
            gen_ai.prompt = "what is the weather?",
            gen_ai.completion = tracing::field::Empty,
        );
        let _agent = agent.enter();
        let chat = tracing::info_span!(
            "chat",
            otel.name = "chat gpt-4o",
            gen_ai.operation.name = "chat",
            gen_ai.system = "openai",
            gen_ai.request.model = "gpt-4o",
            gen_ai.response.model = tracing::field::Empty,
            gen_ai.usage.input_tokens = 100_u64,
            gen_ai.usage.output_tokens = 20_i64,
            gen_ai.usage.cache_read.input_tokens = 30_u64,
            gen_ai.usage.cache_creation.input_tokens = 4_u64,
            gen_ai.usage.reasoning.output_tokens = 5_u64,
            gen_ai.usage.cost = 0.00125_f64,
            gen_ai.input.messages = r#"[{"role":"user","parts":[{"type":"text","content":"hi"}]}]"#,
            gen_ai.output.messages = tracing::field::Empty,
            gen_ai.request.temperature = 0.5_f64,
            custom.flag = true,
        );
        chat.record("gen_ai.response.model", "gpt-4o-2024-08-06");
        chat.record("gen_ai.output.messages", r#"[{"role":"assistant"}]"#);
        chat.in_scope(|| {});
        tracing::info_span!(
            "rig_chat",
            gen_ai.operation.name = "chat",
            gen_ai.provider.name = "anthropic",
            gen_ai.request.model = "claude",
            gen_ai.usage.reasoning_tokens = 7_u64,
            session.id = "session-2",
        )
        .in_scope(|| {});
        tracing::info_span!(
            "tool",
            gen_ai.operation.name = "execute_tool",
            gen_ai.tool.name = "get_weather",
            gen_ai.tool.call.id = "call_1",
            gen_ai.tool.call.arguments = r#"{"city": "Paris"}"#,
            gen_ai.tool.call.result = "not json: sunny",
        )
        .in_scope(|| {});
        agent.record("gen_ai.completion", "sunny");
    });
    recorder.flush().expect("flush");
    let trace = store.load("aliases").expect("load");
    assert_eq!(trace.name.as_deref(), Some("weather-bot"));
    assert_eq!(
        trace.session_id.as_deref(),
        Some("session-2"),
        "the later session field wins"
    );
    let [agent, chat, rig_chat, tool] = &trace.steps[..] else {
        panic!("expected four steps: {:?}", trace.steps);
    };
    assert_eq!(agent.input, Some(json!("what is the weather?")));
    assert_eq!(agent.output, Some(json!("sunny")));
    assert_eq!(chat.name.as_deref(), Some("chat gpt-4o"));
    assert_eq!(chat.provider.as_deref(), Some("openai"));
    assert_eq!(chat.model.as_deref(), Some("gpt-4o-2024-08-06"));
    assert_eq!(chat.attributes["gen_ai.request.model"], "gpt-4o");
    let usage = chat.usage;
    assert_eq!(
        (
            usage.input_tokens,
            usage.output_tokens,
            usage.cache_read_input_tokens,
            usage.cache_creation_input_tokens,
            usage.reasoning_tokens
        ),
        (100, 20, 30, 4, 5)
    );
    assert_eq!(chat.cost_nano_usd, 1_250_000);
    assert_eq!(
        chat.input,
        Some(json!([{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]))
    );
    assert_eq!(chat.output, Some(json!([{"role": "assistant"}])));
    assert_eq!(chat.attributes["gen_ai.request.temperature"], 0.5);
    assert_eq!(chat.attributes["custom.flag"], true);
    assert_eq!(rig_chat.provider.as_deref(), Some("anthropic"));
    assert_eq!(rig_chat.usage.reasoning_tokens, 7);
    let call = tool.tool.as_ref().expect("tool");
    assert_eq!(
        (call.name.as_str(), call.call_id.as_deref()),
        ("get_weather", Some("call_1"))
    );
    assert_eq!(tool.input, Some(json!({"city": "Paris"})));
    assert_eq!(tool.output, Some(json!("not json: sunny")));
    assert!(trace.steps.iter().all(|s| s.status == Status::Ok));
}

#[test]
fn error_status_and_error_type_mark_steps_failed() {
    let (store, recorder, dispatch) = setup(RecorderOptions::new());
    tracing::dispatcher::with_default(&dispatch, || {
        let root = tracing::info_span!(
            "root",
            gen_ai.operation.name = "invoke_agent",
            otel.status_code = tracing::field::Empty,
            otel.status_message = tracing::field::Empty
        );
        let _root = root.enter();
        tracing::info_span!("chat", gen_ai.operation.name = "chat", error.type = "RateLimitError")
            .in_scope(|| {});
        tracing::info_span!(
            "tool",
            gen_ai.operation.name = "execute_tool",
            otel.status_code = "ERROR",
            otel.status_message = "city not found"
        )
        .in_scope(|| {});
        tracing::info_span!(
            "fine",
            gen_ai.operation.name = "chat",
            otel.status_code = "OK"
        )
        .in_scope(|| {});
        root.record("otel.status_code", "ERROR");
        root.record("otel.status_message", "agent gave up");
    });
    recorder.flush().expect("flush");
    let trace = only_trace(&store);
    assert_eq!(trace.status, Status::Error);
    assert_eq!(
        trace.error.as_ref().map(|e| e.message.as_str()),
        Some("agent gave up")
    );
    let chat = &trace.steps[1];
    assert_eq!(chat.status, Status::Error);
    let error = chat.error.as_ref().expect("error");
    assert_eq!(
        (error.error_type.as_deref(), error.message.as_str()),
        (Some("RateLimitError"), "RateLimitError")
    );
    assert_eq!(
        trace.steps[2].error.as_ref().map(|e| e.message.as_str()),
        Some("city not found")
    );
    assert_eq!(trace.steps[3].status, Status::Ok);
}

#[test]
fn events_stay_on_their_step_and_plain_spans_only_on_the_genai_path() {
    let (store, recorder, dispatch) = setup(RecorderOptions::new());
    tracing::dispatcher::with_default(&dispatch, || {
        let root = tracing::info_span!("request");
        let _root = root.enter();
        tracing::info_span!("parse_headers").in_scope(|| tracing::info!("irrelevant"));
        let handler = tracing::info_span!("handler");
        let _handler = handler.enter();
        tracing::info_span!("chat", gen_ai.operation.name = "chat").in_scope(|| {
            tracing::warn!(retry = 2_u64, "rate limited");
        });
        // A tree with no GenAI span at all is not a run.
        std::thread::spawn(|| {}).join().expect("thread");
    });
    tracing::dispatcher::with_default(&dispatch, || {
        tracing::info_span!("healthcheck").in_scope(|| tracing::info_span!("db").in_scope(|| {}));
    });
    recorder.flush().expect("flush");
    let trace = only_trace(&store);
    let names: Vec<_> = trace
        .steps
        .iter()
        .map(|s| s.name.clone().unwrap_or_default())
        .collect();
    assert_eq!(names, ["request", "handler", "chat"]);
    assert_eq!(trace.steps[2].parent_id, trace.steps[1].id);
    let events = &trace.steps[2].attributes["events"];
    assert_eq!(events[0]["name"], "rate limited");
    assert_eq!(events[0]["fields"], json!({"retry": 2}));
    assert_eq!(events[0]["level"], "WARN");
    assert!(events[0]["time"].is_string());
}

#[test]
fn keep_all_keeps_every_span() {
    let store = Arc::new(MemoryStore::unbounded());
    let recorder = Recorder::spawn(store.clone(), RecorderOptions::new());
    let layer = TraceLayer::new(recorder.clone()).spans(GenAiSpans::KeepAll);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        tracing::info_span!("healthcheck").in_scope(|| tracing::info_span!("db").in_scope(|| {}));
    });
    recorder.flush().expect("flush");
    assert_eq!(only_trace(&store).steps.len(), 2);
}

#[test]
fn spans_entered_on_several_tasks_and_threads_form_one_tree() {
    let (store, recorder, dispatch) = setup(RecorderOptions::new());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .expect("runtime");
    runtime.block_on(
        async {
            let root = tracing::info_span!("agent", trace_store.run_id = "tasks",
                gen_ai.operation.name = "invoke_agent");
            let mut tasks = Vec::new();
            for i in 0..8_u64 {
                let parent = root.clone();
                tasks.push(tokio::spawn(
                    async move {
                        let tool = tracing::info_span!(parent: &parent, "tool",
                            gen_ai.operation.name = "execute_tool", index = i);
                        for _ in 0..3 {
                            let _entered = tool.enter();
                            tracing::info_span!("chat", gen_ai.operation.name = "chat").in_scope(|| {});
                            drop(_entered);
                            tokio::task::yield_now().await;
                        }
                    }
                    .with_current_subscriber(),
                ));
            }
            let on_thread = root.clone();
            let dispatch = tracing::dispatcher::get_default(Clone::clone);
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    tracing::info_span!(parent: &on_thread, "embed", gen_ai.operation.name = "embeddings")
                        .in_scope(|| {});
                });
            })
            .join()
            .expect("thread");
            for task in tasks {
                task.await.expect("task");
            }
        }
        .with_subscriber(dispatch),
    );
    recorder.flush().expect("flush");
    let trace = store.load("tasks").expect("load");
    assert_eq!(trace.steps.len(), 1 + 8 + 8 * 3 + 1);
    let root_id = trace.steps[0].id.clone();
    let tools: Vec<_> = trace
        .steps
        .iter()
        .filter(|s| s.kind == StepKind::ToolCall)
        .collect();
    assert_eq!(tools.len(), 8);
    assert!(tools.iter().all(|t| t.parent_id == root_id));
    for tool in &tools {
        let chats = trace
            .steps
            .iter()
            .filter(|s| s.parent_id == tool.id)
            .count();
        assert_eq!(chats, 3, "each tool span has its own three chats");
    }
    let mut ids: Vec<_> = trace.steps.iter().map(|s| s.id.clone()).collect();
    ids.dedup();
    assert_eq!(ids.len(), trace.steps.len(), "step ids are unique");
}

#[test]
fn a_root_that_never_closes_is_flushed_as_running_in_live_mode() {
    let (store, recorder, dispatch) =
        setup(RecorderOptions::new().with_live_every(Duration::from_millis(5)));
    let root = tracing::dispatcher::with_default(&dispatch, || {
        let root = tracing::info_span!(
            "agent",
            trace_store.run_id = "forever",
            gen_ai.operation.name = "invoke_agent"
        );
        root.in_scope(|| {
            tracing::info_span!(
                "chat",
                gen_ai.operation.name = "chat",
                gen_ai.usage.input_tokens = 9_u64
            )
            .in_scope(|| {});
        });
        root
    });
    let mut seen = None;
    for _ in 0..2_000 {
        if let Ok(trace) = store.load("forever")
            && !trace.steps.is_empty()
        {
            seen = Some(trace);
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let trace = seen.expect("the live run reached the store within 10 s");
    assert_eq!(trace.status, Status::Running);
    assert_eq!(trace.steps[0].usage.input_tokens, 9);
    assert!(recorder.health().written == 0, "only live merges so far");
    drop(root);
}

#[test]
fn ten_thousand_concurrent_runs_do_not_mix_their_steps() {
    let (store, recorder, dispatch) = setup(RecorderOptions::new().with_queue_capacity(20_000));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for run in 0..10_000_u64 {
            tasks.push(tokio::spawn(
                async move {
                    let root = tracing::info_span!("agent", trace_store.run_id = format!("run-{run}"),
                        gen_ai.operation.name = "invoke_agent");
                    for turn in 0..2_u64 {
                        tokio::task::yield_now().await;
                        let _chat = tracing::info_span!(parent: &root, "chat", gen_ai.operation.name = "chat",
                            gen_ai.usage.input_tokens = run, gen_ai.usage.output_tokens = turn).entered();
                    }
                }
                .with_subscriber(dispatch.clone()),
            ));
        }
        for task in tasks {
            task.await.expect("task");
        }
    });
    recorder.flush().expect("flush");
    assert_eq!(recorder.health().dropped, 0);
    assert_eq!(store.count(&TraceFilter::default()).expect("count"), 10_000);
    for run in (0..10_000_u64).step_by(97) {
        let trace = store.load(&format!("run-{run}")).expect("load");
        assert_eq!(trace.steps.len(), 3);
        let turns: Vec<_> = trace.steps[1..]
            .iter()
            .map(|s| (s.usage.input_tokens, s.usage.output_tokens))
            .collect();
        assert_eq!(
            turns,
            [(run, 0), (run, 1)],
            "run {run} got another run's steps"
        );
    }
}

#[test]
fn a_stalled_store_never_blocks_spans_and_drops_are_counted() {
    let stalled = Arc::new(StalledStore::new(MemoryStore::unbounded()));
    let recorder = Recorder::spawn(
        stalled.clone(),
        RecorderOptions::new().with_queue_capacity(64),
    );
    let dispatch =
        Dispatch::new(tracing_subscriber::registry().with(TraceLayer::new(recorder.clone())));
    tracing::dispatcher::with_default(&dispatch, || {
        for _ in 0..10_000 {
            tracing::info_span!(
                "chat",
                gen_ai.operation.name = "chat",
                gen_ai.usage.input_tokens = 1_u64
            )
            .in_scope(|| {});
        }
    });
    let health = recorder.health();
    assert!(health.dropped >= 10_000 - 64 - 512, "{health:?}");
    assert_eq!(health.written, 0);
    stalled.open();
    recorder.flush().expect("flush");
    let health = recorder.health();
    assert_eq!(health.written + health.dropped, 10_000, "{health:?}");
}

#[test]
fn secrets_in_span_fields_never_reach_the_store() {
    let (store, recorder, dispatch) =
        setup(RecorderOptions::new().with_capture(Capture::redact_secrets()));
    tracing::dispatcher::with_default(&dispatch, || {
        let root = tracing::info_span!(
            "agent",
            gen_ai.operation.name = "invoke_agent",
            gen_ai.prompt = "call it with sk-ant-api03-abcdefghijklmnopqrstuv please"
        );
        let _root = root.enter();
        tracing::info_span!(
            "tool",
            gen_ai.operation.name = "execute_tool",
            gen_ai.tool.name = "fetch",
            gen_ai.tool.call.arguments = r#"{"url": "https://x", "api_key": "live-key-987"}"#,
            api_key = "attr-key-654"
        )
        .in_scope(|| {});
    });
    recorder.flush().expect("flush");
    let stored = serde_json::to_string(&only_trace(&store)).expect("json");
    for secret in ["sk-ant-api03", "live-key-987", "attr-key-654"] {
        assert!(
            !stored.contains(secret),
            "{secret} reached the store: {stored}"
        );
    }
    assert!(
        stored.contains("https://x") && stored.contains("please"),
        "{stored}"
    );
}

#[test]
fn metadata_only_stores_no_span_content() {
    let (store, recorder, dispatch) =
        setup(RecorderOptions::new().with_capture(Capture::MetadataOnly));
    tracing::dispatcher::with_default(&dispatch, || {
        tracing::info_span!(
            "chat",
            gen_ai.operation.name = "chat",
            gen_ai.request.model = "m",
            gen_ai.input.messages = "[1]",
            gen_ai.output.messages = "[2]",
            gen_ai.system_instructions = "be secret"
        )
        .in_scope(|| {});
    });
    recorder.flush().expect("flush");
    let step = &only_trace(&store).steps[0];
    assert_eq!((&step.input, &step.output), (&None, &None));
    assert!(!step.attributes.contains_key("gen_ai.system_instructions"));
    assert_eq!(step.model.as_deref(), Some("m"));
}

#[test]
fn a_root_stays_open_until_the_spans_that_outlive_it_close() {
    let (store, recorder, dispatch) = setup(RecorderOptions::new());
    let detached = tracing::dispatcher::with_default(&dispatch, || {
        let root = tracing::info_span!(
            "agent",
            trace_store.run_id = "detached",
            gen_ai.operation.name = "invoke_agent"
        );
        root.in_scope(|| tracing::info_span!("background", gen_ai.operation.name = "execute_tool"))
    });
    // The registry keeps a parent open while a child lives, so nothing is recorded yet.
    recorder.flush().expect("flush");
    assert!(store.load("detached").is_err());
    // Inside the dispatcher: the registry closes the parent through the default one.
    tracing::dispatcher::with_default(&dispatch, || drop(detached));
    recorder.flush().expect("flush");
    let trace = store.load("detached").expect("load");
    assert_eq!(trace.steps.len(), 2);
    assert_eq!(trace.steps[1].parent_id, trace.steps[0].id);
    assert_eq!(trace.steps[1].kind, StepKind::ToolCall);
}

#[test]
fn live_updates_of_spans_are_redacted_too() {
    let (store, _recorder, dispatch) = setup(
        RecorderOptions::new()
            .with_live_every(Duration::from_millis(5))
            .with_capture(Capture::redact_secrets()),
    );
    let root = tracing::dispatcher::with_default(&dispatch, || {
        let root = tracing::info_span!(
            "agent",
            trace_store.run_id = "live-secret",
            gen_ai.operation.name = "invoke_agent"
        );
        root.in_scope(|| {
            tracing::info_span!(
                "chat",
                gen_ai.operation.name = "chat",
                gen_ai.prompt = "use sk-proj-0123456789abcdefghijXYZ",
                password = "hunter2"
            )
            .in_scope(|| {});
        });
        root
    });
    let mut seen = None;
    for _ in 0..2_000 {
        if let Ok(trace) = store.load("live-secret")
            && !trace.steps.is_empty()
        {
            seen = Some(trace);
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let trace = seen.expect("the live run reached the store within 10 s");
    assert_eq!(trace.status, Status::Running);
    let stored = serde_json::to_string(&trace).expect("json");
    assert!(
        !stored.contains("sk-proj") && !stored.contains("hunter2"),
        "{stored}"
    );
    assert!(stored.contains("use [REDACTED]"), "{stored}");
    drop(root);
}
