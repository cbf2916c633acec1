"""The one deadline of a request, enforced at the HTTP layer of every client (httpx and the SDKs' httpx2).

httpx has per-operation timeouts only: a server that trickles one byte a second, or sends keep-alives and no
token, never trips a read timeout. The router therefore sets `DEADLINE` (a `time.monotonic()` instant) around
each provider call, and `bound_client` wraps a client's transports so that every request made under it

* gets each timeout (connect, pool, write, read of the headers) clamped to the time left: waiting for a pool
  slot is waiting for the caller's deadline, not a failure of the endpoint;
* checks the clock after every body chunk it receives (trickles, keep-alives);
* has its socket shut down by one watchdog thread when the deadline passes mid-body (a server gone silent).

What is raised then is `DeadlineExceeded`, which `transport_error_kind` maps to `ErrorKind.DEADLINE`. Async calls
need none of this: the router runs them under `asyncio.timeout`, which cancels the I/O itself.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import itertools
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

DEADLINE: ContextVar[float | None] = ContextVar("cortex_client_deadline", default=None)


class DeadlineExceeded(TimeoutError):
    """The request's deadline passed while this HTTP request was under way."""


@contextlib.contextmanager
def deadline(at: float) -> Iterator[None]:
    """Requests made inside this block end by `at` (a time.monotonic() instant)."""
    token = DEADLINE.set(at)
    try:
        yield
    finally:
        DEADLINE.reset(token)


def _left(at: float) -> float:
    left = at - time.monotonic()
    if left <= 0:
        raise DeadlineExceeded("request deadline exceeded")
    return left


def _passed(at: float) -> bool:
    return time.monotonic() >= at - 0.001  # a socket timeout clamped to `at` fires at `at`, give or take


class _Watchdog:
    """Shuts down the sockets of bodies still being read when their deadline passes (one thread for all)."""

    def __init__(self) -> None:
        self._wake = threading.Condition()
        self._heap: list[list[Any]] = []  # [at, seq, socket or None once finished]
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, at: float, sock: socket.socket) -> list[Any]:
        entry = [at, next(self._seq), sock]
        with self._wake:
            heapq.heappush(self._heap, entry)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="cortex-client-deadlines", daemon=True)
                self._thread.start()
            if self._heap[0] is entry:
                self._wake.notify()
        return entry

    def done(self, entry: list[Any]) -> None:
        with self._wake:
            entry[2] = None

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._heap and self._heap[0][2] is None:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._wake.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                entry = heapq.heappop(self._heap)
                sock, entry[2] = entry[2], None
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked recv(); the read then fails


_WATCHDOG = _Watchdog()


class _BoundedBody:
    """A response body that ends, with DeadlineExceeded, at the request's deadline."""

    def __init__(self, inner: Any, at: float, sock: socket.socket | None) -> None:
        self._inner = inner
        self._at = at
        self._sock = sock

    def __iter__(self) -> Iterator[bytes]:
        entry = _WATCHDOG.watch(self._at, self._sock) if self._sock is not None else None
        try:
            for chunk in self._inner:
                if _passed(self._at):
                    raise DeadlineExceeded("request deadline exceeded while reading the answer")
                yield chunk
        except DeadlineExceeded:
            raise
        except Exception:
            if _passed(self._at):
                raise DeadlineExceeded("request deadline exceeded while reading the answer") from None
            raise
        finally:
            if entry is not None:
                _WATCHDOG.done(entry)

    def close(self) -> None:
        self._inner.close()


@functools.cache
def _body_class(flavor: str) -> type:
    # httpx (and its fork httpx2) insists that a response stream is its own SyncByteStream.
    base = sys.modules[flavor].SyncByteStream
    return type("BoundedBody", (_BoundedBody, base), {})


class _BoundedTransport:
    """Wraps a sync httpx/httpx2 transport; a request outside `deadline()` passes through untouched."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def handle_request(self, request: Any) -> Any:
        at = DEADLINE.get()
        if at is None:
            return self._inner.handle_request(request)
        left = _left(at)
        timeouts = dict(request.extensions.get("timeout") or {})
        for name in ("connect", "read", "write", "pool"):
            value = timeouts.get(name)
            timeouts[name] = left if value is None else min(value, left)
        request.extensions["timeout"] = timeouts
        try:
            response = self._inner.handle_request(request)
        except Exception:
            if _passed(at):
                raise DeadlineExceeded("request deadline exceeded before the answer started") from None
            raise
        stream = response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        flavor = type(response).__module__.partition(".")[0]
        response.stream = _body_class(flavor)(response.stream, at, sock)
        return response

    def close(self) -> None:
        self._inner.close()

    def __enter__(self) -> _BoundedTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def bound_client(client: Any) -> Any:
    """Make a sync httpx or httpx2 client honour `deadline()`; returns it. (Its transport and its proxy mounts,
    which httpx keeps in these attributes in both flavours, get wrapped.)"""
    client._transport = _BoundedTransport(client._transport)
    client._mounts = {
        pattern: None if transport is None else _BoundedTransport(transport)
        for pattern, transport in client._mounts.items()
    }
    return client
