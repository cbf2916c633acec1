"""Ollama over its native HTTP API (`/api/chat`, NDJSON streaming), spoken directly with httpx.

Native rather than `/v1` because it reports `eval_count`/`eval_duration` (tokens/s), keeps the
server's Modelfile defaults (the `/v1` shim forces temperature 1.0 when omitted) and reports
`remote_host` when a `*-cloud` model was offloaded to ollama.com. No `keep_alive` is sent, so the
server's OLLAMA_KEEP_ALIVE stays in charge (a per-request value would override it).

People also point OLLAMA_BASE_URL at other local servers with an OpenAI-compatible API (llama.cpp's server,
vLLM, LM Studio), as the original router's `/v1` client allowed. With `api="auto"` each endpoint is asked once
for `/api/version`: an Ollama answers it, anything else gets `/v1/chat/completions` (OLLAMA_API=native|openai
forces one).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

from .. import _defaults
from .._errors import ErrorKind, LocalOnlyViolation, ProviderError
from .._http import bound_client
from .._pool import Endpoint
from .._retry import kind_for_status, parse_retry_after
from .._types import Embeddings, LLMProvider, LLMResponse, Message, Tool, ToolCall
from ._base import (
    MALFORMED,
    ChatRequest,
    Provider,
    Reasoning,
    StreamItem,
    ToolCallDeltas,
    estimate_tokens,
    server_message,
    text_of,
    transport_error_kind,
)

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


def _native_tools(request: ChatRequest) -> list[Tool] | None:
    """Ollama's /api/chat has no tool_choice: "none" is honoured by sending no tools, a named tool by sending only
    that one ("auto" and "required" leave the choice to the model)."""
    choice = request.tool_choice
    if not request.tools or choice == "none":
        return None
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name") or choice.get("name")
        return [t for t in request.tools if t.get("function", t).get("name") == name] or request.tools
    return request.tools


def _tool_calls(message: dict[str, Any], offset: int = 0) -> list[ToolCall]:
    calls = []
    for call in message.get("tool_calls") or ():
        function = call.get("function", {})
        arguments = function.get("arguments", {})
        calls.append(
            ToolCall(
                # Ollama's native answers carry no id (or one per answer): a fresh one keeps ids unique within the
                # conversation, which the tool results refer to.
                id=call.get("id") or f"call_{uuid.uuid4().hex[:24]}",
                name=function.get("name", ""),
                arguments=arguments if isinstance(arguments, str) else json.dumps(arguments),
            )
        )
    return calls


API_CHOICES = ("auto", "native", "openai")


class OllamaProvider(Provider):
    kind = LLMProvider.OLLAMA

    def __init__(
        self,
        *,
        local_only: bool = False,
        api: str = "auto",
        num_ctx: int | None = None,
        on_truncation: str = "fallback",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.local_only = local_only
        self.num_ctx = num_ctx  # this model's context window, sent as options.num_ctx (None: the Modelfile's)
        self.on_truncation = on_truncation
        if api not in API_CHOICES:
            raise ValueError(f"api must be one of {API_CHOICES}, got {api!r}")
        self.api = api
        self._dialects: dict[str, str] = {}  # endpoint URL -> "native" | "openai", learnt once per endpoint

    # --- which API an endpoint speaks -----------------------------------------------------------------
    # Learnt at no cost for a real Ollama: a request goes to /api/chat unless the endpoint is known to be
    # something else; only a 404 there makes us ask /api/version once, and a server without it is OpenAI-style.
    def _dialect(self, endpoint: Endpoint) -> str:
        return self.api if self.api != "auto" else self._dialects.get(endpoint.url, "native")

    def _not_ollama(self, response: httpx.Response, endpoint: Endpoint, budget: float) -> bool:
        """After a 404 from /api/chat: is this endpoint another server than Ollama? (Remembered.)"""
        if self.api != "auto" or endpoint.url in self._dialects or response.status_code != 404:
            return False
        try:
            probe = self._sync_client().get(endpoint.url + "/api/version", timeout=self._timeout(budget))
        except Exception as exc:
            raise self._transport_error(exc, endpoint) from exc
        return self._learn(probe, endpoint)

    async def _anot_ollama(self, response: httpx.Response, endpoint: Endpoint, budget: float) -> bool:
        if self.api != "auto" or endpoint.url in self._dialects or response.status_code != 404:
            return False
        try:
            probe = await (await self._async_client()).get(endpoint.url + "/api/version", timeout=self._timeout(budget))
        except Exception as exc:
            raise self._transport_error(exc, endpoint) from exc
        return self._learn(probe, endpoint)

    def _learn(self, probe: httpx.Response, endpoint: Endpoint) -> bool:
        try:
            is_ollama = probe.status_code == 200 and "version" in probe.json()
        except (ValueError, TypeError):
            is_ollama = False
        self._dialects[endpoint.url] = "native" if is_ollama else "openai"
        return not is_ollama

    def dialect(self, endpoint: Endpoint) -> str:
        """What the CLI should speak to an endpoint: "native" (Ollama) or "openai"; asks it if not known yet."""
        if self.api == "auto" and endpoint.url not in self._dialects:
            try:
                probe = self._sync_client().get(endpoint.url + "/api/version", timeout=self._timeout(10.0))
            except Exception as exc:
                raise self._transport_error(exc, endpoint) from exc
            self._learn(probe, endpoint)
        return self._dialect(endpoint)

    def _request(
        self, request: ChatRequest, endpoint: Endpoint, dialect: str, stream: bool
    ) -> tuple[str, dict[str, Any]]:
        if dialect == "openai":
            return _openai_url(endpoint.url), _openai_body(self.model, request, self.max_tokens(request), stream)
        return endpoint.url + "/api/chat", self._body(request, stream)

    def _make_client(self, asynchronous: bool, endpoint: Endpoint) -> httpx.Client | httpx.AsyncClient:
        # One client for every endpoint of the pool: requests carry full URLs.
        import httpx  # noqa: PLC0415 - keep `import cortex_client` fast

        # Ollama queues requests itself: a request waits for one of these connections until its deadline (the pool
        # timeout is left to _http), and never counts that wait against the endpoint.
        limits = httpx.Limits(max_connections=self.max_connections, max_keepalive_connections=self.max_connections)
        if asynchronous:
            return httpx.AsyncClient(trust_env=False, verify=self._verify(), limits=limits)
        client: httpx.Client = bound_client(httpx.Client(trust_env=False, verify=self._verify(), limits=limits))
        return client

    def _sync_client(self, endpoint: Endpoint | None = None) -> httpx.Client:
        client: httpx.Client = super()._sync_client(endpoint)
        return client

    async def _async_client(self, endpoint: Endpoint | None = None) -> httpx.AsyncClient:
        client: httpx.AsyncClient = await super()._async_client(endpoint)
        return client

    def _verify(self) -> bool:
        # Loading the CA bundle costs ~40 ms per client; plain http:// endpoints never use it.
        # Any https:// endpoint keeps full verification. (Redirects are not followed.)
        return any(e.url.startswith("https://") for e in self.pool.endpoints)

    def _timeout(self, budget: float) -> httpx.Timeout:
        import httpx  # noqa: PLC0415 - already loaded by the client

        connect = min(self.timeouts.ollama_connect, budget)
        read = min(self.timeouts.ollama_read, budget)
        return httpx.Timeout(read, connect=connect, pool=budget)

    def _body(self, request: ChatRequest, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": to_native_messages(request.messages),
            "stream": stream,
            "options": {"temperature": request.temperature, "num_predict": self.max_tokens(request)},
        }
        if request.structure is not None:
            body["format"] = request.structure.schema
        if request.think is not None:  # True/False, or a level for the models that take one (gpt-oss)
            body["think"] = request.think
        num_ctx = request.num_ctx or self.num_ctx
        if num_ctx:
            body["options"]["num_ctx"] = num_ctx
        tools = _native_tools(request)
        if tools:
            body["tools"] = tools
        return body

    # --- errors ----------------------------------------------------------------------------------------
    def _status_error(self, response: httpx.Response, endpoint: Endpoint) -> ProviderError:
        try:
            detail = server_message(json.loads(response.content))
        except ValueError:
            detail = server_message(response.text)
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
    def _response(
        self,
        data: dict[str, Any],
        content: str,
        calls: list[ToolCall],
        request: ChatRequest,
        deltas: int | None = None,
        *,
        reasoning: str = "",
    ) -> LLMResponse:
        if self.local_only and data.get("remote_host"):
            raise LocalOnlyViolation(
                f"Ollama served {self.model!r} from {data['remote_host']}; refused in local-only mode"
            )
        # Ollama's final object carries the counts; it leaves prompt_eval_count out when the prompt was cached.
        estimated = data.get("prompt_eval_count") is None or data.get("eval_count") is None
        prompt = _count(data, "prompt_eval_count", lambda: estimate_tokens(request.messages))
        completion = _count(data, "eval_count", lambda: _output_estimate(content, calls, deltas))
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
            usage_estimated=estimated,
            reasoning=reasoning,
        )

    def check_context(self, data: dict[str, Any], request: ChatRequest, endpoint: Endpoint) -> None:
        """Ollama cuts a prompt longer than the context window and still answers 200 (ollama#17889): refuse such an
        answer. The cut is certain when the prompt (about 4 characters per token) cannot fit the window in effect
        (the request's num_ctx, else the model's, else Ollama's default) and Ollama reports fewer prompt tokens
        (`prompt_eval_count`) than that. Policy "fallback": a provider failure (kind CONTEXT, the next provider
        answers); "raise": the request's own error (kind BAD_REQUEST: no fallback)."""
        evaluated = data.get("prompt_eval_count")
        if not isinstance(evaluated, int):
            return
        window = request.num_ctx or self.num_ctx or _defaults.OLLAMA_DEFAULT_NUM_CTX
        needed = estimate_tokens(request.messages)
        if needed <= window or evaluated >= needed:
            return
        kind = ErrorKind.CONTEXT if self.on_truncation == "fallback" else ErrorKind.BAD_REQUEST
        raise self.error(
            f"prompt truncated: Ollama evaluated {evaluated} prompt tokens of about {needed} (num_ctx {window}); "
            "raise num_ctx (per request, or LLMRouter(ollama_num_ctx=...)) or shorten the prompt",
            kind,
            endpoint,
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
            raise self.error(f"error in stream: {server_message(data)}", ErrorKind.STREAM, endpoint)
        return data

    # --- calls ------------------------------------------------------------------------------------------
    def complete(self, request: ChatRequest, endpoint: Endpoint, budget: float) -> LLMResponse:
        dialect = self._dialect(endpoint)
        response = self._post(request, endpoint, dialect, budget)
        if dialect == "native" and self._not_ollama(response, endpoint, budget):
            dialect = "openai"
            response = self._post(request, endpoint, dialect, budget)
        return self._complete_result(response, endpoint, dialect, request)

    async def acomplete(self, request: ChatRequest, endpoint: Endpoint, budget: float) -> LLMResponse:
        dialect = self._dialect(endpoint)
        response = await self._apost(request, endpoint, dialect, budget)
        if dialect == "native" and await self._anot_ollama(response, endpoint, budget):
            dialect = "openai"
            response = await self._apost(request, endpoint, dialect, budget)
        return self._complete_result(response, endpoint, dialect, request)

    def _post(self, request: ChatRequest, endpoint: Endpoint, dialect: str, budget: float) -> httpx.Response:
        url, body = self._request(request, endpoint, dialect, False)
        try:
            return self._sync_client().post(url, json=body, timeout=self._timeout(budget))
        except Exception as exc:
            raise self._transport_error(exc, endpoint) from exc

    async def _apost(self, request: ChatRequest, endpoint: Endpoint, dialect: str, budget: float) -> httpx.Response:
        url, body = self._request(request, endpoint, dialect, False)
        try:
            return await (await self._async_client()).post(url, json=body, timeout=self._timeout(budget))
        except Exception as exc:
            raise self._transport_error(exc, endpoint) from exc

    # --- embeddings -------------------------------------------------------------------------------------------
    supports_embeddings = True

    def _embed_request(self, texts: list[str], model: str, endpoint: Endpoint) -> tuple[str, dict[str, Any]]:
        if self._dialect(endpoint) == "openai":
            return _openai_url(endpoint.url).removesuffix("/chat/completions") + "/embeddings", {
                "model": model,
                "input": texts,
            }
        return endpoint.url + "/api/embed", {"model": model, "input": texts}

    def embed(self, texts: list[str], model: str, endpoint: Endpoint, budget: float) -> Embeddings:
        url, body = self._embed_request(texts, model, endpoint)
        try:
            response = self._sync_client().post(url, json=body, timeout=self._timeout(budget))
        except Exception as exc:
            raise self._transport_error(exc, endpoint) from exc
        return self._embeddings(response, texts, model, endpoint)

    async def aembed(self, texts: list[str], model: str, endpoint: Endpoint, budget: float) -> Embeddings:
        url, body = self._embed_request(texts, model, endpoint)
        try:
            response = await (await self._async_client()).post(url, json=body, timeout=self._timeout(budget))
        except Exception as exc:
            raise self._transport_error(exc, endpoint) from exc
        return self._embeddings(response, texts, model, endpoint)

    def _embeddings(self, response: httpx.Response, texts: list[str], model: str, endpoint: Endpoint) -> Embeddings:
        if response.status_code != 200:
            raise self._status_error(response, endpoint)
        try:
            data = json.loads(response.content)
        except ValueError:
            raise self.malformed(f"not JSON: {response.text[:80]!r}", endpoint) from None
        if not isinstance(data, dict):
            raise self.malformed("not a JSON object", endpoint)
        if "embeddings" in data:  # Ollama's /api/embed
            vectors, tokens = data["embeddings"], data.get("prompt_eval_count")
        else:  # OpenAI's /v1/embeddings
            raw = data.get("data")
            items = [i for i in raw if isinstance(i, dict)] if isinstance(raw, list) else []
            vectors = [i.get("embedding") for i in sorted(items, key=lambda i: i.get("index") or 0)]
            tokens = (data.get("usage") or {}).get("prompt_tokens")
        checked = self.embeddings_of(vectors, len(texts), endpoint)
        used = int(tokens) if isinstance(tokens, int) else sum(len(t) for t in texts) // 4
        return Embeddings(checked, LLMProvider.OLLAMA, str(data.get("model") or model), used)

    def _complete_result(
        self, response: httpx.Response, endpoint: Endpoint, dialect: str, request: ChatRequest
    ) -> LLMResponse:
        if response.status_code != 200:
            raise self._status_error(response, endpoint)
        try:
            data = json.loads(response.content)
        except ValueError:
            raise self.malformed(f"not JSON: {response.text[:80]!r}", endpoint) from None
        if not isinstance(data, dict):
            raise self.malformed(f"not a JSON object: {response.text[:80]!r}", endpoint)
        if data.get("error"):
            raise self.malformed(f"error in answer: {server_message(data)}", endpoint)
        try:
            if dialect == "openai":
                result = self._openai_response(data, endpoint, request)
            else:
                message = data.get("message")
                if not isinstance(message, dict):
                    raise self.malformed("no message", endpoint)
                content, thinking = str(message.get("content") or ""), str(message.get("thinking") or "")
                result = self._response(data, content, _tool_calls(message), request, reasoning=thinking)
                self.check_context(data, request, endpoint)
        except MALFORMED as exc:
            raise self.malformed(f"{type(exc).__name__}: {exc}", endpoint) from None
        if dialect == "native":
            self._dialects.setdefault(endpoint.url, "native")  # it answered /api/chat: an Ollama
        return self.usable(result, endpoint)

    def _accumulator(
        self, endpoint: Endpoint, dialect: str, request: ChatRequest
    ) -> _StreamAccumulator | _SSEAccumulator:
        if dialect == "openai":
            return _SSEAccumulator(self, endpoint, request)
        self._dialects.setdefault(endpoint.url, "native")  # it answered /api/chat: an Ollama
        return _StreamAccumulator(self, endpoint, request)

    def stream(self, request: ChatRequest, endpoint: Endpoint, budget: float) -> Iterator[StreamItem]:
        dialect = self._dialect(endpoint)
        for attempt in (1, 2):
            url, body = self._request(request, endpoint, dialect, True)
            try:
                with self._sync_client().stream("POST", url, json=body, timeout=self._timeout(budget)) as r:
                    if r.status_code != 200:
                        r.read()
                        if attempt == 1 and dialect == "native" and self._not_ollama(r, endpoint, budget):
                            dialect = "openai"
                            continue
                        raise self._status_error(r, endpoint)
                    accumulator = self._accumulator(endpoint, dialect, request)
                    for line in r.iter_lines():
                        yield from accumulator.feed(line)
                    yield self.usable(accumulator.finish(), endpoint)
                    return
            except (ProviderError, LocalOnlyViolation):
                raise
            except MALFORMED as exc:
                raise self.error(f"malformed stream line: {type(exc).__name__}", ErrorKind.STREAM, endpoint) from None
            except Exception as exc:
                raise self._transport_error(exc, endpoint) from exc

    async def astream(self, request: ChatRequest, endpoint: Endpoint, budget: float) -> AsyncIterator[StreamItem]:
        dialect = self._dialect(endpoint)
        for attempt in (1, 2):
            url, body = self._request(request, endpoint, dialect, True)
            try:
                client = await self._async_client()
                async with client.stream("POST", url, json=body, timeout=self._timeout(budget)) as r:
                    if r.status_code != 200:
                        await r.aread()
                        if attempt == 1 and dialect == "native" and await self._anot_ollama(r, endpoint, budget):
                            dialect = "openai"
                            continue
                        raise self._status_error(r, endpoint)
                    accumulator = self._accumulator(endpoint, dialect, request)
                    async for line in r.aiter_lines():
                        for item in accumulator.feed(line):
                            yield item
                    yield self.usable(accumulator.finish(), endpoint)
                    return
            except (ProviderError, LocalOnlyViolation):
                raise
            except MALFORMED as exc:
                raise self.error(f"malformed stream line: {type(exc).__name__}", ErrorKind.STREAM, endpoint) from None
            except Exception as exc:
                raise self._transport_error(exc, endpoint) from exc

    # --- the OpenAI-compatible dialect -------------------------------------------------------------------
    def _openai_response(self, data: dict[str, Any], endpoint: Endpoint, request: ChatRequest) -> LLMResponse:
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise self.error("answer without choices", ErrorKind.SERVER, endpoint, status=200)
        message = choices[0].get("message") or {}
        usage = data.get("usage") or {}
        return self._openai_result(
            model=str(data.get("model") or self.model),
            content=str(message.get("content") or ""),
            calls=_openai_tool_calls(message.get("tool_calls")),
            finish=choices[0].get("finish_reason"),
            usage=usage if isinstance(usage, dict) else {},
            raw=data,
            request=request,
        )

    def _openai_result(
        self,
        *,
        model: str,
        content: str,
        calls: list[ToolCall],
        finish: str | None,
        usage: dict[str, Any],
        raw: dict[str, Any],
        request: ChatRequest,
        deltas: int | None = None,
    ) -> LLMResponse:
        # Servers that send no usage (llama.cpp's Python server ignores stream_options.include_usage) get estimates,
        # marked as such, rather than a free "0+0".
        estimated = usage.get("completion_tokens") is None
        prompt = _count(usage, "prompt_tokens", lambda: estimate_tokens(request.messages))
        completion = _count(usage, "completion_tokens", lambda: _output_estimate(content, calls, deltas))
        return LLMResponse(
            content=content,
            provider=LLMProvider.OLLAMA,
            model=model,
            tokens_used=prompt + completion,
            cost_usd=0.0,
            latency_seconds=0.0,
            raw_response=raw,
            input_tokens=prompt,
            output_tokens=completion,
            tool_calls=calls,
            finish_reason=finish or ("tool_calls" if calls else "stop"),
            usage_estimated=estimated,
        )

    # --- admin surface for the CLI (version, models, pull) ----------------------------------------------
    def version(self, endpoint: Endpoint | None = None) -> str:
        return str(self._get(endpoint, "/api/version").get("version", ""))

    def list_models(self, endpoint: Endpoint | None = None) -> list[dict[str, Any]]:
        """The installed models ({"name": ...} at least); an OpenAI-compatible server's /v1/models."""
        target = endpoint or self.pool.endpoints[0]
        if self.dialect(target) == "openai":
            data = self._get(target, _openai_url(target.url).removesuffix("/chat/completions") + "/models")
            listed, name = data.get("data"), "id"
        else:
            listed, name = self._get(target, "/api/tags").get("models"), "name"
        models = listed if isinstance(listed, list) else None
        if models is None or not all(isinstance(m, dict) and isinstance(m.get(name), str) for m in models):
            raise self.malformed("the model list is not a list of models", target)
        return [{**m, "name": m[name]} for m in models]

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
        """GET a JSON object (path below the endpoint, or a full URL); anything else is a provider failure."""
        target = endpoint or self.pool.endpoints[0]
        url = path if path.startswith(("http://", "https://")) else target.url + path
        try:
            response = self._sync_client().get(url, timeout=self._timeout(10.0))
        except Exception as exc:
            raise self._transport_error(exc, target) from exc
        if response.status_code != 200:
            raise self._status_error(response, target)
        try:
            data = response.json()
        except ValueError:
            raise self.error(
                f"{url} answered something that is not JSON", ErrorKind.SERVER, target, status=200
            ) from None
        return data if isinstance(data, dict) else {}


class _StreamAccumulator:
    """Collects an NDJSON chat stream: yields text deltas, builds the final response."""

    def __init__(self, provider: OllamaProvider, endpoint: Endpoint, request: ChatRequest) -> None:
        self.provider = provider
        self.endpoint = endpoint
        self.request = request
        self.parts: list[str] = []
        self.thinking: list[str] = []
        self.calls: list[ToolCall] = []
        self.final: dict[str, Any] | None = None

    def feed(self, line: str) -> Iterator[str]:
        data = self.provider._parse_line(line, self.endpoint)
        if data is None:
            return
        message = data.get("message") or {}
        self.calls += _tool_calls(message)
        thinking = str(message.get("thinking") or "")
        if thinking:
            self.thinking.append(thinking)
            yield Reasoning(thinking)
        text = str(message.get("content") or "")
        if text:
            self.parts.append(text)
            yield text
        if data.get("done"):
            self.final = data

    def finish(self) -> LLMResponse:
        if self.final is None:
            raise self.provider.error("stream ended before done", ErrorKind.STREAM, self.endpoint)
        response = self.provider._response(
            self.final, "".join(self.parts), self.calls, self.request, len(self.parts), reasoning="".join(self.thinking)
        )
        self.provider.check_context(self.final, self.request, self.endpoint)
        return response


def _count(counts: dict[str, Any], key: str, estimate: Callable[[], int]) -> int:
    """The server's token count under `key`, else the estimate."""
    value = counts.get(key)
    return int(value) if value is not None else estimate()


def _output_estimate(content: str, calls: list[ToolCall], deltas: int | None) -> int:
    """Output tokens of an answer without usage: its stream deltas (servers send about one token each), else about
    4 characters per token of its text and tool calls."""
    return deltas or (len(content) + sum(len(c.name) + len(c.arguments) for c in calls) + 3) // 4


def _openai_url(base: str) -> str:
    """The chat endpoint of an OpenAI-compatible server whose root (or /v1) is `base`."""
    return (base if base.endswith("/v1") else base + "/v1") + "/chat/completions"


def _openai_body(model: str, request: ChatRequest, max_tokens: int, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "messages": request.messages,
        "temperature": request.temperature,
        "max_tokens": max_tokens,
        "stream": stream,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    if request.structure is not None:  # llama.cpp's servers (C++ and Python) take the schema this way
        body["response_format"] = {"type": "json_object", "schema": request.structure.schema}
    if request.tools:
        body["tools"] = request.tools
        if request.tool_choice is not None:
            body["tool_choice"] = request.tool_choice
    return body


def _openai_tool_calls(raw: Any) -> list[ToolCall]:
    calls = []
    for index, call in enumerate(raw if isinstance(raw, list) else ()):
        if not isinstance(call, dict):
            continue
        function = call.get("function") or {}
        arguments = function.get("arguments") or ""
        calls.append(
            ToolCall(
                id=str(call.get("id") or f"call_{index}"),
                name=str(function.get("name") or ""),
                arguments=arguments if isinstance(arguments, str) else json.dumps(arguments),
            )
        )
    return calls


class _SSEAccumulator:
    """Collects an OpenAI-style SSE chat stream (`data: {...}` lines, `data: [DONE]`)."""

    def __init__(self, provider: OllamaProvider, endpoint: Endpoint, request: ChatRequest) -> None:
        self.provider = provider
        self.endpoint = endpoint
        self.request = request
        self.parts: list[str] = []
        self.deltas = 0  # servers send about one token per delta: the estimate when they send no usage
        self.calls = ToolCallDeltas()
        self.model = provider.model
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] = {}
        self.done = False

    def feed(self, line: str) -> Iterator[str]:
        if not line.startswith("data:"):
            return  # blank separators, comments (keep-alives), event names
        payload = line[5:].strip()
        if payload == "[DONE]":
            self.done = True
            return
        data = self.provider._parse_line(payload, self.endpoint)
        if data is None:
            return
        self.model = str(data.get("model") or self.model)
        if isinstance(data.get("usage"), dict):
            self.usage = data["usage"]
        for choice in data.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            self.finish_reason = choice.get("finish_reason") or self.finish_reason
            delta = choice.get("delta") or {}
            if delta.get("content") or delta.get("tool_calls"):
                self.deltas += 1
            for fragment in delta.get("tool_calls") or ():
                function = fragment.get("function") or {}
                self.calls.add(
                    int(fragment.get("index") or 0), fragment.get("id"), function.get("name"), function.get("arguments")
                )
            text = delta.get("content")
            if text:
                self.parts.append(str(text))
                yield str(text)

    def finish(self) -> LLMResponse:
        if not self.done and self.finish_reason is None:
            raise self.provider.error("stream ended before a finish_reason", ErrorKind.STREAM, self.endpoint)
        calls = self.calls.calls(empty_arguments="{}")
        return self.provider._openai_result(
            model=self.model,
            content="".join(self.parts),
            calls=calls,
            finish=self.finish_reason,
            usage=self.usage,
            raw={"model": self.model, "usage": self.usage, "finish_reason": self.finish_reason},
            request=self.request,
            deltas=self.deltas,
        )
