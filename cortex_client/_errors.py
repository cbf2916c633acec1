"""One error hierarchy for the whole package.

* CortexLLMError (a RuntimeError, as the original router raised RuntimeError)
  - ConfigError            bad or missing configuration; raised before any request is sent
  - LocalOnlyViolation     the request would leave the host while local-only mode is on
  - ProviderError          one provider call failed; `kind` says how, `status` the HTTP status
    - StreamInterrupted    a stream failed after text was already yielded (never falls back)
  - AllProvidersFailed     the fallback chain is exhausted or the deadline passed; `attempts` has each try
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._types import Attempt, LLMProvider


class ErrorKind(Enum):
    """How a provider call failed; the router's policy is decided by this alone."""

    CONNECT = "connect"  # refused, DNS: the endpoint is not there; fall back at once
    TIMEOUT = "timeout"  # retry, then fall back
    NETWORK = "network"  # connection dropped mid-request; retry, then fall back
    RATE_LIMIT = "rate_limit"  # 429: retry after Retry-After, then fall back
    SERVER = "server"  # 5xx, 529: retry, then fall back
    STREAM = "stream"  # error inside a 200 stream or a cut stream
    AUTH = "auth"  # 401/403: fall back and disable the provider for a while
    NOT_FOUND = "not_found"  # 404 (model not pulled, retired model id): fall back
    BAD_REQUEST = "bad_request"  # 400/413/422: the same payload fails everywhere; no retry, no fallback
    CONTEXT = "context"  # the prompt did not fit the model's context (Ollama cut it): fall back, no retry, and
    # the endpoint is not blamed (it answered as configured)
    UNKNOWN = "unknown"  # anything else the provider code raised while talking to the server
    DEADLINE = "deadline"  # the request's own deadline ran out (waiting for a pool slot included): the request
    # ends here, and the endpoint is not blamed for it

    @property
    def retryable(self) -> bool:
        return self in _RETRYABLE

    @property
    def falls_back(self) -> bool:
        return self not in (ErrorKind.BAD_REQUEST, ErrorKind.DEADLINE)


_RETRYABLE = frozenset({ErrorKind.TIMEOUT, ErrorKind.NETWORK, ErrorKind.RATE_LIMIT, ErrorKind.SERVER, ErrorKind.STREAM})


class CortexLLMError(RuntimeError):
    """Base class of every error this package raises."""


class ConfigError(CortexLLMError):
    pass


class LocalOnlyViolation(CortexLLMError):
    pass


class ProviderError(CortexLLMError):
    def __init__(
        self,
        message: str,
        *,
        provider: LLMProvider,
        kind: ErrorKind,
        status: int | None = None,
        retry_after: float | None = None,
        endpoint: str | None = None,
    ) -> None:
        super().__init__(f"{provider.value}: {message}")
        self.provider = provider
        self.kind = kind
        self.status = status
        self.retry_after = retry_after
        self.endpoint = endpoint

    @property
    def retryable(self) -> bool:
        return self.kind.retryable


class StreamInterrupted(ProviderError):
    """Raised when a stream fails after text was yielded: retrying would duplicate output."""


class AllProvidersFailed(CortexLLMError):
    """`attempts` says what happened, `hints` what to do about it (start Ollama, pull the model, check a key)."""

    def __init__(self, message: str, attempts: list[Attempt], hints: Sequence[str] = ()) -> None:
        lines = [message]
        lines += [
            f"  {a.provider.value}{' @ ' + a.endpoint if a.endpoint else ''}: {a.outcome}"
            + (f" ({a.error})" if a.error else "")
            for a in attempts
        ]
        lines += [f"  what to do: {hint}" for hint in hints]
        super().__init__("\n".join(lines))
        self.attempts = attempts
        self.hints = list(hints)
