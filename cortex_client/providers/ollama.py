"""Ollama over its native HTTP API (`/api/chat`, NDJSON streaming), spoken directly with httpx.

Native rather than `/v1` because it reports `eval_count`/`eval_duration` (tokens/s), keeps the
server's Modelfile defaults (the `/v1` shim forces temperature 1.0 when omitted) and reports
`remote_host` when a `*-cloud` model was offloaded to ollama.com. No `keep_alive` is sent, so the
server's OLLAMA_KEEP_ALIVE stays in charge (a per-request value would override it).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from .._errors import ErrorKind, LocalOnlyViolation, ProviderError
from .._pool import Endpoint
from .._retry import kind_for_status, parse_retry_after
from .._types import LLMProvider, LLMResponse, Message, ToolCall
from ._base import ChatRequest, Provider, StreamItem, text_of, transport_error_kind

if TYPE_CHECKING:
    import httpx

_CLOUD_MODEL = re.compile(r"[-:]cloud$")


def is_cloud_model(name: str) -> bool:
    """Ollama offloads `*-cloud` / `*:cloud` models to ollama.com: not local, whatever the host."""
    return bool(_CLOUD_MODEL.search(name.strip().lower()))


def to_native_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """OpenAI-format messages to Ollama's: tool-call arguments become objects, tool results get the
    tool's name (looked up from the call id)."""
    names: dict[str, str] = {}
    out: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role", "user")
        native: dict[str, Any] = {"role": role, "content": text_of(message.get("content"))}
        if role == "assistant" and message.get("tool_calls"):
            calls = []
            for call in message["tool_calls"]:
                function = call.get("function", {})
                arguments = function.get("arguments") or "{}"
                names[call.get("id", "")] = function.get("name", "")
                calls.append(
                    {
                        "function": {
                            "name": function.get("name", ""),
                            "arguments": json.loads(arguments) if isinstance(arguments, str) else arguments,
                        }
                    }
                )
            native["tool_calls"] = calls
        if role == "tool":
            name = message.get("name") or names.get(message.get("tool_call_id", ""))
            if name:
                native["tool_name"] = name
        out.append(native)
    return out


def _tool_calls(message: dict[str, Any], offset: int = 0) -> list[ToolCall]:
    calls = []
    for index, call in enumerate(message.get("tool_calls") or (), offset):
        function = call.get("function", {})
        arguments = function.get("arguments", {})
        calls.append(
            ToolCall(
                id=call.get("id") or f"call_{index}",
                name=function.get("name", ""),
                arguments=arguments if isinstance(arguments, str) else json.dumps(arguments),
            )
        )
    return calls


class OllamaProvider(Provider):
    kind = LLMProvider.OLLAMA

    def __init__(self, *, local_only: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.local_only = local_only

    def _make_client(self, asynchronous: bool) -> httpx.Client | httpx.AsyncClient:
        import httpx  # noqa: PLC0415 - keep `import cortex_client` fast

        cls = httpx.AsyncClient if asynchronous else httpx.Client
        return cls(trust_env=False, verify=self._verify())

    def _sync_client(self) -> httpx.Client:
        client: httpx.Client = super()._sync_client()
        return client

    def _async_client(self) -> httpx.AsyncClient:
        client: httpx.AsyncClient = super()._async_client()
        return client

    def _verify(self) -> bool:
        # Loading the CA bundle costs ~40 ms per client; plain http:// endpoints never use it.
        # Any https:// endpoint keeps full verification. (Redirects are not followed.)
        return any(e.url.startswith("https://") for e in self.pool.endpoints)

    def _timeout(self, budget: float) -> httpx.Timeout:
        import httpx  # noqa: PLC0415 - already loaded by the client

        connect = min(self.timeouts.ollama_connect, budget)
        read = min(self.timeouts.ollama_read, budget)
        return httpx.Timeout(read, connect=connect, pool=connect)

    def _body(self, request: ChatRequest, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": to_native_messages(request.messages),
            "stream": stream,
            "options": {"temperature": request.temperature, "num_predict": request.max_tokens},
        }
        if request.tools:
            body["tools"] = request.tools
        return body

    # --- errors ----------------------------------------------------------------------------------------
    def _status_error(self, response: httpx.Response, endpoint: Endpoint) -> ProviderError:
        try:
            detail = str(json.loads(response.content).get("error", ""))
        except (ValueError, AttributeError):
            detail = response.text[:200]
        return self.error(
            f"HTTP {response.status_code}: {detail or response.reason_phrase}",
            kind_for_status(response.status_code),
            endpoint,
            status=response.status_code,
            retry_after=parse_retry_after(response.headers),
        )

    def _transport_error(self, exc: Exception, endpoint: Endpoint) -> ProviderError:
        kind = transport_error_kind(exc) or ErrorKind.UNKNOWN
        return self.error(f"{type(exc).__name__}: {exc}", kind, endpoint)

    # --- results ----------------------------------------------------------------------------------------
    def _response(self, data: dict[str, Any], content: str, calls: list[ToolCall]) -> LLMResponse:
        if self.local_only and data.get("remote_host"):
            raise LocalOnlyViolation(
                f"Ollama served {self.model!r} from {data['remote_host']}; refused in local-only mode"
            )
        prompt = int(data.get("prompt_eval_count") or 0)
        completion = int(data.get("eval_count") or 0)
        eval_ns = int(data.get("eval_duration") or 0)
        finish = data.get("done_reason") or "stop"
        if calls and finish == "stop":
            finish = "tool_calls"
        return LLMResponse(
            content=content,
            provider=LLMProvider.OLLAMA,
            model=str(data.get("model") or self.model),
            tokens_used=prompt + completion,
            cost_usd=0.0,
            latency_seconds=0.0,
            raw_response=data,
            input_tokens=prompt,
            output_tokens=completion,
            tool_calls=calls,
            finish_reason=finish,
            tokens_per_second=completion / eval_ns * 1e9 if eval_ns > 0 else None,
        )

    def _parse_line(self, line: str, endpoint: Endpoint) -> dict[str, Any] | None:
        if not line.strip():
            return None
        try:
            data = json.loads(line)
        except ValueError:
            raise self.error(f"invalid stream line {line[:80]!r}", ErrorKind.STREAM, endpoint) from None
        if not isinstance(data, dict):
            raise self.error(f"invalid stream line {line[:80]!r}", ErrorKind.STREAM, endpoint)
        if data.get("error"):
            raise self.error(f"error in stream: {data['error']}", ErrorKind.STREAM, endpoint)
        return data

    # --- calls ------------------------------------------------------------------------------------------
    def complete(self, request: ChatRequest, endpoint: Endpoint, budget: float) -> LLMResponse:
        client = self._sync_client()
        try:
            response = client.post(
                endpoint.url + "/api/chat", json=self._body(request, False), timeout=self._timeout(budget)
            )
        except Exception as exc:
            raise self._transport_error(exc, endpoint) from exc
        return self._complete_result(response, endpoint)

    async def acomplete(self, request: ChatRequest, endpoint: Endpoint, budget: float) -> LLMResponse:
        client = self._async_client()
        try:
            response = await client.post(
                endpoint.url + "/api/chat", json=self._body(request, False), timeout=self._timeout(budget)
            )
        except Exception as exc:
            raise self._transport_error(exc, endpoint) from exc
        return self._complete_result(response, endpoint)

    def _complete_result(self, response: httpx.Response, endpoint: Endpoint) -> LLMResponse:
        if response.status_code != 200:
            raise self._status_error(response, endpoint)
        data = self._parse_line(response.text, endpoint)
        if data is None:
            raise self.error("empty response body", ErrorKind.SERVER, endpoint, status=200)
        message = data.get("message") or {}
        return self._response(data, str(message.get("content") or ""), _tool_calls(message))

    def stream(self, request: ChatRequest, endpoint: Endpoint, budget: float) -> Iterator[StreamItem]:
        client = self._sync_client()
        body = self._body(request, True)
        try:
            with client.stream("POST", endpoint.url + "/api/chat", json=body, timeout=self._timeout(budget)) as r:
                if r.status_code != 200:
                    r.read()
                    raise self._status_error(r, endpoint)
                accumulator = _StreamAccumulator(self, endpoint)
                for line in r.iter_lines():
                    yield from accumulator.feed(line)
                yield accumulator.finish()
        except (ProviderError, LocalOnlyViolation):
            raise
        except Exception as exc:
            raise self._transport_error(exc, endpoint) from exc

    async def astream(self, request: ChatRequest, endpoint: Endpoint, budget: float) -> AsyncIterator[StreamItem]:
        client = self._async_client()
        body = self._body(request, True)
        try:
            async with client.stream("POST", endpoint.url + "/api/chat", json=body, timeout=self._timeout(budget)) as r:
                if r.status_code != 200:
                    await r.aread()
                    raise self._status_error(r, endpoint)
                accumulator = _StreamAccumulator(self, endpoint)
                async for line in r.aiter_lines():
                    for item in accumulator.feed(line):
                        yield item
                yield accumulator.finish()
        except (ProviderError, LocalOnlyViolation):
            raise
        except Exception as exc:
            raise self._transport_error(exc, endpoint) from exc

    # --- admin surface for the CLI (version, models, pull) ----------------------------------------------
    def version(self, endpoint: Endpoint | None = None) -> str:
        return str(self._get(endpoint, "/api/version").get("version", ""))

    def list_models(self, endpoint: Endpoint | None = None) -> list[dict[str, Any]]:
        return list(self._get(endpoint, "/api/tags").get("models", []))

    def pull(self, name: str, endpoint: Endpoint | None = None) -> Iterator[dict[str, Any]]:
        """Pull a model; yields Ollama's progress objects (status, total, completed)."""
        target = endpoint or self.pool.endpoints[0]
        client = self._sync_client()
        try:
            with client.stream(
                "POST",
                target.url + "/api/pull",
                json={"model": name, "stream": True},
                timeout=self._timeout(self.timeouts.ollama_read),
            ) as r:
                if r.status_code != 200:
                    r.read()
                    raise self._status_error(r, target)
                for line in r.iter_lines():
                    data = self._parse_line(line, target)
                    if data is not None:
                        yield data
        except (ProviderError, LocalOnlyViolation):
            raise
        except Exception as exc:
            raise self._transport_error(exc, target) from exc

    def _get(self, endpoint: Endpoint | None, path: str) -> dict[str, Any]:
        target = endpoint or self.pool.endpoints[0]
        try:
            response = self._sync_client().get(target.url + path, timeout=self._timeout(10.0))
        except Exception as exc:
            raise self._transport_error(exc, target) from exc
        if response.status_code != 200:
            raise self._status_error(response, target)
        data = response.json()
        return data if isinstance(data, dict) else {}


class _StreamAccumulator:
    """Collects an NDJSON chat stream: yields text deltas, builds the final response."""

    def __init__(self, provider: OllamaProvider, endpoint: Endpoint) -> None:
        self.provider = provider
        self.endpoint = endpoint
        self.parts: list[str] = []
        self.calls: list[ToolCall] = []
        self.final: dict[str, Any] | None = None

    def feed(self, line: str) -> Iterator[str]:
        data = self.provider._parse_line(line, self.endpoint)
        if data is None:
            return
        message = data.get("message") or {}
        self.calls += _tool_calls(message, len(self.calls))
        text = str(message.get("content") or "")
        if text:
            self.parts.append(text)
            yield text
        if data.get("done"):
            self.final = data

    def finish(self) -> LLMResponse:
        if self.final is None:
            raise self.provider.error("stream ended before done", ErrorKind.STREAM, self.endpoint)
        return self.provider._response(self.final, "".join(self.parts), self.calls)
