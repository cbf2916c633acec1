"""Optional OpenTelemetry spans and metrics, following the GenAI semantic conventions.

Only a router built with `telemetry=True` (or a tracer or meter provider) imports this module, and only then
`opentelemetry` (the `otel` extra: `pip install './[otel]'`); `import cortex_client` imports neither. One span per
request (`chat <model>`, `embeddings <model>`), recorded when it ends with its real start time, so streams and
fallbacks need no wrapping: provider, models, token usage, finish reason, cost, the number of upstream attempts
and why the first failed (the fallback reason); `error.type` when every provider failed. Metrics: the
`gen_ai.client.token.usage` and `gen_ai.client.operation.duration` histograms.
"""

from __future__ import annotations

import time
from typing import Any

from ._types import Attempt, LLMProvider

# gen_ai.provider.name: the convention's well-known values where there is one.
PROVIDER_NAMES = {
    LLMProvider.OLLAMA: "ollama",
    LLMProvider.CLAUDE: "anthropic",
    LLMProvider.KIMI_K2: "moonshot",
    LLMProvider.OPENAI: "openai",
}


class Telemetry:
    def __init__(self, tracer_provider: Any = None, meter_provider: Any = None) -> None:
        from opentelemetry import metrics, trace  # noqa: PLC0415 - the optional extra, only when asked for

        from . import __version__  # noqa: PLC0415

        self._trace = trace
        self.tracer = (tracer_provider or trace.get_tracer_provider()).get_tracer("cortex_client", __version__)
        meter = (meter_provider or metrics.get_meter_provider()).get_meter("cortex_client", __version__)
        self.tokens = meter.create_histogram(
            "gen_ai.client.token.usage", unit="{token}", description="Tokens used per request, by type"
        )
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration", unit="s", description="Duration of a request, fallbacks included"
        )

    def record(
        self,
        *,
        operation: str,
        began: float,
        provider: LLMProvider | None,
        request_model: str,
        attempts: list[Attempt],
        response_model: str | None = None,
        input_tokens: int = 0,
        output_tokens: int | None = None,
        finish_reason: str | None = None,
        cost_usd: float = 0.0,
        error: BaseException | None = None,
    ) -> None:
        seconds = time.monotonic() - began
        end_ns = time.time_ns()
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "gen_ai.request.model": request_model,
            "cortex.attempts": len(attempts),
            "cortex.cost_usd": cost_usd,
        }
        if provider is not None:
            attributes["gen_ai.provider.name"] = PROVIDER_NAMES[provider]
        if response_model:
            attributes["gen_ai.response.model"] = response_model
        if error is None:
            attributes["gen_ai.usage.input_tokens"] = input_tokens
            if output_tokens is not None:
                attributes["gen_ai.usage.output_tokens"] = output_tokens
        if finish_reason:
            attributes["gen_ai.response.finish_reasons"] = [finish_reason]
        failed = [a for a in attempts if a.outcome != "ok"]
        if failed:
            attributes["cortex.fallback_reason"] = f"{failed[0].provider.value}: {failed[0].outcome}"
        if error is not None:
            attributes["error.type"] = type(error).__name__
        span = self.tracer.start_span(
            f"{operation} {request_model}",
            kind=self._trace.SpanKind.CLIENT,
            start_time=end_ns - int(seconds * 1e9),
            attributes=attributes,
        )
        if error is not None:
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, str(error).splitlines()[0]))
        span.end(end_time=end_ns)
        common = {k: v for k, v in attributes.items() if k.startswith("gen_ai.") and not k.startswith("gen_ai.usage")}
        common.pop("gen_ai.response.finish_reasons", None)
        if error is not None:
            common["error.type"] = type(error).__name__
        self.duration.record(seconds, common)
        if error is None:
            self.tokens.record(input_tokens, {**common, "gen_ai.token.type": "input"})
            if output_tokens is not None:
                self.tokens.record(output_tokens, {**common, "gen_ai.token.type": "output"})
