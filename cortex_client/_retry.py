"""Error classification and backoff: which failures are retried, how long to wait."""

from __future__ import annotations

import random
import time
from collections.abc import Mapping

from ._config import RetryPolicy
from ._errors import ErrorKind


def kind_for_status(status: int) -> ErrorKind:
    if status in (401, 403):
        return ErrorKind.AUTH
    if status == 404:
        return ErrorKind.NOT_FOUND
    if status == 429:
        return ErrorKind.RATE_LIMIT
    if status in (408, 409) or status >= 500:  # 529 = Anthropic overloaded
        return ErrorKind.SERVER if status >= 500 else ErrorKind.TIMEOUT
    if 400 <= status < 500:
        return ErrorKind.BAD_REQUEST
    return ErrorKind.UNKNOWN


def parse_retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms`, or `retry-after` as seconds or an HTTP date."""
    if not headers:
        return None
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return max(0.0, float(value) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    import email.utils  # noqa: PLC0415 - rare (HTTP-date form); keeps `import cortex_client` fast

    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def backoff_delay(retry_number: int, policy: RetryPolicy, retry_after: float | None = None) -> float | None:
    """Delay before retry `retry_number` (0-based), or None when the server asks for a longer wait
    than we are willing to spend (the caller then falls back instead)."""
    if retry_after is not None:
        return retry_after if retry_after <= policy.max_retry_after else None
    delay = min(policy.initial_delay * 2.0**retry_number, policy.max_delay)
    return delay * (1.0 - policy.jitter * random.random())  # noqa: S311 - jitter, not crypto
