"""The base of the adapters that call a vendor SDK (anthropic, openai): one call, stream and error path.

A subclass says how to build its client, which SDK method creates a completion, how to turn the request into
that method's parameters and its answer into an `LLMResponse`, and how to collect a stream; the calls, the
sync/async twins and the mapping of SDK exceptions to `ProviderError` are written once, here.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Callable, Hashable, Iterator
from typing import Any, Protocol

from .._config import split_keys
from .._errors import ErrorKind, ProviderError
from .._http import bound_client
from .._pool import Endpoint, EndpointPool
from .._retry import kind_for_status, parse_retry_after
from .._types import LLMResponse
from ._base import MALFORMED, ChatRequest, Provider, StreamItem, server_message, transport_error_kind


def sdk_http_client(sdk: Any, asynchronous: bool) -> Any:
    """The HTTP client an SDK client gets: the SDK's own defaults (its httpx flavour, proxies from the environment,
    limits), redirects never followed (a key must not follow a redirect: httpx drops `Authorization` on another
    host but keeps Anthropic's `x-api-key`), and, for sync calls, the request deadline of `_http`."""
    if asynchronous:
        return sdk.DefaultAsyncHttpxClient(follow_redirects=False)
    return bound_client(sdk.DefaultHttpxClient(follow_redirects=False))


class StreamState(Protocol):
    """Collects one stream: `feed` yields text deltas, `finish` builds the final response."""

    def feed(self, event: Any) -> Iterator[str]: ...

    def finish(self) -> LLMResponse: ...


class SDKProvider(Provider):
    # An HTTP error status raised inside a 200 stream: classified by its status (True), or always a stream
    # failure (False: Anthropic's SSE `error` events carry the status of the event, not of the request).
    status_errors_in_stream = True

    def __init__(self, *, api_key: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        keys = split_keys(api_key)
        if not keys:
            raise ValueError(f"{type(self).__name__} needs an API key")
        # One endpoint per key when there are several: a rejected or rate-limited key hands over to the next.
        self.pool = EndpointPool(kwargs["base_urls"], kwargs["breaker"], keys)
        self._secrets += keys

    def _client_key(self, endpoint: Endpoint) -> Hashable:
        return (endpoint.url, endpoint.credential)  # an SDK client is bound to its base URL and key

    # --- what a subclass provides ----------------------------------------------------------------------
    @abc.abstractmethod
    def _create(self, client: Any) -> Callable[..., Any]:
        """The SDK method that creates a completion (sync or async, as the client is)."""

    @abc.abstractmethod
    def _params(self, request: ChatRequest, budget: float, stream: bool) -> dict[str, Any]: ...

    @abc.abstractmethod
    def _sdk_errors(self) -> tuple[type[Exception], ...]:
        """The exceptions the SDK and its transport raise (anything else is a bug, not a provider failure)."""

    @abc.abstractmethod
    def _response(self, answer: Any, request: ChatRequest) -> LLMResponse: ...

    @abc.abstractmethod
    def _stream_state(self, endpoint: Endpoint, request: ChatRequest) -> StreamState: ...

    def _call_errors(self) -> tuple[type[Exception], ...]:
        """What a call may raise that is the provider's doing: the SDK's errors, and the ValueError of its json.loads
        on a 200 body that is not JSON."""
        return (*self._sdk_errors(), ValueError)

    # --- errors ---------------------------------------------------------------------------------------------
    def _error(self, exc: Exception, endpoint: Endpoint, *, in_stream: bool = False) -> ProviderError:
        status = getattr(exc, "status_code", None)
        if isinstance(status, int) and status != 200 and (self.status_errors_in_stream or not in_stream):
            headers = getattr(getattr(exc, "response", None), "headers", None)
            # The SDKs' text is "Error code: 500 - {the whole body as a dict}"; the body's message is what matters.
            detail = server_message(getattr(exc, "body", None)) or server_message(str(exc))
            return self.error(
                f"HTTP {status}: {detail}",
                kind_for_status(status),
                endpoint,
                status=status,
                retry_after=parse_retry_after(headers),
            )
        kind = transport_error_kind(exc)
        if kind is ErrorKind.DEADLINE:
            return self.error("request deadline exceeded", kind, endpoint)
        if in_stream:
            detail = server_message(getattr(exc, "body", None)) or server_message(str(exc))
            return self.error(f"stream failed: {type(exc).__name__}: {detail}", ErrorKind.STREAM, endpoint)
        if kind is None and (status == 200 or isinstance(exc, ValueError) or "Validation" in type(exc).__name__):
            # A 200 the SDK could not read as an answer (HTML from a proxy, truncated JSON).
            return self.malformed(f"{type(exc).__name__}: {exc}", endpoint)
        fallback = ErrorKind.TIMEOUT if "Timeout" in type(exc).__name__ else ErrorKind.UNKNOWN
        return self.error(f"{type(exc).__name__}: {exc}", kind or fallback, endpoint)

    def _answer(self, answer: Any, request: ChatRequest, endpoint: Endpoint) -> LLMResponse:
        """The SDK's parsed answer as a response; an answer without a usable completion is the provider's failure."""
        try:
            response = self._response(answer, request)
        except MALFORMED as exc:  # the SDK builds its models without validation: fields may be missing or None
            raise self.malformed(f"{type(exc).__name__}: {exc}", endpoint) from None
        return self.usable(response, endpoint)

    # --- doctor -------------------------------------------------------------------------------------------
    def check(self, endpoint: Endpoint, timeout: float) -> None:
        """List the models with this endpoint's key, through the same client (proxy, redirects) as requests;
        raises ProviderError (kind AUTH for a rejected key)."""
        client = self._sync_client(endpoint)
        try:
            client.models.list(timeout=timeout)
        except self._call_errors() as exc:
            raise self._error(exc, endpoint) from None

    # --- calls ----------------------------------------------------------------------------------------------
    def complete(self, request: ChatRequest, endpoint: Endpoint, budget: float) -> LLMResponse:
        create = self._create(self._sync_client(endpoint))
        params = self._params(request, budget, False)
        try:
            answer = create(**params)
        except self._call_errors() as exc:
            raise self._error(exc, endpoint) from exc
        return self._answer(answer, request, endpoint)

    async def acomplete(self, request: ChatRequest, endpoint: Endpoint, budget: float) -> LLMResponse:
        create = self._create(await self._async_client(endpoint))
        params = self._params(request, budget, False)
        try:
            answer = await create(**params)
        except self._call_errors() as exc:
            raise self._error(exc, endpoint) from exc
        return self._answer(answer, request, endpoint)

    def stream(self, request: ChatRequest, endpoint: Endpoint, budget: float) -> Iterator[StreamItem]:
        create = self._create(self._sync_client(endpoint))
        params = self._params(request, budget, True)
        errors = self._sdk_errors()
        try:
            events = create(**params)
        except errors as exc:
            raise self._error(exc, endpoint) from exc
        state = self._stream_state(endpoint, request)
        try:
            with events:
                for event in events:
                    yield from state.feed(event)
        except errors as exc:
            raise self._error(exc, endpoint, in_stream=True) from exc
        except MALFORMED as exc:
            raise self.error(
                f"malformed stream event: {type(exc).__name__}: {exc}", ErrorKind.STREAM, endpoint
            ) from None
        yield self.usable(state.finish(), endpoint)

    async def astream(self, request: ChatRequest, endpoint: Endpoint, budget: float) -> AsyncIterator[StreamItem]:
        create = self._create(await self._async_client(endpoint))
        params = self._params(request, budget, True)
        errors = self._sdk_errors()
        try:
            events = await create(**params)
        except errors as exc:
            raise self._error(exc, endpoint) from exc
        state = self._stream_state(endpoint, request)
        try:
            async with events:
                async for event in events:
                    for item in state.feed(event):
                        yield item
        except errors as exc:
            raise self._error(exc, endpoint, in_stream=True) from exc
        except MALFORMED as exc:
            raise self.error(
                f"malformed stream event: {type(exc).__name__}: {exc}", ErrorKind.STREAM, endpoint
            ) from None
        yield self.usable(state.finish(), endpoint)
