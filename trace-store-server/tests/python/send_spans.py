"""Sends one agent run as nested GenAI spans to an OTLP/HTTP endpoint.

Usage: python send_spans.py ENDPOINT   (e.g. http://127.0.0.1:4318/v1/traces)
Prints the trace id (32 hex digits) once every span is exported.
"""

import sys

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor


def main(endpoint: str) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "python-agent"}))
    # One export per ended span: children reach the server before their parents.
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    tracer = provider.get_tracer("otel-python-test")
    with tracer.start_as_current_span("invoke_agent researcher") as root:
        root.set_attribute("gen_ai.operation.name", "invoke_agent")
        root.set_attribute("gen_ai.agent.name", "researcher")
        root.set_attribute("gen_ai.conversation.id", "conv-7")
        trace_id = format(root.get_span_context().trace_id, "032x")
        with tracer.start_as_current_span("chat gpt-4o") as chat:
            chat.set_attribute("gen_ai.operation.name", "chat")
            chat.set_attribute("gen_ai.provider.name", "openai")
            chat.set_attribute("gen_ai.request.model", "gpt-4o")
            chat.set_attribute("gen_ai.usage.input_tokens", 120)
            chat.set_attribute("gen_ai.usage.output_tokens", 30)
            with tracer.start_as_current_span("execute_tool web_search") as tool:
                tool.set_attribute("gen_ai.operation.name", "execute_tool")
                tool.set_attribute("gen_ai.tool.name", "web_search")
                tool.set_attribute("gen_ai.tool.call.id", "call_1")
        with tracer.start_as_current_span("chat gpt-4o-mini") as chat:
            chat.set_attribute("gen_ai.operation.name", "chat")
            chat.set_attribute("gen_ai.provider.name", "openai")
            chat.set_attribute("gen_ai.request.model", "gpt-4o-mini")
            chat.set_attribute("gen_ai.usage.input_tokens", 80)
            chat.set_attribute("gen_ai.usage.output_tokens", 12)
    if not provider.force_flush():
        sys.exit("flush failed")
    provider.shutdown()
    print(trace_id)


if __name__ == "__main__":
    main(sys.argv[1])
