//! A real Rust OpenTelemetry pipeline (`tracing` + `tracing-opentelemetry` +
//! `opentelemetry-otlp`'s HTTP exporter) sends GenAI spans to the server, in protobuf
//! and in JSON; the trace is checked through `/api/`.

mod common;

use common::{TestServer, check_agent_trace, segment};
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

/// An agent run as a GenAI-instrumented Rust agent would trace it; returns the trace
/// id. Each span is exported as it ends (children before parents, one request each).
fn run_agent(endpoint: &str, protocol: Protocol) -> String {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(protocol)
        .with_endpoint(endpoint)
        .build()
        .expect("exporter");
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter)
        .with_resource(Resource::builder().with_service_name("rust-agent").build())
        .build();
    let tracer = provider.tracer("otel-rust-test");
    let subscriber =
        tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(tracer));
    let trace_id = tracing::subscriber::with_default(subscriber, || {
        let root = tracing::info_span!(
            "agent",
            otel.name = "invoke_agent researcher",
            gen_ai.operation.name = "invoke_agent",
            gen_ai.agent.name = "researcher",
            gen_ai.conversation.id = "conv-7",
        );
        let trace_id = root.context().span().span_context().trace_id().to_string();
        let _root = root.enter();
        {
            let chat = tracing::info_span!(
                "chat",
                otel.name = "chat gpt-4o",
                gen_ai.operation.name = "chat",
                gen_ai.provider.name = "openai",
                gen_ai.request.model = "gpt-4o",
                gen_ai.usage.input_tokens = 120i64,
                gen_ai.usage.output_tokens = 30i64,
            );
            let _chat = chat.enter();
            let tool = tracing::info_span!(
                "tool",
                otel.name = "execute_tool web_search",
                gen_ai.operation.name = "execute_tool",
                gen_ai.tool.name = "web_search",
                gen_ai.tool.call.id = "call_1",
            );
            let _tool = tool.enter();
        }
        {
            let chat = tracing::info_span!(
                "chat",
                otel.name = "chat gpt-4o-mini",
                gen_ai.operation.name = "chat",
                gen_ai.provider.name = "openai",
                gen_ai.request.model = "gpt-4o-mini",
                gen_ai.usage.input_tokens = 80i64,
                gen_ai.usage.output_tokens = 12i64,
            );
            let _chat = chat.enter();
        }
        trace_id
    });
    provider.force_flush().expect("flush");
    provider.shutdown().expect("shutdown");
    trace_id
}

fn check(protocol: Protocol) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut server = runtime.block_on(TestServer::start());
    let trace_id = run_agent(&server.url("/v1/traces"), protocol);
    assert_eq!(trace_id.len(), 32);
    let (status, body) =
        runtime.block_on(server.get(&format!("/api/traces/{}", segment(&trace_id))));
    assert_eq!(status, 200, "{body}");
    check_agent_trace(&body);
    let (_, list) = runtime.block_on(server.get("/api/traces"));
    assert_eq!(
        list["traces"].as_array().unwrap().len(),
        1,
        "one trace: {list}"
    );
    runtime.block_on(server.stop()).unwrap();
}

#[test]
fn rust_otlp_exporter_protobuf() {
    check(Protocol::HttpBinary);
}

#[test]
fn rust_otlp_exporter_json() {
    check(Protocol::HttpJson);
}
