//! An async agent with a model call, a tool call and a nested step, recorded through
//! `TraceLayer` into `traces.db`. Then: `trace-store show <printed run id>`.

use std::sync::Arc;
use std::time::Duration;

use trace_store_recorder::{ModelPrice, Pricing, Recorder, RecorderOptions, TraceLayer};
use trace_store_sqlite::SqliteStore;
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

/// Stands in for a provider call: a real agent framework emits this span itself.
async fn call_model(prompt: &str) -> String {
    let span = tracing::info_span!(
        "chat",
        gen_ai.operation.name = "chat",
        gen_ai.provider.name = "openai",
        gen_ai.request.model = "gpt-4o-mini",
        gen_ai.input.messages = format!(r#"[{{"role":"user","content":"{prompt}"}}]"#),
        gen_ai.usage.input_tokens = tracing::field::Empty,
        gen_ai.usage.output_tokens = tracing::field::Empty,
    );
    async {
        tokio::time::sleep(Duration::from_millis(30)).await;
        let current = tracing::Span::current();
        current.record("gen_ai.usage.input_tokens", 412_u64);
        current.record("gen_ai.usage.output_tokens", 38_u64);
        "call get_weather(Paris)".to_owned()
    }
    .instrument(span)
    .await
}

async fn get_weather(city: &str) -> String {
    let span = tracing::info_span!(
        "execute_tool",
        gen_ai.operation.name = "execute_tool",
        gen_ai.tool.name = "get_weather",
        gen_ai.tool.call.id = "call_1",
        gen_ai.tool.call.arguments = format!(r#"{{"city":"{city}"}}"#),
        gen_ai.tool.call.result = tracing::field::Empty,
    );
    async {
        // A nested step inside the tool: kept because it lies on the GenAI path.
        let lookup = tracing::info_span!("geocode", city, gen_ai.operation.name = "retrieval");
        async { tokio::time::sleep(Duration::from_millis(10)).await }
            .instrument(lookup)
            .await;
        tracing::Span::current().record("gen_ai.tool.call.result", "sunny, 21 C");
        "sunny, 21 C".to_owned()
    }
    .instrument(span)
    .await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = Arc::new(SqliteStore::open("traces.db")?);
    let pricing =
        Pricing::new().with_model("gpt-4o-mini", ModelPrice::new(150_000_000, 600_000_000));
    let recorder = Recorder::spawn(store, RecorderOptions::new().with_pricing(pricing));
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(TraceLayer::new(recorder.clone())),
    )?;

    let run_id = uuid_like_run_id();
    let agent = tracing::info_span!(
        "weather_agent",
        trace_store.run_id = run_id.as_str(),
        gen_ai.operation.name = "invoke_agent",
        gen_ai.agent.name = "weather",
    );
    async {
        let plan = call_model("What is the weather in Paris?").await;
        tracing::info!(plan = plan.as_str(), "model answered");
        let weather = get_weather("Paris").await;
        call_model(&format!("The tool said: {weather}")).await;
    }
    .instrument(agent)
    .await;

    recorder.flush()?;
    println!("{run_id}");
    eprintln!("recorded into traces.db; look at it with: trace-store show {run_id}");
    Ok(())
}

/// A run id that is unique per invocation and sorts by time.
fn uuid_like_run_id() -> String {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_micros())
        .unwrap_or_default();
    format!("agent-{micros}")
}
