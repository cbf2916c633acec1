"""Endpoints and the Ollama pool: each endpoint has its own breaker and in-flight count."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ._breaker import BreakerState, CircuitBreaker
from ._config import BreakerPolicy, redact_url


class Endpoint:
    """One base URL of a provider. Cloud providers have one; an Ollama fleet has several."""

    def __init__(self, url: str, policy: BreakerPolicy, credential: str | None = None, label: str = "") -> None:
        self.url = url
        self.credential = credential  # the API key this endpoint calls with (a provider with a key list has one
        # endpoint per key); never in repr
        self.label = label or redact_url(url)  # how attempts and logs name it: the URL, plus "(key 2/3)" for key lists
        self.breaker = CircuitBreaker(policy)
        self._lock = threading.Lock()
        self.in_flight = 0

    def __repr__(self) -> str:
        return f"Endpoint({self.label!r}, {self.breaker.state.value}, in_flight={self.in_flight})"

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
    equally idle endpoints share the load. A key list is tried in its own order instead (the first key is the
    one to use while it works, as in the original). Breaker admission itself is the router's job."""

    def __init__(self, urls: tuple[str, ...], policy: BreakerPolicy, credentials: tuple[str, ...] = ()) -> None:
        if len(credentials) > 1:  # a key list: one endpoint per (URL, key), tried in the listed order
            self.endpoints = tuple(
                Endpoint(url, policy, key, f"{redact_url(url)} (key {i}/{len(credentials)})")
                for url in urls
                for i, key in enumerate(credentials, 1)
            )
            self.rotate = False
        else:
            credential = credentials[0] if credentials else None
            self.endpoints = tuple(Endpoint(url, policy, credential) for url in urls)
            self.rotate = True
        self._turn = itertools.count()

    def ordered(self) -> list[Endpoint]:
        if len(self.endpoints) == 1 or not self.rotate:
            return sorted(self.endpoints, key=lambda e: e.breaker.state is not BreakerState.CLOSED)
        start = next(self._turn) % len(self.endpoints)
        rotated = self.endpoints[start:] + self.endpoints[:start]
        return sorted(rotated, key=lambda e: (e.breaker.state is not BreakerState.CLOSED, e.in_flight))
