"""What every provider adapter offers the router, and helpers they share."""

from __future__ import annotations

import abc
import functools
import importlib
import re
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .. import _defaults
from .._config import BreakerPolicy, Timeouts, refuse_userinfo, url_secrets
from .._errors import ConfigError, ErrorKind, ProviderError
from .._pool import Endpoint, EndpointPool
from .._structured import Structure
from .._types import Embeddings, LLMProvider, LLMResponse, Message, Tool, ToolCall

ToolChoice = str | dict[str, Any] | None
T = TypeVar("T")


async def _close_at_loop_end(client: Any) -> AsyncIterator[None]:
    """An async generator whose `finally` closes `client`: asyncio.run() finalizes every async generator of its
    loop before closing it (shutdown_asyncgens), so a client the caller never closed is closed in time, while
    its loop still runs, instead of leaking sockets or failing later with "Event loop is closed"."""
    try:
        yield
    finally:
        await (client.aclose() if hasattr(client, "aclose") else client.close())


class PerLoop(Generic[T]):
    """One async client per event loop: pooled connections belong to the loop that opened them, so a
    second `asyncio.run(...)` must not reuse the first one's client."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._loop: weakref.ref[Any] | None = None
        self._value: T | None = None
        self._closer: Any = None  # keeps the loop-end closer alive (the loop only holds it weakly)
        self._closer_start: Any = None

    async def get(self) -> T:
        """This loop's client; the first one is built in a worker thread, so the loop keeps running while an SDK
        is imported (seconds on a cold start) and the request's deadline covers it."""
        import asyncio  # noqa: PLC0415 - only reached from async code, where it is loaded

        loop = asyncio.get_running_loop()
        with self._lock:
            if self._value is not None and self._loop is not None and self._loop() is loop:
                return self._value
        built = await asyncio.to_thread(self._factory)
        with self._lock:
            if self._value is not None and self._loop is not None and self._loop() is loop:
                spare, value = built, self._value  # another task of this loop was faster
            else:
                spare, value = None, built  # the previous loop closed its client when it ended
                self._value, self._loop = built, weakref.ref(loop)
                self._closer = _close_at_loop_end(built)
                # Its first iteration registers it with the loop; the task is kept so it is not collected early.
                self._closer_start = asyncio.ensure_future(self._closer.__anext__())
        if spare is not None:
            extra: Any = spare
            await (extra.aclose() if hasattr(extra, "aclose") else extra.close())
        return value

    def take(self) -> T | None:
        """Hand over the current client (for closing) and forget it."""
        with self._lock:
            value, self._value, self._loop, self._closer = self._value, None, None, None
            return value


@dataclass(frozen=True)
class ChatRequest:
    messages: list[Message]
    temperature: float
    max_tokens: int | None  # None: the provider's default bound
    tools: list[Tool] | None = None
    tool_choice: ToolChoice = None
    num_ctx: int | None = None  # Ollama's context window for this request (None: the model's)
    structure: Structure | None = None  # structured output: the JSON schema the answer must match
    think: bool | str | None = None  # reasoning on/off or a level ("low", "medium", "high"); None: the model's


class Reasoning(str):
    """A reasoning delta in a provider stream (a text delta is a plain str)."""

    __slots__ = ()


StreamItem = str | LLMResponse
"""Provider streams yield text deltas, then exactly one LLMResponse (usage, tool calls)."""


class Provider(abc.ABC):
    """An adapter for one wire format. Errors leave it only as ProviderError (or LocalOnlyViolation)."""

    kind: LLMProvider

    def __init__(
        self,
        *,
        model: str,
        base_urls: tuple[str, ...],
        timeouts: Timeouts,
        breaker: BreakerPolicy,
        max_connections: int = _defaults.MAX_CONNECTIONS,
        default_max_tokens: int | None = None,
    ) -> None:
        self.model = model
        self.default_max_tokens = default_max_tokens or _defaults.DEFAULT_MAX_TOKENS[self.kind]
        self.max_connections = max_connections
        for url in base_urls:  # Settings refuses them already; a hand-made Settings must not get past either
            refuse_userinfo(url, f"the {self.kind.value} base URL")
        self.pool = EndpointPool(base_urls, breaker)
        self.timeouts = timeouts
        self._secrets: tuple[str, ...] = url_secrets(base_urls)
        self._clients: dict[Hashable, Any] = {}
        self._aclients: dict[Hashable, PerLoop[Any]] = {}
        self._client_lock = threading.Lock()

    supports_embeddings = False  # an embeddings API (Ollama /api/embed, OpenAI /v1/embeddings)

    def embed(self, texts: list[str], model: str, endpoint: Endpoint, budget: float) -> Embeddings:
        raise ConfigError(f"{self.kind.value} has no embeddings API")

    async def aembed(self, texts: list[str], model: str, endpoint: Endpoint, budget: float) -> Embeddings:
        raise ConfigError(f"{self.kind.value} has no embeddings API")

    def embeddings_of(self, vectors: Any, count: int, endpoint: Endpoint) -> list[list[float]]:
        """The vectors of an answer, checked: one non-empty list of numbers per text."""
        if not isinstance(vectors, list) or len(vectors) != count:
            raise self.malformed(f"expected {count} embeddings", endpoint)
        for vector in vectors:
            if not isinstance(vector, list) or not vector or not all(isinstance(x, (int, float)) for x in vector):
                raise self.malformed("an embedding that is not a list of numbers", endpoint)
        return vectors

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, endpoints={list(self.pool.endpoints)!r})"

    def max_tokens(self, request: ChatRequest) -> int:
        """The request's output bound, else this provider's default one."""
        return request.max_tokens or self.default_max_tokens

    @abc.abstractmethod
    def complete(self, request: ChatRequest, endpoint: Endpoint, budget: float) -> LLMResponse: ...

    @abc.abstractmethod
    async def acomplete(self, request: ChatRequest, endpoint: Endpoint, budget: float) -> LLMResponse: ...

    @abc.abstractmethod
    def stream(self, request: ChatRequest, endpoint: Endpoint, budget: float) -> Iterator[StreamItem]: ...

    @abc.abstractmethod
    def astream(self, request: ChatRequest, endpoint: Endpoint, budget: float) -> AsyncIterator[StreamItem]: ...

    # --- clients: built on first use, so a provider's import cost is paid only when it is called. One client
    # per `_client_key`: a single one by default (it takes full URLs); the SDK adapters, whose clients are bound
    # to a base URL and a key, have one per (URL, key). -----------------------------------------------------
    @abc.abstractmethod
    def _make_client(self, asynchronous: bool, endpoint: Endpoint) -> Any: ...

    def _client_key(self, endpoint: Endpoint) -> Hashable:
        return None

    def _sync_client(self, endpoint: Endpoint | None = None) -> Any:
        target = endpoint or self.pool.endpoints[0]
        key = self._client_key(target)
        with self._client_lock:
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = self._make_client(False, target)
            return client

    async def _async_client(self, endpoint: Endpoint | None = None) -> Any:
        target = endpoint or self.pool.endpoints[0]
        key = self._client_key(target)
        with self._client_lock:
            per_loop = self._aclients.get(key)
            if per_loop is None:
                per_loop = self._aclients[key] = PerLoop(functools.partial(self._make_client, True, target))
        return await per_loop.get()

    def close(self) -> None:
        """Close the sync clients (async ones are closed by `aclose`, or when their event loop ends)."""
        with self._client_lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    async def aclose(self) -> None:
        """Close the current event loop's async clients."""
        with self._client_lock:
            per_loops = list(self._aclients.values())
        for per_loop in per_loops:
            client = per_loop.take()
            if client is not None:
                # httpx names it aclose(); the SDKs' async clients name it close().
                await (client.aclose() if hasattr(client, "aclose") else client.close())

    def malformed(self, what: str, endpoint: Endpoint) -> ProviderError:
        """A 200 that is not a usable answer: the provider's failure, retried and fallen back from like a 5xx."""
        return self.error(f"malformed answer: {what}", ErrorKind.SERVER, endpoint, status=200)

    def usable(self, response: LLMResponse, endpoint: Endpoint) -> LLMResponse:
        if not response.content and not response.tool_calls:
            raise self.malformed("no content and no tool call", endpoint)
        return response

    def error(
        self,
        message: str,
        kind: ErrorKind,
        endpoint: Endpoint,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> ProviderError:
        return ProviderError(
            redact(message, self._secrets),
            provider=self.kind,
            kind=kind,
            status=status,
            retry_after=retry_after,
            endpoint=endpoint.label,
        )


# What reading a server's answer raises when a field is missing, None or of another type than documented.
MALFORMED = (AttributeError, TypeError, ValueError, KeyError, IndexError)


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """Remove configured secrets (and their long prefixes) from text that may echo them back."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
            if len(secret) > 12:  # servers often echo a truncated key: "sk-abc...xyz"
                text = text.replace(secret[:12], "[redacted]")
    return text


# Where a server's message stops and its debugging aid begins: llama.cpp's Python server appends the Python
# traceback location (`File "/srv/.../app.py", line 376, in ...`) to the message of its 500s.
_TRACEBACK = re.compile(r'\n\s*(?:Traceback \(most recent call last\)|File "[^"]*", line \d+)')
MESSAGE_LIMIT = 300


def server_message(body: Any) -> str:
    """A server's error body reduced to its message (OpenAI's `{"error": {"message": ...}}`, Anthropic's
    `{"type": "error", "error": {...}}`, Ollama's `{"error": "..."}`, FastAPI's `{"detail": ...}`, or plain text),
    without a traceback, on one line and at most MESSAGE_LIMIT characters; "" when there is none."""
    if isinstance(body, dict):
        for key in ("error", "message", "detail", "msg"):
            found = server_message(body.get(key))
            if found:
                return found
        return ""
    if isinstance(body, list):  # FastAPI's validation details: the first says enough
        return server_message(body[0]) if body else ""
    if not isinstance(body, str):
        return ""
    text = " ".join(_TRACEBACK.split(body, maxsplit=1)[0].split())
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 3] + "..."


def transport_error_kind(exc: BaseException) -> ErrorKind | None:
    """Classify an httpx/httpx2 transport error (by class name: the SDKs bundle their own httpx fork).
    Walks the cause chain because SDKs wrap the transport error."""
    seen: BaseException | None = exc
    while seen is not None:
        names = {cls.__name__ for cls in type(seen).__mro__}
        if "DeadlineExceeded" in names:  # raised by _http when the request's deadline passed
            return ErrorKind.DEADLINE
        if names & {"ConnectError", "ConnectTimeout", "ConnectionRefusedError"}:
            return ErrorKind.CONNECT
        if "TimeoutException" in names or "TimeoutError" in names:
            return ErrorKind.TIMEOUT
        if names & {"NetworkError", "RemoteProtocolError", "ProtocolError", "ConnectionError"}:
            return ErrorKind.NETWORK
        seen = seen.__cause__ or seen.__context__
    return None


def text_of(content: Any) -> str:
    """Message content as text: a string, or the text parts of an OpenAI content-part list."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text", "")) for part in content if isinstance(part, dict) and part.get("type") == "text"
        )
    return str(content)


def estimate_tokens(messages: list[Message]) -> int:
    """A rough prompt size (about 4 characters per token) for servers that report no usage."""
    return sum(len(text_of(m.get("content"))) for m in messages) // 4


class ToolCallDeltas:
    """Tool calls assembled from OpenAI-style stream deltas, as that format defines them: fragments with the same
    `index` belong to one call; its `id`, `type` and function `name` come once (a server that repeats them in every
    delta, as llama.cpp's does, must not make `install_packageinstall_package`), its `arguments` arrive in pieces
    that are concatenated."""

    def __init__(self) -> None:
        self._calls: dict[int, dict[str, str]] = {}

    def add(self, index: int, call_id: str | None, name: str | None, arguments: str | None) -> None:
        slot = self._calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
        if call_id and not slot["id"]:
            slot["id"] = call_id
        if name and name != slot["name"]:
            # A name repeated identically is the same name again; anything else continues it (servers that split a
            # name across deltas, which the format allows though OpenAI itself sends it whole).
            slot["name"] += name
        slot["arguments"] += arguments or ""

    def calls(self, empty_arguments: str = "") -> list[ToolCall]:
        return [
            ToolCall(c["id"] or f"call_{i}", c["name"], c["arguments"] or empty_arguments)
            for i, c in sorted(self._calls.items())
        ]


@functools.cache
def sdk_transport_errors() -> tuple[type[Exception], ...]:
    """Transport errors that can escape an SDK while a stream is read: newer SDKs bundle httpx2 (a fork of
    httpx), older ones use httpx itself; catch whichever is installed."""
    errors: list[type[Exception]] = []
    for name in ("httpx", "httpx2"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        errors += [module.HTTPError, module.StreamError]
    return tuple(errors)
