"""LLMRouter: the Cortex-compatible router with a finite fallback chain, owned retries, breakers.

One request walks an explicit list of (provider, endpoint) targets under one deadline. `_Walk` holds
the whole policy (retry or fall back or fail, breaker bookkeeping, attempt log) and does no I/O; the
sync and async entry points are thin loops that call the provider and sleep where `_Walk` says.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from . import _defaults
from ._checks import (
    check_count,
    check_instance,
    checked_max_tokens,
    checked_messages,
    checked_num_ctx,
    checked_task_type,
    checked_temperature,
    checked_think,
    checked_tool_choice,
    checked_tools,
)
from ._config import BreakerPolicy, RetryPolicy, Settings, Timeouts, parse_provider, redact_url
from ._errors import (
    AllProvidersFailed,
    ConfigError,
    CortexLLMError,
    ErrorKind,
    LocalOnlyViolation,
    ProviderError,
    StreamInterrupted,
)
from ._http import deadline
from ._pool import Endpoint
from ._registry import CLOUD_HOSTS, PROVIDERS, SPECS
from ._retry import backoff_delay
from ._structured import parse, structure_of
from ._types import Attempt, Embeddings, LLMProvider, LLMResponse, Message, StreamChunk, TaskType, Tool
from .providers._base import ChatRequest, Provider, Reasoning, StreamItem, ToolChoice
from .providers.ollama import OllamaProvider, is_cloud_model

if TYPE_CHECKING:
    from ._telemetry import Telemetry

T = TypeVar("T")
logger = logging.getLogger("cortex_client")
# A library leaves output to the application: without this, Python's last-resort handler would print
# fallback warnings to stderr of every program that has not configured logging.
logger.addHandler(logging.NullHandler())


@dataclass(frozen=True)
class RoutingDecision:
    provider: LLMProvider
    task_type: TaskType
    reasoning: str
    confidence: float
    chain: tuple[LLMProvider, ...] = ()  # the whole order: provider first, then the fallbacks


@dataclass
class _Step:
    provider: Provider
    endpoint: Endpoint
    delay: float  # sleep this long before calling (a retry's backoff)
    budget: float  # seconds left of the request deadline at call time
    retries: int = 0  # how many times this target was already retried for this request
    started: float = 0.0


class _Walk:
    """One request's way along the chain. Pure policy: the callers do the I/O and the sleeping."""

    def __init__(self, chain: tuple[Provider, ...], retry: RetryPolicy, breaker: BreakerPolicy, deadline: float):
        self._chain = iter(chain)
        self._endpoints: Iterator[Endpoint] = iter(())
        self._provider: Provider | None = None
        self._retry = retry
        self._breaker = breaker
        self.deadline_at = time.monotonic() + deadline
        self._pending: _Step | None = None  # a retry of the target that just failed
        self.attempts: list[Attempt] = []
        self.last_error: ProviderError | None = None
        self.upstream_calls = 0
        self.deadline_hit = False
        # The request's only endpoint (one provider, one URL): an open circuit there gets an early probe.
        self._only = chain[0].pool.endpoints[0] if len(chain) == 1 and len(chain[0].pool.endpoints) == 1 else None

    def next(self) -> _Step | None:
        """The next call to make, or None when the chain is exhausted or the deadline passed."""
        remaining = self.deadline_at - time.monotonic()
        if self._pending is not None:
            step, self._pending = self._pending, None
            if step.delay < remaining:
                step.budget = remaining - step.delay
                return self._called(step)
            self.deadline_hit = True
            return None
        while True:
            endpoint = next(self._endpoints, None)
            if endpoint is None:
                provider = next(self._chain, None)
                if provider is None:
                    return None
                self._provider = provider
                self._endpoints = iter(provider.pool.ordered())
                continue
            assert self._provider is not None
            if not endpoint.breaker.allow() and not (endpoint is self._only and endpoint.breaker.allow_early_probe()):
                self._log(self._provider, endpoint, f"skipped: circuit open ({endpoint.breaker.describe()})")
                continue
            if remaining <= 0:
                endpoint.breaker.release_probe()
                self.deadline_hit = True
                return None
            return self._called(_Step(self._provider, endpoint, 0.0, remaining))

    def _called(self, step: _Step) -> _Step:
        self.upstream_calls += 1
        step.started = time.monotonic()
        return step

    def succeeded(self, step: _Step) -> None:
        step.endpoint.breaker.record_success()
        self._log(step.provider, step.endpoint, "ok", seconds=time.monotonic() - step.started)

    def failed(self, step: _Step, error: ProviderError, *, output_started: bool = False) -> None:
        """Record a failed call; decide retry, fallback (return) or fail fast (raise)."""
        # The vendor exception this was made from may quote a key; the error's own text is redacted. Drop the
        # chain so tracebacks and logger.exception() show only that.
        error.__cause__ = error.__context__ = None
        error.__suppress_context__ = True
        self.last_error = error
        kind, endpoint = error.kind, step.endpoint
        self._log(step.provider, endpoint, kind.value, error, time.monotonic() - step.started)
        if kind is ErrorKind.BAD_REQUEST:
            endpoint.breaker.release_probe()  # the server answered; the request was at fault
            raise error
        if kind is ErrorKind.CONTEXT and not output_started:
            # The endpoint answered as configured; its other endpoints run the same model: next provider.
            endpoint.breaker.release_probe()
            self._endpoints = iter(())
            logger.warning("%s: %s; trying the next provider", step.provider.kind.value, error)
            return
        if kind is ErrorKind.DEADLINE:  # no verdict on the endpoint; no time left for anything else
            endpoint.breaker.release_probe()
            self.deadline_hit = True
            self._chain, self._endpoints = iter(()), iter(())
            if output_started:
                raise StreamInterrupted(
                    f"stream cut by the request deadline after output had started: {error}",
                    provider=error.provider,
                    kind=kind,
                    endpoint=error.endpoint,
                )
            return
        if output_started:
            endpoint.breaker.record_failure(kind.value)
            raise StreamInterrupted(
                f"stream failed after output had started: {error}",
                provider=error.provider,
                kind=kind,
                status=error.status,
                endpoint=error.endpoint,
            ) from error
        other_keys = any(e.credential != endpoint.credential for e in step.provider.pool.endpoints)
        if kind is ErrorKind.AUTH:
            # The key is bad wherever it is used: disable it, and move on to the provider's next key if it has
            # a key list, else to the next provider.
            for each in step.provider.pool.endpoints:
                if each.credential == endpoint.credential:
                    each.breaker.trip(self._breaker.auth_disable, f"HTTP {error.status}: credentials rejected")
            if not other_keys:
                self._endpoints = iter(())
            return
        if kind is ErrorKind.RATE_LIMIT and other_keys:
            # The next key has its own limits: use it now rather than wait for this one.
            endpoint.breaker.trip(error.retry_after or self._breaker.cooldown, "rate limited")
            logger.warning("%s rate limited; trying the next key", endpoint.label)
            return
        if kind.retryable and step.retries < self._retry.max_retries:
            delay = backoff_delay(step.retries, self._retry, error.retry_after)
            if delay is not None and delay < self.deadline_at - time.monotonic():
                self._pending = _Step(step.provider, endpoint, delay, 0.0, step.retries + 1)
                logger.debug("retrying %s in %.2fs after %s", endpoint.label, delay, kind.value)
                return
        if kind is ErrorKind.RATE_LIMIT and error.retry_after:
            endpoint.breaker.trip(error.retry_after, "rate limited")
        else:
            endpoint.breaker.record_failure(kind.value, open_now=kind is ErrorKind.CONNECT)
        # Every cross-endpoint or cross-provider move is logged: a fallback must never be silent.
        logger.warning(
            "%s @ %s failed (%s); trying the next target",
            step.provider.kind.value,
            endpoint.label,
            error,
        )

    def deadline_error(self, step: _Step) -> ProviderError:
        return step.provider.error("request deadline exceeded", ErrorKind.DEADLINE, step.endpoint)

    def abandoned(self, step: _Step) -> None:
        """The call ended without a verdict on the endpoint (caller's error, stream closed early)."""
        step.endpoint.breaker.release_probe()

    def _log(
        self,
        provider: Provider,
        endpoint: Endpoint,
        outcome: str,
        error: ProviderError | None = None,
        seconds: float = 0.0,
    ) -> None:
        self.attempts.append(
            Attempt(
                provider=provider.kind,
                endpoint=endpoint.label,
                outcome=outcome,
                status=error.status if error else None,
                error=str(error) if error else None,
                seconds=seconds,
            )
        )

    def exhausted(self, hints: list[str] | None = None) -> AllProvidersFailed:
        why = "request deadline exceeded" if self.deadline_hit else "all providers failed"
        error = AllProvidersFailed(f"{why} after {self.upstream_calls} upstream call(s)", self.attempts, hints or ())
        # The last provider's own error is the cause (as `raise ... from` would make it).
        error.__cause__, error.__suppress_context__ = self.last_error, True
        return error


def _num_ctx_for(given: int | Mapping[str, int] | None, model: str) -> int | None:
    """Ollama's num_ctx for `model`: one number for every model, or a model id -> num_ctx mapping."""
    value = given.get(model) if isinstance(given, Mapping) else given
    return checked_num_ctx(value, "ollama_num_ctx")


def _default_max_tokens(given: int | Mapping[LLMProvider, int] | None) -> dict[LLMProvider, int]:
    if given is None:
        return dict(_defaults.DEFAULT_MAX_TOKENS)
    if isinstance(given, Mapping):
        chosen = {**_defaults.DEFAULT_MAX_TOKENS}
        for provider, value in given.items():
            if not isinstance(provider, LLMProvider):
                raise ConfigError(f"default_max_tokens keys must be LLMProviders, got {provider!r}")
            chosen[provider] = value
    else:
        chosen = dict.fromkeys(_defaults.DEFAULT_MAX_TOKENS, given)
    for provider, value in chosen.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"default_max_tokens for {provider.value} must be a positive whole number, got {value!r}")
    return chosen


def _step_at(at: float, timeouts: Timeouts, started: bool) -> tuple[float, float | None]:
    """When the next stream item must have come: the first token's or the idle limit, never after the deadline."""
    limit = timeouts.stream_idle if started else timeouts.first_token
    return (min(at, time.monotonic() + limit), limit) if limit else (at, None)


def _stalled(step: _Step, limit: float, started: bool) -> ProviderError:
    """The first token or the next one did not come in time: a timeout of this endpoint (retry, then fall back before
    the first token; StreamInterrupted after it), not the request's deadline."""
    what = f"no token for {limit:g} s (stream idle)" if started else f"no first token within {limit:g} s"
    return ProviderError(what, provider=step.provider.kind, kind=ErrorKind.TIMEOUT, endpoint=step.endpoint.label)


def _bounded(items: Iterator[StreamItem], at: float, timeouts: Timeouts, step: _Step) -> Iterator[StreamItem]:
    """A provider stream whose every step runs under the request deadline (see _http), and under the first-token
    or idle limit of `timeouts` where they are nearer."""
    started = False
    try:
        while True:
            step_at, limit = _step_at(at, timeouts, started)
            try:
                with deadline(step_at):
                    item = next(items, None)
            except ProviderError as error:
                if limit is not None and error.kind is ErrorKind.DEADLINE and step_at < at:
                    raise _stalled(step, limit, started) from None
                raise
            if item is None:
                return
            started = started or isinstance(item, str)
            yield item
    finally:
        items.close()  # type: ignore[attr-defined]


async def _within(at: float, awaitable: Awaitable[T]) -> T:
    """`await awaitable`, cancelled at `at` (monotonic) with asyncio.TimeoutError, the builtin one since 3.11."""
    import asyncio  # noqa: PLC0415

    if sys.version_info >= (3, 11):
        async with asyncio.timeout(at - time.monotonic()):
            return await awaitable
    return await asyncio.wait_for(awaitable, at - time.monotonic())


async def _abounded(
    items: AsyncIterator[StreamItem], walk: _Walk, step: _Step, timeouts: Timeouts
) -> AsyncIterator[StreamItem]:
    import asyncio  # noqa: PLC0415

    started = False
    try:
        while True:
            step_at, limit = _step_at(walk.deadline_at, timeouts, started)
            try:
                item = await _within(step_at, anext(items))
            except StopAsyncIteration:
                return
            except asyncio.TimeoutError:
                if limit is not None and step_at < walk.deadline_at:
                    raise _stalled(step, limit, started) from None
                raise walk.deadline_error(step) from None
            started = started or isinstance(item, str)
            yield item
    finally:
        await items.aclose()  # type: ignore[attr-defined]


class LLMRouter:
    """Routes chat completions to Ollama, Claude, Kimi K2 or OpenAI with a bounded fallback chain.

    Arguments left as None come from configuration (see `Settings`); `from_env()` is the same as
    `LLMRouter()`. Construction does no I/O and imports no SDK.
    """

    ROUTING_RULES: Mapping[TaskType, LLMProvider] = _defaults.ROUTING_RULES

    def __init__(  # noqa: PLR0917 - positional order of the original Cortex API
        self,
        claude_api_key: str | None = None,
        kimi_api_key: str | None = None,
        openai_api_key: str | None = None,
        ollama_base_url: str | None = None,
        ollama_model: str | None = None,
        openai_model: str | None = None,
        default_provider: LLMProvider | str | None = None,
        enable_fallback: bool = True,
        track_costs: bool = True,
        local_only: bool | None = None,
        *,
        claude_model: str | None = None,
        kimi_model: str | None = None,
        claude_base_url: str | None = None,
        kimi_base_url: str | None = None,
        openai_base_url: str | None = None,
        settings: Settings | None = None,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        breaker: BreakerPolicy | None = None,
        routing: Mapping[TaskType, LLMProvider] | None = None,
        local_first: Collection[TaskType] | None = None,
        models: Mapping[LLMProvider, str] | None = None,
        prices: Mapping[str, tuple[float, float]] | None = None,
        max_connections: int | None = None,
        default_max_tokens: int | Mapping[LLMProvider, int] | None = None,
        ollama_num_ctx: int | Mapping[str, int] | None = None,
        on_truncation: str = "fallback",
        embedding_models: Mapping[LLMProvider, str] | None = None,
        telemetry: bool = False,
        tracer_provider: Any = None,
        meter_provider: Any = None,
    ) -> None:
        arguments = {
            "ANTHROPIC_API_KEY": claude_api_key,
            "MOONSHOT_API_KEY": kimi_api_key,
            "OPENAI_API_KEY": openai_api_key,
            "OLLAMA_BASE_URL": ollama_base_url,
            "OLLAMA_MODEL": ollama_model,
            "OPENAI_MODEL": openai_model,
            "CLAUDE_MODEL": claude_model,
            "KIMI_MODEL": kimi_model,
            "ANTHROPIC_BASE_URL": claude_base_url,
            "KIMI_BASE_URL": kimi_base_url,
            "OPENAI_BASE_URL": openai_base_url,
        }
        # Value objects given as something else (a dict of their fields, say) would fail at the first request with
        # an AttributeError; say which argument is wrong instead.
        for name, value, cls in (
            ("settings", settings, Settings),
            ("timeouts", timeouts, Timeouts),
            ("retry", retry, RetryPolicy),
            ("breaker", breaker, BreakerPolicy),
        ):
            check_instance(name, value, cls)
        if max_connections is not None:
            check_count("LLMRouter", "max_connections", max_connections, minimum=1)
        if on_truncation not in ("fallback", "raise"):
            raise ConfigError(f'on_truncation must be "fallback" or "raise", got {on_truncation!r}')
        self.on_truncation = on_truncation
        self.embedding_models: Mapping[LLMProvider, str] = {**_defaults.EMBEDDING_MODELS, **(embedding_models or {})}
        # OpenTelemetry (the `otel` extra) only when asked for: otherwise nothing of it is imported.
        self._telemetry: Telemetry | None = None
        if telemetry or tracer_provider is not None or meter_provider is not None:
            from ._telemetry import Telemetry  # noqa: PLC0415

            self._telemetry = Telemetry(tracer_provider, meter_provider)
        self.settings = (settings or Settings.load()).merged(arguments)
        s = self.settings
        if isinstance(default_provider, str):
            default_provider = parse_provider(default_provider, "default_provider")
        self.default_provider: LLMProvider | None = default_provider or s.provider
        # Configuration can switch local-only on; an argument can only add to it, never lift it.
        self.local_only = s.local_only or bool(local_only)
        self.enable_fallback = enable_fallback
        self.track_costs = track_costs
        self.timeouts = timeouts or Timeouts()
        self.retry = retry or RetryPolicy()
        self.breaker = breaker or BreakerPolicy()
        self.routing: Mapping[TaskType, LLMProvider] = {**self.ROUTING_RULES, **(routing or {})}
        self.local_first: frozenset[TaskType] = frozenset(_defaults.LOCAL_FIRST if local_first is None else local_first)
        # Local-first needs an Ollama somebody set up: its URL or model configured, not just the default URL.
        self.ollama_configured = any(k in s.sources for k in ("OLLAMA_BASE_URL", "OLLAMA_HOST", "OLLAMA_MODEL"))
        self.prices: Mapping[str, tuple[float, float]] = {**_defaults.PRICES, **(prices or {})}
        chosen = {**_defaults.DEFAULT_MODELS, **(models or {}), **s.models}
        self.models: Mapping[LLMProvider, str] = chosen
        # The output bound of a request that gives no max_tokens, per provider (one number: every provider's).
        self.default_max_tokens: Mapping[LLMProvider, int] = _default_max_tokens(default_max_tokens)
        # Configuration this router does not use, said once (logging) and kept for `cortex-llm doctor`.
        self.warnings: list[str] = list(s.warnings)
        if self.local_only and self.default_provider not in (None, LLMProvider.OLLAMA):
            # Building must not fail over a default the host application may have set for other reasons; only
            # an explicit force_provider to the cloud is refused (LocalOnlyViolation at the call).
            self.warnings.append(
                f"default provider {self.default_provider.value} is a cloud provider and local-only mode is on: "
                "every request goes to Ollama"
            )
            self.default_provider = LLMProvider.OLLAMA
        for warning in self.warnings:
            logger.warning("%s", warning)
        if self.local_only:
            for url in s.ollama_base_urls:
                host = (urlsplit(url).hostname or "").lower()
                if host in CLOUD_HOSTS or host.endswith(tuple("." + h for h in CLOUD_HOSTS)):
                    raise LocalOnlyViolation(
                        f"Ollama endpoint {redact_url(url)} is a cloud service ({host}); refused in local-only mode"
                    )
        if self.local_only and is_cloud_model(chosen[LLMProvider.OLLAMA]):
            raise LocalOnlyViolation(
                f"Ollama model {chosen[LLMProvider.OLLAMA]!r} runs on ollama.com; refused in local-only mode"
            )

        # One adapter per configured provider (the registry's order); cloud adapters do not even exist in
        # local-only mode, and a cloud provider without a key is not configured.
        self.providers: dict[LLMProvider, Provider] = {}
        for spec in PROVIDERS:
            api_key = s.api_keys.get(spec.kind)
            if not spec.is_local and (self.local_only or not api_key):
                continue
            base_urls = s.ollama_base_urls if spec.is_local else (s.base_urls.get(spec.kind, spec.default_base_url),)
            self.providers[spec.kind] = spec.build(
                model=chosen[spec.kind],
                base_urls=base_urls,
                api_key=api_key,
                local_only=self.local_only,
                api=s.ollama_api,
                timeouts=self.timeouts,
                breaker=self.breaker,
                max_connections=max_connections or _defaults.MAX_CONNECTIONS,
                default_max_tokens=self.default_max_tokens[spec.kind],
                num_ctx=_num_ctx_for(ollama_num_ctx, chosen[spec.kind]),
                on_truncation=on_truncation,
            )

        self._chains: dict[tuple[TaskType, LLMProvider | None], tuple[Provider, ...]] = {}
        self._stats_lock = threading.Lock()
        self._stats = self._empty_stats()
        self._warned_prices: set[str] = set()
        self._max_concurrent = 10
        self._closed = False

    @property
    def ollama(self) -> OllamaProvider:
        """The Ollama adapter, also an admin surface: version(), list_models(), pull(name)."""
        provider = self.providers[LLMProvider.OLLAMA]
        assert isinstance(provider, OllamaProvider)
        return provider

    @classmethod
    def from_env(cls, **kwargs: Any) -> LLMRouter:
        """A router configured from the environment and the `.env` chain (the real files)."""
        return cls(**kwargs)

    def __repr__(self) -> str:
        configured = ", ".join(p.value for p in self.providers)
        return (
            f"LLMRouter(providers=[{configured}], default_provider="
            f"{self.default_provider.value if self.default_provider else None}, local_only={self.local_only})"
        )

    # --- routing ---------------------------------------------------------------------------------------
    def route_task(self, task_type: TaskType, force_provider: LLMProvider | str | None = None) -> RoutingDecision:
        """Where a request of this type goes first, and why; `chain` is the whole fallback order. The reasoning
        and confidence read as the original router's where the situation is the same."""
        chain = self._chain(checked_task_type(task_type), force_provider)
        first = chain[0].kind
        route = f"{task_type.value} → {first.value}"
        if force_provider:
            reasoning, confidence = "Forced by caller", 1.0
        elif self.local_only:
            reasoning, confidence = f"{route} (local-only mode)", 1.0
        elif self.default_provider:
            reasoning, confidence = f"{route} (default provider)", 1.0
        elif self._is_local_first(task_type):
            reasoning, confidence = f"{route} (local-first: Ollama is configured)", 0.95
        elif first is self.routing.get(task_type):
            reasoning, confidence = f"{route} (optimal for this task)", 0.95
        else:
            preferred = self.routing.get(task_type, LLMProvider.CLAUDE).value
            reasoning, confidence = f"{route} ({preferred} not configured: fallback)", 0.95
        return RoutingDecision(first, task_type, reasoning, confidence, tuple(p.kind for p in chain))

    def _is_local_first(self, task_type: TaskType) -> bool:
        return self.ollama_configured and task_type in self.local_first

    def _chain(self, task_type: TaskType, force_provider: LLMProvider | str | None) -> tuple[Provider, ...]:
        if isinstance(force_provider, str) and not isinstance(force_provider, LLMProvider):
            force_provider = parse_provider(force_provider, "force_provider")  # "ollama", "kimi", ...
        elif force_provider is not None and not isinstance(force_provider, LLMProvider):
            raise ConfigError(
                f"force_provider must be an LLMProvider or its name, not a {type(force_provider).__name__}"
            )
        key = (task_type, force_provider)
        chain = self._chains.get(key)
        if chain is None:
            chain = self._chains[key] = self._build_chain(task_type, force_provider)
        return chain

    def _build_chain(self, task_type: TaskType, force_provider: LLMProvider | None) -> tuple[Provider, ...]:
        if force_provider is not None:
            if self.local_only and force_provider.is_cloud:
                raise LocalOnlyViolation(f"{force_provider.value} is a cloud provider; local-only mode is on")
            if force_provider not in self.providers:
                key = SPECS[force_provider].key_env
                raise ConfigError(f"{force_provider.value} is not configured (no API key): set {key}")
            return (self.providers[force_provider],)
        if self.local_only:
            return (self.providers[LLMProvider.OLLAMA],)
        primary = self.default_provider or self.routing.get(task_type, LLMProvider.CLAUDE)
        order = (primary, *_defaults.FALLBACK_ORDER[primary])
        if self.default_provider is None and self._is_local_first(task_type):
            order = (LLMProvider.OLLAMA, *(p for p in order if p is not LLMProvider.OLLAMA))
        if not self.enable_fallback:
            order = order[:1]
        chain = tuple(self.providers[p] for p in order if p in self.providers)
        if not chain:
            raise ConfigError(f"{order[0].value} is not configured and fallback is disabled")
        return chain

    # --- requests ---------------------------------------------------------------------------------------
    def _start(
        self,
        messages: list[Message],
        task_type: TaskType,
        force_provider: LLMProvider | str | None,
        *,
        temperature: float,
        max_tokens: int | None,
        tools: list[Tool] | None,
        tool_choice: ToolChoice,
        num_ctx: int | None = None,
        json_schema: Any = None,
        think: bool | str | None = None,
    ) -> tuple[ChatRequest, _Walk]:
        if self._closed:
            # A closed router would quietly build new HTTP clients (and leak them): say so instead.
            raise ConfigError(
                "this LLMRouter is closed (close(), aclose() or the end of its with block); make a new one"
            )
        # Every argument is checked before the chain is walked: a caller's mistake is a ConfigError, never a call.
        messages = checked_messages(messages)
        tools = checked_tools(tools)
        request = ChatRequest(
            messages,
            checked_temperature(temperature),
            checked_max_tokens(max_tokens),
            tools,
            checked_tool_choice(tool_choice, tools),
            checked_num_ctx(num_ctx, "num_ctx"),
            structure_of(json_schema),
            checked_think(think),
        )
        if request.structure is not None and tools:
            raise ConfigError("json_schema and tools cannot be given together (Claude's structured output is a tool)")
        chain = self._chain(checked_task_type(task_type), force_provider)
        return request, _Walk(chain, self.retry, self.breaker, self.timeouts.deadline)

    def complete(  # noqa: PLR0917 - the original API is positional
        self,
        messages: list[Message],
        task_type: TaskType = TaskType.USER_CHAT,
        force_provider: LLMProvider | str | None = None,
        temperature: float = 0.7,
        max_tokens: int | None = None,
        tools: list[Tool] | None = None,
        tool_choice: ToolChoice = None,
        *,
        num_ctx: int | None = None,
        json_schema: Any = None,
        think: bool | str | None = None,
    ) -> LLMResponse:
        began = time.monotonic()
        request, walk = self._start(
            messages,
            task_type,
            force_provider,
            temperature=temperature,
            max_tokens=max_tokens,
            tools=tools,
            tool_choice=tool_choice,
            num_ctx=num_ctx,
            json_schema=json_schema,
            think=think,
        )
        while (step := walk.next()) is not None:
            try:  # the sleep too: an interrupt while waiting to retry a probe must still release it
                if step.delay:
                    time.sleep(step.delay)
                with step.endpoint.busy(), deadline(walk.deadline_at):
                    response = self._structured(
                        step.provider.complete(request, step.endpoint, step.budget), request, step
                    )
            except ProviderError as error:
                self._failed(walk, step, error)
                continue
            except BaseException:
                walk.abandoned(step)
                raise
            walk.succeeded(step)
            return self._finish(response, walk, began)
        raise self._exhausted(walk, began, "chat")

    async def acomplete(  # noqa: PLR0917 - the original API is positional
        self,
        messages: list[Message],
        task_type: TaskType = TaskType.USER_CHAT,
        force_provider: LLMProvider | str | None = None,
        temperature: float = 0.7,
        max_tokens: int | None = None,
        tools: list[Tool] | None = None,
        tool_choice: ToolChoice = None,
        *,
        num_ctx: int | None = None,
        json_schema: Any = None,
        think: bool | str | None = None,
    ) -> LLMResponse:
        import asyncio  # noqa: PLC0415 - asyncio is heavy to import and only needed here

        began = time.monotonic()
        request, walk = self._start(
            messages,
            task_type,
            force_provider,
            temperature=temperature,
            max_tokens=max_tokens,
            tools=tools,
            tool_choice=tool_choice,
            num_ctx=num_ctx,
            json_schema=json_schema,
            think=think,
        )
        while (step := walk.next()) is not None:
            try:
                if step.delay:
                    await asyncio.sleep(step.delay)
                with step.endpoint.busy():
                    try:
                        response = await _within(
                            walk.deadline_at, step.provider.acomplete(request, step.endpoint, step.budget)
                        )
                        response = self._structured(response, request, step)
                    except asyncio.TimeoutError:
                        raise walk.deadline_error(step) from None
            except ProviderError as error:
                self._failed(walk, step, error)
                continue
            except BaseException:
                walk.abandoned(step)
                raise
            walk.succeeded(step)
            return self._finish(response, walk, began)
        raise self._exhausted(walk, began, "chat")

    # --- embeddings ---------------------------------------------------------------------------------------
    def _embed_start(self, texts: list[str], force_provider: LLMProvider | str | None) -> tuple[list[str], _Walk]:
        if self._closed:
            raise ConfigError(
                "this LLMRouter is closed (close(), aclose() or the end of its with block); make a new one"
            )
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            raise ConfigError("texts must be a non-empty list of strings")
        if force_provider is not None:
            chain = self._chain(TaskType.USER_CHAT, force_provider)  # the same checks: configured, local-only
        else:  # the local model first (free, private), then the cloud ones that have an embeddings API
            chain = tuple(p for p in self.providers.values() if p.supports_embeddings)
            if not self.enable_fallback:
                chain = chain[:1]
        if not chain[0].supports_embeddings:
            raise ConfigError(f"{chain[0].kind.value} has no embeddings API")
        return texts, _Walk(chain, self.retry, self.breaker, self.timeouts.deadline)

    def embed(self, texts: list[str], *, force_provider: LLMProvider | str | None = None) -> Embeddings:
        """One vector per text (Ollama /api/embed, else OpenAI's embeddings), with the fallback, deadline, breaker
        and stats of chat. Vectors of different models are not comparable: `result.model` says whose they are."""
        began = time.monotonic()
        texts, walk = self._embed_start(texts, force_provider)
        while (step := walk.next()) is not None:
            model = self.embedding_models[step.provider.kind]
            try:
                if step.delay:
                    time.sleep(step.delay)
                with step.endpoint.busy(), deadline(walk.deadline_at):
                    result = step.provider.embed(texts, model, step.endpoint, step.budget)
            except ProviderError as error:
                self._failed(walk, step, error)
                continue
            except BaseException:
                walk.abandoned(step)
                raise
            walk.succeeded(step)
            return self._embedded(result, walk, began)
        raise self._exhausted(walk, began, "embeddings")

    async def aembed(self, texts: list[str], *, force_provider: LLMProvider | str | None = None) -> Embeddings:
        """Async `embed`."""
        import asyncio  # noqa: PLC0415

        began = time.monotonic()
        texts, walk = self._embed_start(texts, force_provider)
        while (step := walk.next()) is not None:
            model = self.embedding_models[step.provider.kind]
            try:
                if step.delay:
                    await asyncio.sleep(step.delay)
                with step.endpoint.busy():
                    try:
                        result = await _within(
                            walk.deadline_at, step.provider.aembed(texts, model, step.endpoint, step.budget)
                        )
                    except asyncio.TimeoutError:
                        raise walk.deadline_error(step) from None
            except ProviderError as error:
                self._failed(walk, step, error)
                continue
            except BaseException:
                walk.abandoned(step)
                raise
            walk.succeeded(step)
            return self._embedded(result, walk, began)
        raise self._exhausted(walk, began, "embeddings")

    def _exhausted(self, walk: _Walk, began: float, operation: str) -> AllProvidersFailed:
        error = walk.exhausted(self._hints(walk.attempts))
        if self._telemetry is not None:
            provider = walk.attempts[0].provider if walk.attempts else None
            models = self.embedding_models if operation == "embeddings" else self.models
            self._telemetry.record(
                operation=operation,
                began=began,
                provider=provider,
                request_model=models.get(provider, "") if provider else "",
                attempts=walk.attempts,
                error=error,
            )
        return error

    def _count(self, provider: LLMProvider, cost: float, tokens: int, input_tokens: int, output_tokens: int) -> None:
        """One served request in the stats (chat and embeddings alike), when costs are tracked."""
        if not self.track_costs:
            return
        with self._stats_lock:
            self._stats["total_requests"] += 1
            self._stats["total_cost_usd"] += cost
            entry = self._stats["providers"][provider.value]
            entry["requests"] += 1
            entry["tokens"] += tokens
            entry["input_tokens"] += input_tokens
            entry["output_tokens"] += output_tokens
            entry["cost_usd"] += cost

    def _embedded(self, result: Embeddings, walk: _Walk, began: float) -> Embeddings:
        result.latency_seconds = time.monotonic() - began
        result.attempts = walk.attempts
        price = None if result.provider is LLMProvider.OLLAMA else self.prices.get(result.model)
        result.cost_usd = result.input_tokens * price[0] / 1_000_000 if price else 0.0
        self._count(result.provider, result.cost_usd, result.input_tokens, result.input_tokens, 0)
        if self._telemetry is not None:
            self._telemetry.record(
                operation="embeddings",
                began=began,
                provider=result.provider,
                request_model=self.embedding_models[result.provider],
                attempts=result.attempts,
                response_model=result.model,
                input_tokens=result.input_tokens,
                cost_usd=result.cost_usd,
            )
        return result

    def stream(  # noqa: PLR0917 - the original API is positional
        self,
        messages: list[Message],
        task_type: TaskType = TaskType.USER_CHAT,
        force_provider: LLMProvider | str | None = None,
        temperature: float = 0.7,
        max_tokens: int | None = None,
        tools: list[Tool] | None = None,
        tool_choice: ToolChoice = None,
        *,
        num_ctx: int | None = None,
        think: bool | str | None = None,
    ) -> Iterator[StreamChunk]:
        """Yield text deltas, then one final chunk with the full response. Falls back only before the
        first text was yielded; a failure after that raises StreamInterrupted."""
        began = time.monotonic()
        request, walk = self._start(
            messages,
            task_type,
            force_provider,
            temperature=temperature,
            max_tokens=max_tokens,
            tools=tools,
            tool_choice=tool_choice,
            num_ctx=num_ctx,
            think=think,
        )
        while (step := walk.next()) is not None:
            output_started = False
            response: LLMResponse | None = None
            try:
                if step.delay:
                    time.sleep(step.delay)
                with step.endpoint.busy():
                    if self.timeouts.first_token:  # build the client (an SDK import: seconds) before the clock
                        step.provider._sync_client(step.endpoint)
                    items = step.provider.stream(request, step.endpoint, step.budget)
                    for item in _bounded(items, walk.deadline_at, self.timeouts, step):
                        if isinstance(item, Reasoning):
                            output_started = True
                            yield StreamChunk(reasoning=str(item))
                        elif isinstance(item, str):
                            output_started = True
                            yield StreamChunk(text=item)
                        else:
                            response = item
            except ProviderError as error:
                self._failed(walk, step, error, output_started=output_started)
                continue
            except BaseException:  # includes GeneratorExit when the consumer stops reading
                walk.abandoned(step)
                raise
            assert response is not None  # providers end every stream with a response or raise
            walk.succeeded(step)
            yield StreamChunk(response=self._finish(response, walk, began))
            return
        raise self._exhausted(walk, began, "chat")

    async def astream(  # noqa: PLR0917 - the original API is positional
        self,
        messages: list[Message],
        task_type: TaskType = TaskType.USER_CHAT,
        force_provider: LLMProvider | str | None = None,
        temperature: float = 0.7,
        max_tokens: int | None = None,
        tools: list[Tool] | None = None,
        tool_choice: ToolChoice = None,
        *,
        num_ctx: int | None = None,
        think: bool | str | None = None,
    ) -> AsyncIterator[StreamChunk]:
        """Async `stream`."""
        import asyncio  # noqa: PLC0415

        began = time.monotonic()
        request, walk = self._start(
            messages,
            task_type,
            force_provider,
            temperature=temperature,
            max_tokens=max_tokens,
            tools=tools,
            tool_choice=tool_choice,
            num_ctx=num_ctx,
            think=think,
        )
        while (step := walk.next()) is not None:
            output_started = False
            response: LLMResponse | None = None
            try:
                if step.delay:
                    await asyncio.sleep(step.delay)
                with step.endpoint.busy():
                    if self.timeouts.first_token:  # build the client (an SDK import: seconds) before the clock
                        await step.provider._async_client(step.endpoint)
                    items = step.provider.astream(request, step.endpoint, step.budget)
                    async for item in _abounded(items, walk, step, self.timeouts):
                        if isinstance(item, Reasoning):
                            output_started = True
                            yield StreamChunk(reasoning=str(item))
                        elif isinstance(item, str):
                            output_started = True
                            yield StreamChunk(text=item)
                        else:
                            response = item
            except ProviderError as error:
                self._failed(walk, step, error, output_started=output_started)
                continue
            except BaseException:  # includes GeneratorExit when the consumer stops reading
                walk.abandoned(step)
                raise
            assert response is not None
            walk.succeeded(step)
            yield StreamChunk(response=self._finish(response, walk, began))
            return
        raise self._exhausted(walk, began, "chat")

    async def complete_batch(
        self, requests: list[dict[str, Any]], max_concurrent: int | None = None, *, raise_errors: bool = False
    ) -> list[LLMResponse]:
        """Run `acomplete(**request)` for each request, at most `max_concurrent` at a time; results keep the input
        order. A failed request's slot is, as in the original, an `LLMResponse` with content `"Error: ..."`, model
        `"error"`, zero tokens and cost, and the exception in `.error`; every other slot keeps its result. With
        `raise_errors=True` the first failure (in input order) is raised once every request has finished."""
        import asyncio  # noqa: PLC0415

        limit = asyncio.Semaphore(max_concurrent or self._max_concurrent)

        async def one(kwargs: dict[str, Any]) -> LLMResponse:
            began = time.monotonic()
            async with limit:
                try:
                    return await self.acomplete(**kwargs)
                except Exception as error:  # one request's failure, whatever it is, stays in its slot
                    return self._failed_slot(kwargs, error, time.monotonic() - began)

        results = list(await asyncio.gather(*(one(r) for r in requests)))
        if raise_errors:
            for result in results:
                if result.error is not None:
                    raise result.error
        return results

    def _failed_slot(self, request: dict[str, Any], error: Exception, seconds: float) -> LLMResponse:
        attempts: list[Attempt] = list(getattr(error, "attempts", []))
        if attempts:
            provider = attempts[-1].provider
        elif isinstance(error, ProviderError):  # one provider's answer ended the request (e.g. a 400: no fallback)
            provider = error.provider
        else:  # refused before any call (e.g. a provider without a key): name the one it was meant for
            provider = self._meant_for(request)
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        return LLMResponse(
            content=f"Error: {first_line}",
            provider=provider,
            model="error",
            tokens_used=0,
            cost_usd=0.0,
            latency_seconds=seconds,
            attempts=attempts,
            error=error,
        )

    @staticmethod
    def _structured(response: LLMResponse, request: ChatRequest, step: _Step) -> LLMResponse:
        """A structured answer parsed and checked against its schema; one that does not match is the provider's
        failure (a malformed answer: retried, then the next provider answers)."""
        if request.structure is None:
            return response
        parsed, problem = parse(response.content, request.structure)
        if problem is not None:
            raise ProviderError(
                f"malformed answer: does not match the schema: {problem}",
                provider=step.provider.kind,
                kind=ErrorKind.SERVER,
                status=200,
                endpoint=step.endpoint.label,
            )
        response.parsed = parsed
        return response

    def _meant_for(self, request: dict[str, Any]) -> LLMProvider:
        """The provider a request that failed before any call would have gone to first."""
        forced = request.get("force_provider")
        if isinstance(forced, LLMProvider):
            return forced
        try:
            return self._chain(checked_task_type(request.get("task_type", TaskType.USER_CHAT)), forced)[0].kind
        except (CortexLLMError, TypeError, ValueError):  # the request itself is what was wrong
            return self.default_provider or LLMProvider.CLAUDE

    def set_rate_limit(self, max_concurrent: int = 10) -> None:
        if max_concurrent < 1:
            raise ConfigError(f"max_concurrent must be positive, got {max_concurrent}")
        self._max_concurrent = max_concurrent

    # --- costs and stats --------------------------------------------------------------------------------
    def _finish(self, response: LLMResponse, walk: _Walk, began: float) -> LLMResponse:
        response.latency_seconds = time.monotonic() - began
        response.attempts = walk.attempts
        response.cost_usd = self._cost(response)
        if len(walk.attempts) > 1:
            logger.info("served by %s after %d attempt(s)", response.provider.value, len(walk.attempts))
        self._count(
            response.provider, response.cost_usd, response.tokens_used, response.input_tokens, response.output_tokens
        )
        if self._telemetry is not None:
            self._telemetry.record(
                operation="chat",
                began=began,
                provider=response.provider,
                request_model=self.models[response.provider],
                attempts=walk.attempts,
                response_model=response.model,
                input_tokens=response.input_tokens,
                output_tokens=response.output_tokens,
                finish_reason=response.finish_reason,
                cost_usd=response.cost_usd,
            )
        return response

    def _hints(self, attempts: list[Attempt]) -> list[str]:
        """What the caller can do about the failures in `attempts`: an error should say what to do, not only what
        happened."""
        hints: list[str] = []
        seen = {(a.provider, a.outcome) for a in attempts}
        ollama = LLMProvider.OLLAMA
        if (ollama, "connect") in seen or any(
            a.provider is ollama and a.outcome.startswith("skipped: circuit open (connect") for a in attempts
        ):
            urls = ", ".join(e.label for e in self.ollama.pool.endpoints)
            hints.append(
                f"start Ollama (systemctl start ollama, or: ollama serve), or set OLLAMA_BASE_URL to where it "
                f"listens (now {urls})"
            )
        if (ollama, "not_found") in seen:
            hints.append(
                f"pull the model: cortex-llm models pull {self.ollama.model} (or set OLLAMA_MODEL to one it has)"
            )
        for provider in dict.fromkeys(a.provider for a in attempts if a.outcome == "auth"):
            hints.append(f"{provider.value} rejected its API key: check {SPECS[provider].key_env}")
        if attempts:
            hints.append("cortex-llm doctor checks the whole setup")
        return hints

    def _failed(self, walk: _Walk, step: _Step, error: ProviderError, *, output_started: bool = False) -> None:
        if self.track_costs and error.kind is not ErrorKind.DEADLINE:  # the caller's time ran out, not the provider
            with self._stats_lock:
                self._stats["providers"][step.provider.kind.value]["failures"] += 1
        walk.failed(step, error, output_started=output_started)

    def _cost(self, response: LLMResponse) -> float:
        if response.provider is LLMProvider.OLLAMA:
            return 0.0
        price = self.prices.get(response.model) or self.prices.get(self.models[response.provider])
        if price is None:
            if response.model not in self._warned_prices:
                self._warned_prices.add(response.model)
                logger.warning("no price for model %r; its cost is counted as 0", response.model)
            return 0.0
        return (response.input_tokens * price[0] + response.output_tokens * price[1]) / 1_000_000

    @staticmethod
    def _empty_stats() -> dict[str, Any]:
        return {
            "total_requests": 0,
            "total_cost_usd": 0.0,
            "providers": {
                p.value: {
                    "requests": 0,
                    "tokens": 0,
                    "input_tokens": 0,
                    "output_tokens": 0,
                    "cost_usd": 0.0,
                    "failures": 0,
                }
                for p in LLMProvider
            },
        }

    def get_stats(self) -> dict[str, Any]:
        with self._stats_lock:
            providers = {name: dict(entry) for name, entry in self._stats["providers"].items()}
            total = self._stats["total_cost_usd"]
            requests = self._stats["total_requests"]
        for entry in providers.values():
            entry["cost_usd"] = round(entry["cost_usd"], 6)
        return {
            "total_requests": requests,
            "total_cost_usd": round(total, 6),
            "providers": providers,
            "prices_as_of": _defaults.PRICES_AS_OF,
        }

    def reset_stats(self) -> None:
        with self._stats_lock:
            self._stats = self._empty_stats()

    # --- lifecycle ---------------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the HTTP clients; a request made after this raises ConfigError."""
        self._closed = True
        for provider in self.providers.values():
            provider.close()

    async def aclose(self) -> None:
        """Close this event loop's HTTP clients; a request made after this raises ConfigError."""
        self._closed = True
        for provider in self.providers.values():
            await provider.aclose()

    def __enter__(self) -> LLMRouter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> LLMRouter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
