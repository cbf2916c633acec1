"""Issue 26, item 8: optional OpenTelemetry spans and metrics following the GenAI semantic conventions; nothing of
OpenTelemetry is imported when it is off. Requests go to real loopback fakes; spans and metrics to the SDK's
in-memory exporter and reader."""

from __future__ import annotations

import subprocess
import sys

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cortex_client import AllProvidersFailed
from tests.support.fakes import Reply

from .conftest import cloud_router_kwargs

ASK = [{"role": "user", "content": "hi"}]


@pytest.fixture
def otel():
    exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter, reader, {"tracer_provider": tracer_provider, "meter_provider": MeterProvider([reader])}


def metric_points(reader):
    data = reader.get_metrics_data()
    return {
        m.name: list(m.data.data_points) for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
    }


def test_a_fallback_is_one_span_with_the_genai_attributes(make_router, otel, ollama, anthropic_fake, request):
    exporter, reader, providers = otel
    ollama.default = Reply.fail(503)
    kimi_fake, openai_fake = request.getfixturevalue("kimi_fake"), request.getfixturevalue("openai_fake")
    router = make_router(
        **cloud_router_kwargs(anthropic_fake, kimi_fake, openai_fake),
        ollama_base_url=ollama.url,
        default_provider="ollama",
        **providers,
    )
    response = router.complete(ASK)
    (span,) = exporter.get_finished_spans()
    attributes = dict(span.attributes)
    assert span.name == "chat claude-sonnet-4-6"  # the model of the provider that answered
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.provider.name"] == "anthropic"  # who answered
    assert attributes["gen_ai.usage.input_tokens"] == response.input_tokens
    assert attributes["gen_ai.usage.output_tokens"] == response.output_tokens
    assert attributes["cortex.attempts"] == len(response.attempts) > 1
    assert attributes["cortex.fallback_reason"] == "ollama: server"
    assert attributes["cortex.cost_usd"] == pytest.approx(response.cost_usd)
    points = metric_points(reader)
    types = {p.attributes["gen_ai.token.type"]: p.sum for p in points["gen_ai.client.token.usage"]}
    assert types == {"input": response.input_tokens, "output": response.output_tokens}
    assert points["gen_ai.client.operation.duration"][0].count == 1


def test_a_request_every_provider_failed_is_an_error_span(make_router, otel, ollama):
    exporter, _, providers = otel
    ollama.default = Reply.fail(503)
    router = make_router(ollama_base_url=ollama.url, default_provider="ollama", **providers)
    with pytest.raises(AllProvidersFailed):
        router.complete(ASK)
    (span,) = exporter.get_finished_spans()
    assert span.attributes["error.type"] == "AllProvidersFailed"
    assert span.status.status_code.name == "ERROR"


def test_streams_and_embeddings_are_spans_too(make_router, otel, ollama):
    exporter, _, providers = otel
    router = make_router(ollama_base_url=ollama.url, default_provider="ollama", **providers)
    list(router.stream(ASK))
    router.embed(["nginx"])
    assert [s.name for s in exporter.get_finished_spans()] == ["chat llama3.2", "embeddings nomic-embed-text"]


def test_off_by_default_and_never_imported():
    code = (
        "import sys, cortex_client\n"
        "cortex_client.LLMRouter(ollama_base_url='http://127.0.0.1:9')\n"
        "print(any(m.startswith('opentelemetry') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False"
