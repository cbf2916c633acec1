"""Endpoints and the Ollama pool: each endpoint has its own breaker and in-flight count."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ._breaker import BreakerState, CircuitBreaker
from ._config import BreakerPolicy


class Endpoint:
    """One base URL of a provider. Cloud providers have one; an Ollama fleet has several."""

    def __init__(self, url: str, policy: BreakerPolicy) -> None:
        self.url = url
        self.breaker = CircuitBreaker(policy)
        self._lock = threading.Lock()
        self.in_flight = 0

    def __repr__(self) -> str:
        return f"Endpoint({self.url!r}, {self.breaker.state.value}, in_flight={self.in_flight})"

    @contextmanager
    def busy(self) -> Iterator[None]:
        with self._lock:
            self.in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                self.in_flight -= 1


class EndpointPool:
    """Orders endpoints for one request: closed circuits first, then least busy; ties rotate so
    equally idle endpoints share the load. Breaker admission itself is the router's job."""

    def __init__(self, urls: tuple[str, ...], policy: BreakerPolicy) -> None:
        self.endpoints = tuple(Endpoint(url, policy) for url in urls)
        self._turn = itertools.count()

    def ordered(self) -> list[Endpoint]:
        if len(self.endpoints) == 1:
            return list(self.endpoints)
        start = next(self._turn) % len(self.endpoints)
        rotated = self.endpoints[start:] + self.endpoints[:start]
        return sorted(rotated, key=lambda e: (e.breaker.state is not BreakerState.CLOSED, e.in_flight))
