"""The original `cortex.llm_router` module, as Cortex and its tests use it, on top of `cortex_client`.

Cortex installs this module as its `cortex/llm_router.py` with two lines (docs/client.md, "Cortex migration"):

    import sys, cortex_client.compat.llm_router as _m  # noqa: E401
    sys.modules[__name__] = _m

so `cortex.llm_router` *is* this module and a patch of one of its names takes effect: the SDK classes the
providers construct (`Anthropic`, `AsyncAnthropic`, `OpenAI`, `AsyncOpenAI`: looked up here each time a client is
built), `LLMRouter` as `complete_task` looks it up, and the router's client attributes (`claude_client`,
`kimi_client`, `openai_client`, their `*_async` twins): a client assigned to one is the client its provider calls.
The original's private helpers (`_complete_claude`, `_calculate_cost`, `_update_stats`, ...) run through the
router, so answers keep its fallback, deadline and stats. Nothing here is part of `cortex_client`'s own API.
"""

from __future__ import annotations

import asyncio
import functools
import os
from types import SimpleNamespace
from typing import Any

from .. import _router
from .._config import split_keys
from .._defaults import ORIGINAL_LOCAL_FIRST
from .._errors import ConfigError
from .._helpers import check_hardware_configs_parallel, diagnose_errors_parallel, query_multiple_packages
from .._router import RoutingDecision
from .._types import LLMProvider, LLMResponse, Message, TaskType

try:  # the original imported both SDKs at module level; Cortex depends on them
    from anthropic import Anthropic, AsyncAnthropic
except ImportError:  # pragma: no cover - the `cloud` extra is not installed
    Anthropic = AsyncAnthropic = None  # type: ignore[misc,assignment]
try:
    from openai import AsyncOpenAI, OpenAI
except ImportError:  # pragma: no cover
    OpenAI = AsyncOpenAI = None  # type: ignore[misc,assignment]

__all__ = [
    "Anthropic",
    "AsyncAnthropic",
    "AsyncOpenAI",
    "LLMProvider",
    "LLMResponse",
    "LLMRouter",
    "OpenAI",
    "RoutingDecision",
    "TaskType",
    "check_hardware_configs_parallel",
    "complete_task",
    "diagnose_errors_parallel",
    "query_multiple_packages",
]

# provider -> (attribute, sync SDK class name, async SDK class name)
_CLIENTS = {
    LLMProvider.CLAUDE: ("claude_client", "Anthropic", "AsyncAnthropic"),
    LLMProvider.KIMI_K2: ("kimi_client", "OpenAI", "AsyncOpenAI"),
    LLMProvider.OPENAI: ("openai_client", "OpenAI", "AsyncOpenAI"),
}
# The classes as imported, to tell a patched name from the SDK's own.
_REAL = {"Anthropic": Anthropic, "AsyncAnthropic": AsyncAnthropic, "OpenAI": OpenAI, "AsyncOpenAI": AsyncOpenAI}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _from_sdk(answer: Any) -> bool:
    return type(answer).__module__.split(".")[0] in ("anthropic", "openai")


def _plain_message(message: Any) -> Any:
    """An answer built by hand (the stand-ins of Cortex's tests) as the SDK's shape: only what is really there."""
    blocks = []
    for block in list(getattr(message, "content", None) or ()):
        if getattr(block, "type", None) == "tool_use":
            blocks.append(block)
        elif isinstance(getattr(block, "text", None), str):
            blocks.append(SimpleNamespace(type="text", text=block.text))
    usage = getattr(message, "usage", None)
    return SimpleNamespace(
        content=blocks,
        usage=SimpleNamespace(
            input_tokens=_int(getattr(usage, "input_tokens", 0)), output_tokens=_int(getattr(usage, "output_tokens", 0))
        ),
        model=_str(getattr(message, "model", None)),
        stop_reason=_str(getattr(message, "stop_reason", None)),
        model_dump=_dump(message),
    )


def _plain_completion(completion: Any) -> Any:
    choices = []
    for choice in list(getattr(completion, "choices", None) or ()):
        message = getattr(choice, "message", None)
        calls = getattr(message, "tool_calls", None)
        choices.append(
            SimpleNamespace(
                message=SimpleNamespace(
                    content=_str(getattr(message, "content", None)),
                    tool_calls=calls if isinstance(calls, list) else None,
                ),
                finish_reason=_str(getattr(choice, "finish_reason", None)),
            )
        )
    usage = getattr(completion, "usage", None)
    return SimpleNamespace(
        choices=choices,
        usage=None
        if usage is None
        else SimpleNamespace(
            prompt_tokens=_int(getattr(usage, "prompt_tokens", 0)),
            completion_tokens=_int(getattr(usage, "completion_tokens", 0)),
        ),
        model=_str(getattr(completion, "model", None)),
        model_dump=_dump(completion),
    )


def _dump(answer: Any) -> Any:
    dump = getattr(answer, "model_dump", None)
    return lambda: (result if isinstance(result := dump(), dict) else {}) if callable(dump) else {}


class _ClientSlot:
    """`router.claude_client` and its kin: the SDK client that provider calls; assigning one replaces it."""

    def __init__(self, provider: LLMProvider, asynchronous: bool) -> None:
        self.provider = provider
        self.asynchronous = asynchronous

    def __get__(self, router: LLMRouter | None, owner: type | None = None) -> Any:
        if router is None:
            return self
        return router._client_for(self.provider, self.asynchronous)

    def __set__(self, router: LLMRouter, client: Any) -> None:
        router._set_client(self.provider, self.asynchronous, client)


class LLMRouter(_router.LLMRouter):
    """`cortex_client.LLMRouter` with the original's attributes and private helpers. Routing is the original's
    (`local_first=ORIGINAL_LOCAL_FIRST` unless given)."""

    claude_client = _ClientSlot(LLMProvider.CLAUDE, False)
    claude_client_async = _ClientSlot(LLMProvider.CLAUDE, True)
    kimi_client = _ClientSlot(LLMProvider.KIMI_K2, False)
    kimi_client_async = _ClientSlot(LLMProvider.KIMI_K2, True)
    openai_client = _ClientSlot(LLMProvider.OPENAI, False)
    openai_client_async = _ClientSlot(LLMProvider.OPENAI, True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("local_first", ORIGINAL_LOCAL_FIRST)
        self._given_clients: dict[tuple[LLMProvider, bool], Any] = {}
        super().__init__(*args, **kwargs)
        self._rate_limit_semaphore: asyncio.Semaphore | None = None
        explicit = args[2] if len(args) > 2 else kwargs.get("openai_api_key")
        environment = split_keys(os.environ.get("OPENAI_API_KEYS", "")) + split_keys(
            os.environ.get("OPENAI_API_KEY", "")
        )
        # The original's order: the key given to the constructor first, then the environment's.
        self.openai_api_keys: list[str] = list(dict.fromkeys([*split_keys(explicit or ""), *environment]))
        self.claude_api_key = explicit_key(self, LLMProvider.CLAUDE)
        self.kimi_api_key = explicit_key(self, LLMProvider.KIMI_K2)
        for kind in _CLIENTS:
            provider = self.providers.get(kind)
            if provider is None:
                continue
            # Per instance, on this router's adapters only: the client comes from here (a given one, or built by
            # the SDK class this module names now); the original fell back on any exception a client raised; an
            # answer built by hand (Cortex's test stand-ins) is read for what it really holds.
            sdk_provider: Any = provider  # an SDKProvider: cloud providers are
            vars(provider).update(
                _make_client=functools.partial(self._make_client, kind, provider._make_client),
                _call_errors=lambda: (Exception,),
                _response=functools.partial(_lenient_response, kind, sdk_provider._response),
            )

    # --- clients ------------------------------------------------------------------------------------------
    def _make_client(self, kind: LLMProvider, core_make: Any, asynchronous: bool, endpoint: Any) -> Any:
        given = self._given_clients.get((kind, asynchronous))
        first = self.providers[kind].pool.endpoints[0]
        if given is not None and (endpoint.url, endpoint.credential) == (first.url, first.credential):
            return given  # the original's attribute held the first key's client; other keys get their own
        name = _CLIENTS[kind][2 if asynchronous else 1]
        cls = globals()[name]  # looked up now: a patch of cortex.llm_router.<name> takes effect
        if cls is _REAL[name]:
            return core_make(asynchronous, endpoint)
        return cls(api_key=endpoint.credential, base_url=endpoint.url)

    def _client_for(self, kind: LLMProvider, asynchronous: bool) -> Any:
        given = self._given_clients.get((kind, asynchronous))
        provider = self.providers.get(kind)
        if given is not None or provider is None:
            return given
        client = provider._make_client(asynchronous, provider.pool.endpoints[0])
        self._given_clients[(kind, asynchronous)] = client
        return client

    def _set_client(self, kind: LLMProvider, asynchronous: bool, client: Any) -> None:
        if client is None:
            self._given_clients.pop((kind, asynchronous), None)
        else:
            self._given_clients[(kind, asynchronous)] = client
        provider = self.providers.get(kind)
        if provider is not None:  # built clients are cached per endpoint: forget them
            provider._clients.clear()
            provider._aclients.clear()

    # --- the original's routing and private helpers --------------------------------------------------------
    def route_task(self, task_type: TaskType, force_provider: LLMProvider | str | None = None) -> RoutingDecision:
        decision = super().route_task(task_type, force_provider)
        if (
            decision.provider is LLMProvider.OLLAMA
            and force_provider is None
            and not (self.ollama_configured or self.local_only or self.default_provider)
        ):
            raise ConfigError(f"no provider configured for {task_type.value}: set an API key or OLLAMA_BASE_URL")
        return decision

    def _call(self, kind: LLMProvider, messages: list[Message], temperature: float, max_tokens: int, tools: Any) -> Any:
        choice = "auto" if tools and kind is LLMProvider.KIMI_K2 else None
        return self.complete(
            messages,
            force_provider=kind,
            temperature=temperature,
            max_tokens=max_tokens,
            tools=tools,
            tool_choice=choice,
        )

    def _complete_claude(
        self, messages: list[Message], temperature: float, max_tokens: int, tools: Any = None
    ) -> LLMResponse:
        return self._call(LLMProvider.CLAUDE, messages, temperature, max_tokens, tools)  # type: ignore[no-any-return]

    def _complete_kimi(
        self, messages: list[Message], temperature: float, max_tokens: int, tools: Any = None
    ) -> LLMResponse:
        return self._call(LLMProvider.KIMI_K2, messages, temperature, max_tokens, tools)  # type: ignore[no-any-return]

    def _complete_openai(
        self, messages: list[Message], temperature: float, max_tokens: int, tools: Any = None
    ) -> LLMResponse:
        return self._call(LLMProvider.OPENAI, messages, temperature, max_tokens, tools)  # type: ignore[no-any-return]

    def _complete_ollama(
        self, messages: list[Message], temperature: float, max_tokens: int, tools: Any = None
    ) -> LLMResponse:
        return self._call(LLMProvider.OLLAMA, messages, temperature, max_tokens, tools)  # type: ignore[no-any-return]

    async def _acall(
        self, kind: LLMProvider, messages: list[Message], temperature: float, max_tokens: int, tools: Any
    ) -> LLMResponse:
        choice = "auto" if tools and kind is LLMProvider.KIMI_K2 else None
        return await self.acomplete(
            messages,
            force_provider=kind,
            temperature=temperature,
            max_tokens=max_tokens,
            tools=tools,
            tool_choice=choice,
        )

    async def _acomplete_claude(
        self, messages: list[Message], temperature: float, max_tokens: int, tools: Any = None
    ) -> LLMResponse:
        return await self._acall(LLMProvider.CLAUDE, messages, temperature, max_tokens, tools)

    async def _acomplete_kimi(
        self, messages: list[Message], temperature: float, max_tokens: int, tools: Any = None
    ) -> LLMResponse:
        return await self._acall(LLMProvider.KIMI_K2, messages, temperature, max_tokens, tools)

    async def _acomplete_openai(
        self, messages: list[Message], temperature: float, max_tokens: int, tools: Any = None
    ) -> LLMResponse:
        return await self._acall(LLMProvider.OPENAI, messages, temperature, max_tokens, tools)

    async def _acomplete_ollama(
        self, messages: list[Message], temperature: float, max_tokens: int, tools: Any = None
    ) -> LLMResponse:
        return await self._acall(LLMProvider.OLLAMA, messages, temperature, max_tokens, tools)

    def _calculate_cost(self, provider: LLMProvider, input_tokens: int, output_tokens: int) -> float:
        if provider is LLMProvider.OLLAMA:
            return 0.0
        price = self.prices.get(self.models[provider])
        if price is None:
            return 0.0
        return (input_tokens * price[0] + output_tokens * price[1]) / 1_000_000

    def _update_stats(self, response: LLMResponse) -> None:
        if not self.track_costs:
            return
        with self._stats_lock:
            self._stats["total_requests"] += 1
            self._stats["total_cost_usd"] += response.cost_usd
            entry = self._stats["providers"][response.provider.value]
            entry["requests"] += 1
            entry["tokens"] += response.tokens_used
            entry["input_tokens"] += response.input_tokens
            entry["output_tokens"] += response.output_tokens
            entry["cost_usd"] += response.cost_usd

    def set_rate_limit(self, max_concurrent: int = 10) -> None:
        super().set_rate_limit(max_concurrent)
        self._rate_limit_semaphore = asyncio.Semaphore(max_concurrent)


def explicit_key(router: LLMRouter, kind: LLMProvider) -> str | None:
    """The provider's first API key, as the original's `claude_api_key` / `kimi_api_key` attributes."""
    provider = router.providers.get(kind)
    pool = getattr(provider, "pool", None)
    if pool is None:
        return None
    credential = pool.endpoints[0].credential
    return credential if isinstance(credential, str) else None


def _lenient_response(kind: LLMProvider, core_response: Any, answer: Any, request: Any) -> LLMResponse:
    if not _from_sdk(answer):
        answer = _plain_message(answer) if kind is LLMProvider.CLAUDE else _plain_completion(answer)
    return core_response(answer, request)  # type: ignore[no-any-return]


def complete_task(
    prompt: str, task_type: TaskType = TaskType.USER_CHAT, system_prompt: str | None = None, **kwargs: Any
) -> str:
    """The original's: a new `LLMRouter` (as this module names it now) per call."""
    messages: list[Message] = []
    if system_prompt:
        messages.append({"role": "system", "content": system_prompt})
    messages.append({"role": "user", "content": prompt})
    router = LLMRouter()
    response = router.complete(messages, task_type=task_type, **kwargs)
    return response.content
