"""Per-endpoint circuit breaker: closed -> open after N failed requests -> half-open single probe."""

from __future__ import annotations

import threading
from enum import Enum

from ._config import BreakerPolicy


class BreakerState(Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Thread-safe; never awaits, so the async path shares it. Time comes from `policy.clock`."""

    def __init__(self, policy: BreakerPolicy) -> None:
        self._policy = policy
        self._clock = policy.clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_until = 0.0  # 0.0 = closed
        self._probing = False
        self._tripped = False  # opened for a set time (a rejected key, a long Retry-After): no early probe
        self.reason = ""

    @property
    def state(self) -> BreakerState:
        with self._lock:
            return self._state()

    def _state(self) -> BreakerState:
        if self._opened_until == 0.0:
            return BreakerState.CLOSED
        if self._clock() < self._opened_until:
            return BreakerState.OPEN
        return BreakerState.HALF_OPEN

    def allow(self) -> bool:
        """May a request go to this endpoint now? In half-open state exactly one probe is let through."""
        with self._lock:
            state = self._state()
            if state is BreakerState.CLOSED:
                return True
            if state is BreakerState.HALF_OPEN and not self._probing:
                self._probing = True
                return True
            return False

    def allow_early_probe(self) -> bool:
        """Let one probe through an open circuit before its cooldown ends. For the only endpoint a request has:
        skipping it would fail the request anyway, while a recovered server would wait out the cooldown. Not for a
        circuit tripped on purpose (a rejected key is not tried again until its time is up)."""
        with self._lock:
            if self._state() is BreakerState.OPEN and not self._tripped and not self._probing:
                self._probing = True
                return True
            return False

    def describe(self) -> str:
        """Why the circuit is open and when it lets a request through again, for attempts and errors."""
        with self._lock:
            if self._probing:
                return f"{self.reason}; a probe is under way"
            left = max(self._opened_until - self._clock(), 0.0)
            return (
                f"{self.reason}; next try in {left:.1f} s" if left < 10 else f"{self.reason}; next try in {left:.0f} s"
            )

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_until = 0.0
            self._probing = False
            self._tripped = False
            self.reason = ""

    def record_failure(self, reason: str, *, open_now: bool = False) -> None:
        """A request to this endpoint failed (after its retries). A failed probe re-opens at once."""
        with self._lock:
            self._failures += 1
            half_open = self._state() is BreakerState.HALF_OPEN
            if open_now or half_open or self._failures >= self._policy.failure_threshold:
                self._open(self._policy.cooldown, reason)
                self._tripped = False
            self._probing = False

    def trip(self, seconds: float, reason: str) -> None:
        """Open for a given time: bad credentials, or a Retry-After too long to wait for."""
        with self._lock:
            self._open(seconds, reason)
            self._tripped = True
            self._probing = False

    def _open(self, seconds: float, reason: str) -> None:
        self._opened_until = max(self._opened_until, self._clock() + seconds)
        self.reason = reason

    def release_probe(self) -> None:
        """The probe ended without a verdict on the endpoint (e.g. the caller's request was bad)."""
        with self._lock:
            self._probing = False
