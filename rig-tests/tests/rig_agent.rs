//! A real rig agent with one tool, against a local mock of the OpenAI chat-completions
//! API, recorded through `TraceLayer` into a SQLite file.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Json;
use axum::extract::State;
use axum::routing::post;
use rig_core::client::CompletionClient;
use rig_core::completion::{Prompt, ToolDefinition};
use rig_core::providers::openai;
use rig_core::tool::Tool;
use serde::Deserialize;
use serde_json::{Value, json};
use std::future::IntoFuture;
use trace_store_core::{Status, StepKind, TraceFilter, TraceStore};
use trace_store_recorder::{ModelPrice, Pricing, Recorder, RecorderOptions, TraceLayer};
use trace_store_sqlite::SqliteStore;

use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

const MODEL: &str = "gpt-4o-mini";
const RESPONSE_MODEL: &str = "gpt-4o-mini-2024-07-18";
/// The mock's usage per turn: (prompt_tokens, completion_tokens).
const TURNS: [(u64, u64); 2] = [(57, 14), (93, 11)];

/// The canned answers: first a tool call, then the final text.
async fn chat_completions(
    State(calls): State<Arc<AtomicUsize>>,
    Json(_body): Json<Value>,
) -> Json<Value> {
    let turn = calls.fetch_add(1, Ordering::SeqCst);
    let (prompt_tokens, completion_tokens) = TURNS[turn.min(1)];
    let message = if turn == 0 {
        json!({"role": "assistant", "content": null, "tool_calls": [{
            "id": "call_weather_1", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}
        }]})
    } else {
        json!({"role": "assistant", "content": "It is sunny in Paris."})
    };
    Json(json!({
        "id": format!("chatcmpl-{turn}"), "object": "chat.completion", "created": 1_700_000_000,
        "model": RESPONSE_MODEL,
        "choices": [{"index": 0, "message": message,
                     "finish_reason": if turn == 0 { "tool_calls" } else { "stop" }}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens}
    }))
}

#[derive(Deserialize)]
struct WeatherArgs {
    city: String,
}

/// The tool cannot fail.
#[derive(Debug)]
enum Never {}

impl std::fmt::Display for Never {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {}
    }
}
impl std::error::Error for Never {}

struct GetWeather;

impl Tool for GetWeather {
    const NAME: &'static str = "get_weather";
    type Error = Never;
    type Args = WeatherArgs;
    type Output = String;

    fn description(&self) -> String {
        "The current weather in a city".to_owned()
    }

    fn parameters(&self) -> Value {
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
    }

    async fn call(&self, args: Self::Args) -> Result<String, Never> {
        Ok(format!("sunny in {}", args.city))
    }
}

#[allow(dead_code)]
fn _definition_type_is_used(_: ToolDefinition) {}

#[tokio::test(flavor = "current_thread")]
async fn a_rig_agent_run_is_recorded_as_its_span_tree() {
    let calls = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .with_state(calls.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("traces.db");
    // $0.15 / $0.60 per million tokens.
    let pricing = Pricing::new().with_model(MODEL, ModelPrice::new(150_000_000, 600_000_000));
    let recorder = Recorder::spawn(
        Arc::new(SqliteStore::open(&path).expect("open SQLite")),
        RecorderOptions::new().with_pricing(pricing.clone()),
    );
    let subscriber = tracing_subscriber::registry().with(TraceLayer::new(recorder.clone()));
    let _default = tracing::subscriber::set_default(subscriber);

    let client = openai::CompletionsClient::builder()
        .api_key("test-key")
        .base_url(format!("http://{address}/v1"))
        .build()
        .expect("client");
    let agent = client
        .agent(MODEL)
        .preamble("You report the weather.")
        .tool(GetWeather)
        .build();
    // rig 0.40's blocking driver keeps its own invoke_agent span detached and opens the
    // chat and tool spans under the caller's span, so the run is the caller's root span.
    let run_span = tracing::info_span!(
        "weather_agent",
        trace_store.run_id = "rig-run-1",
        gen_ai.operation.name = "invoke_agent",
        gen_ai.agent.name = "weather",
    );
    let answer = agent
        .prompt("What is the weather in Paris?")
        .max_turns(3)
        .into_future()
        .instrument(run_span)
        .await
        .expect("agent run");
    assert_eq!(answer, "It is sunny in Paris.");
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    recorder.flush().expect("flush");
    server.abort();
    // Read back through a fresh handle on the file, as `trace-store show` would.
    let store = SqliteStore::open(&path).expect("reopen SQLite");
    let runs = store.query(&TraceFilter::default()).expect("query");
    assert_eq!(runs.len(), 1, "one agent run: {runs:?}");
    let trace = store.load(&runs[0].run_id).expect("load");
    let tree: Vec<_> = trace
        .steps
        .iter()
        .map(|s| {
            (
                s.kind.clone(),
                s.name.clone().unwrap_or_default(),
                s.parent_id.clone(),
            )
        })
        .collect();

    assert_eq!(trace.run_id, "rig-run-1");
    assert_eq!(trace.name.as_deref(), Some("weather"));
    assert_eq!(trace.status, Status::Ok);
    let [agent_step, chat1, tool, chat2] = &trace.steps[..] else {
        panic!("expected agent -> chat, execute_tool, chat: {tree:?}");
    };
    // The two chat turns and the tool call between them are siblings under the run's
    // span (rig links them by follows_from, not by nesting).
    assert_eq!(
        (agent_step.kind.clone(), agent_step.parent_id.clone()),
        (StepKind::Agent, None)
    );
    for (step, kind) in [
        (chat1, StepKind::LlmCall),
        (tool, StepKind::ToolCall),
        (chat2, StepKind::LlmCall),
    ] {
        assert_eq!(step.kind, kind, "{tree:?}");
        assert_eq!(step.parent_id, agent_step.id, "{tree:?}");
        assert_eq!(step.status, Status::Ok);
    }
    for (chat, (input, output)) in [chat1, chat2].into_iter().zip(TURNS) {
        assert_eq!(chat.model.as_deref(), Some(RESPONSE_MODEL));
        // rig 0.40 declares gen_ai.provider.name on agent chat spans but leaves it empty.
        assert_eq!(chat.provider, None);
        assert_eq!(
            (chat.usage.input_tokens, chat.usage.output_tokens),
            (input, output)
        );
        let expected_cost = pricing
            .price(MODEL)
            .expect("priced")
            .cost_nano_usd(&chat.usage);
        assert_eq!(expected_cost, (input * 150 + output * 600) as i64);
        assert_eq!(chat.cost_nano_usd, expected_cost);
        assert_eq!(chat.attributes["cost.source"], "computed");
    }
    let call = tool.tool.as_ref().expect("tool call");
    assert_eq!(
        (call.name.as_str(), call.call_id.as_deref()),
        ("get_weather", Some("call_weather_1"))
    );
    assert_eq!(tool.input, Some(json!({"city": "Paris"})));
    assert_eq!(tool.output, Some(json!("sunny in Paris")));
    let summary = &runs[0];
    assert_eq!(summary.input_tokens, TURNS[0].0 + TURNS[1].0);
    assert_eq!(summary.output_tokens, TURNS[0].1 + TURNS[1].1);
}
