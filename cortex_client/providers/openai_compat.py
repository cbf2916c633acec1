"""OpenAI chat completions through the openai SDK; Kimi K2 is the same wire format at Moonshot.

The SDK is imported on first use. Its own retries are off (`max_retries=0`): the router owns retries,
so upstream calls per request stay bounded and countable.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

from .. import _defaults
from .._errors import ErrorKind
from .._pool import Endpoint
from .._structured import Structure, response_format
from .._types import Embeddings, LLMProvider, LLMResponse, ToolCall
from ._base import ChatRequest, Reasoning, ToolCallDeltas, estimate_tokens, sdk_transport_errors
from ._sdk import SDKProvider, sdk_http_client

OPENAI_HOSTS = ("api.openai.com",)


def is_openai_host(url: str) -> bool:
    from urllib.parse import urlsplit  # noqa: PLC0415

    return (urlsplit(url).hostname or "") in OPENAI_HOSTS


logger = logging.getLogger("cortex_client")


class OpenAIProvider(SDKProvider):
    kind = LLMProvider.OPENAI
    include_stream_usage = True  # `stream_options.include_usage`: usage in a last, choice-less chunk

    def _create(self, client: Any) -> Callable[..., Any]:
        return client.chat.completions.create  # type: ignore[no-any-return]

    def _make_client(self, asynchronous: bool, endpoint: Endpoint) -> Any:
        import openai  # noqa: PLC0415 - a 1-3 s import; only when this provider is used

        cls = openai.AsyncOpenAI if asynchronous else openai.OpenAI
        timeout = openai.Timeout(self.timeouts.cloud_read, connect=self.timeouts.cloud_connect)
        client = cls(
            api_key=endpoint.credential,
            base_url=endpoint.url,
            max_retries=0,
            timeout=timeout,
            http_client=sdk_http_client(openai, asynchronous),
        )
        if not is_openai_host(endpoint.url):
            # The SDK reads OPENAI_ORG_ID / OPENAI_PROJECT_ID from the environment into headers of every request;
            # they identify an OpenAI account and are nobody else's business (Moonshot, a gateway, a local server).
            client.organization = client.project = None
        return client

    # --- request ----------------------------------------------------------------------------------------
    def _temperature(self, value: float) -> float:
        return value

    def _reasoning_model(self) -> bool:
        model = self.model.lower()
        return model.startswith(_defaults.REASONING_MODEL_PREFIXES) and not model.startswith(
            _defaults.NON_REASONING_MODEL_PREFIXES
        )

    def _params(self, request: ChatRequest, budget: float, stream: bool) -> dict[str, Any]:
        params: dict[str, Any] = {"model": self.model, "messages": request.messages}
        if self._reasoning_model():
            # and no temperature: only the default is allowed
            params["max_completion_tokens"] = self.max_tokens(request)
        else:
            params["temperature"] = self._temperature(request.temperature)
            params["max_tokens"] = self.max_tokens(request)
        if request.structure is not None:
            self._structure(params, request.structure)
        if isinstance(request.think, str) and self._reasoning_model():
            params["reasoning_effort"] = request.think  # OpenAI's reasoning models: low, medium, high
        if request.tools:
            params["tools"] = request.tools
            if request.tool_choice is not None:
                params["tool_choice"] = request.tool_choice
        if stream:
            params["stream"] = True
            if self.include_stream_usage:
                params["stream_options"] = {"include_usage": True}
        if budget < self.timeouts.cloud_read:  # the request deadline is nearer than the read timeout
            params["timeout"] = max(budget, 0.001)
        return params

    def _structure(self, params: dict[str, Any], structure: Structure) -> None:
        """Structured output: OpenAI's json_schema response format (the schema constrains the generation)."""
        params["response_format"] = response_format(structure)

    # --- embeddings ---------------------------------------------------------------------------------------
    supports_embeddings = True

    def _embed_params(self, texts: list[str], model: str, budget: float) -> dict[str, Any]:
        params: dict[str, Any] = {"model": model, "input": texts}
        if budget < self.timeouts.cloud_read:
            params["timeout"] = max(budget, 0.001)
        return params

    def embed(self, texts: list[str], model: str, endpoint: Endpoint, budget: float) -> Embeddings:
        client = self._sync_client(endpoint)
        try:
            answer = client.embeddings.create(**self._embed_params(texts, model, budget))
        except self._call_errors() as exc:
            raise self._error(exc, endpoint) from exc
        return self._embeddings(answer, texts, model, endpoint)

    async def aembed(self, texts: list[str], model: str, endpoint: Endpoint, budget: float) -> Embeddings:
        client = await self._async_client(endpoint)
        try:
            answer = await client.embeddings.create(**self._embed_params(texts, model, budget))
        except self._call_errors() as exc:
            raise self._error(exc, endpoint) from exc
        return self._embeddings(answer, texts, model, endpoint)

    def _embeddings(self, answer: Any, texts: list[str], model: str, endpoint: Endpoint) -> Embeddings:
        items = sorted(getattr(answer, "data", None) or (), key=lambda i: getattr(i, "index", 0) or 0)
        vectors = self.embeddings_of([getattr(i, "embedding", None) for i in items], len(texts), endpoint)
        tokens = getattr(getattr(answer, "usage", None), "prompt_tokens", None)
        used = int(tokens) if isinstance(tokens, int) else sum(len(t) for t in texts) // 4
        return Embeddings(vectors, self.kind, str(getattr(answer, "model", None) or model), used)

    def _sdk_errors(self) -> tuple[type[Exception], ...]:
        import openai  # noqa: PLC0415 - loaded by the client already

        return (openai.OpenAIError, OSError, *sdk_transport_errors())

    # --- results ----------------------------------------------------------------------------------------
    def _stream_state(self, endpoint: Endpoint, request: ChatRequest) -> _StreamState:
        return _StreamState(self, endpoint, request)

    def _response(self, completion: Any, request: ChatRequest) -> LLMResponse:
        choice = completion.choices[0] if completion.choices else None
        message = choice.message if choice else None
        content = (message.content if message else None) or ""
        usage = completion.usage
        prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
        output = int(getattr(usage, "completion_tokens", 0) or 0)
        if usage is None:
            prompt, output = estimate_tokens(request.messages), (len(content) + 3) // 4
        calls = [
            ToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments or "")
            for c in (getattr(message, "tool_calls", None) or ())
            if getattr(c, "function", None) is not None
        ]
        return LLMResponse(
            content=content,
            provider=self.kind,
            model=completion.model or self.model,
            tokens_used=prompt + output,
            cost_usd=0.0,
            latency_seconds=0.0,
            raw_response=completion.model_dump(),
            input_tokens=prompt,
            output_tokens=output,
            tool_calls=calls,
            finish_reason=choice.finish_reason if choice else None,
            usage_estimated=usage is None,
            reasoning=str(getattr(message, "reasoning_content", None) or ""),  # Kimi K2 (thinking models)
        )


class KimiProvider(OpenAIProvider):
    """Moonshot's OpenAI-compatible API. Temperature range is [0, 1] there; the original's `* 0.6`
    rescale belongs to Moonshot's Anthropic-compatible endpoint only, so it is not applied."""

    kind = LLMProvider.KIMI_K2
    include_stream_usage = False  # Moonshot reports usage on the last choice instead

    def _temperature(self, value: float) -> float:
        return min(max(value, 0.0), 1.0)

    supports_embeddings = False  # Moonshot has no embeddings API

    def _reasoning_model(self) -> bool:
        return False  # Moonshot's API takes max_tokens and temperature for every model

    def _structure(self, params: dict[str, Any], structure: Structure) -> None:
        """Moonshot's JSON mode (`json_object`; it documents no json_schema format), with the schema stated in a
        system message; the router validates the answer either way."""
        params["response_format"] = {"type": "json_object"}
        schema = json.dumps(structure.schema, separators=(",", ":"))
        note = {"role": "system", "content": f"Answer with one JSON object that matches this JSON schema: {schema}"}
        params["messages"] = [note, *params["messages"]]


class _StreamState:
    """Collects a chat-completions SSE stream: text deltas out, tool-call fragments and usage kept."""

    def __init__(self, provider: OpenAIProvider, endpoint: Endpoint, request: ChatRequest) -> None:
        self.provider = provider
        self.endpoint = endpoint
        self.request = request
        self.parts: list[str] = []
        self.reasoning: list[str] = []
        self.calls = ToolCallDeltas()
        self.deltas = 0  # text and tool-call deltas: about one token each, the estimate when no usage comes
        self.finish_reason: str | None = None
        self.model = provider.model
        self.usage: Any = None

    def feed(self, chunk: Any) -> Iterator[str]:
        self.model = getattr(chunk, "model", None) or self.model
        if getattr(chunk, "usage", None):
            self.usage = chunk.usage
        for choice in chunk.choices or ():
            usage = getattr(choice, "usage", None)  # Moonshot puts usage on the final choice
            if usage:
                self.usage = _Usage(usage) if isinstance(usage, dict) else usage
            if choice.finish_reason:
                self.finish_reason = choice.finish_reason
            delta = choice.delta
            if delta is None:
                continue
            if delta.content or getattr(delta, "tool_calls", None):
                self.deltas += 1
            reasoning = getattr(delta, "reasoning_content", None)
            if isinstance(reasoning, str) and reasoning:
                self.reasoning.append(reasoning)
                yield Reasoning(reasoning)
            for call in getattr(delta, "tool_calls", None) or ():
                function = call.function
                self.calls.add(
                    call.index or 0,
                    call.id,
                    function.name if function is not None else None,
                    function.arguments if function is not None else None,
                )
            if delta.content:
                self.parts.append(delta.content)
                yield delta.content

    def finish(self) -> LLMResponse:
        if self.finish_reason is None:
            raise self.provider.error("stream ended before a finish_reason", ErrorKind.STREAM, self.endpoint)
        prompt = int(getattr(self.usage, "prompt_tokens", 0) or 0)
        output = int(getattr(self.usage, "completion_tokens", 0) or 0)
        if self.usage is None:
            # Some OpenAI-compatible servers (llama.cpp, vLLM, gateways) ignore include_usage. Servers
            # send about one token per delta, so count deltas rather than report a free answer.
            prompt, output = estimate_tokens(self.request.messages), self.deltas
            logger.debug("%s sent no usage; token counts estimated", self.provider.kind.value)
        calls = self.calls.calls()
        return LLMResponse(
            content="".join(self.parts),
            provider=self.provider.kind,
            model=self.model,
            tokens_used=prompt + output,
            cost_usd=0.0,
            latency_seconds=0.0,
            input_tokens=prompt,
            output_tokens=output,
            tool_calls=calls,
            finish_reason=self.finish_reason,
            usage_estimated=self.usage is None,
            reasoning="".join(self.reasoning),
        )


class _Usage:
    def __init__(self, data: dict[str, Any]) -> None:
        self.prompt_tokens = data.get("prompt_tokens", 0)
        self.completion_tokens = data.get("completion_tokens", 0)
