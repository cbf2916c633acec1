"""Issue 9, items 1-3: one deadline per request whatever the server does; interrupts leave breakers usable; a
busy connection pool means waiting, not failing. Loopback servers that trickle, keep alive or go silent."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time

import anthropic  # noqa: F401 - the SDKs' import (seconds, once per process) is not what these tests time
import openai  # noqa: F401
import pytest

from cortex_client import AllProvidersFailed, BreakerPolicy, LLMProvider, RetryPolicy, Timeouts
from cortex_client._breaker import BreakerState
from tests.support.fakes import FakeOllama, FakeOpenAI, Reply

MESSAGES = [{"role": "user", "content": "hi"}]
CLAUDE_KEY = "sk-ant-test-key-000000000000"
OPENAI_KEY = "sk-openai-test-key-000000000"
DEADLINE = 1.0
# The per-read timeouts are far longer than the deadline: only the deadline can end these requests in time.
SLOW_READS = Timeouts(ollama_connect=1.0, ollama_read=30.0, cloud_connect=1.0, cloud_read=30.0, deadline=DEADLINE)
# What a request may take beyond its deadline here: scheduling on a busy 2-core machine, never a read timeout.
SLACK = 1.0

OLLAMA_ANSWER = json.dumps(
    {"model": "llama3.2", "message": {"role": "assistant", "content": "slow"}, "done": True, "eval_count": 1}
).encode()
CLAUDE_ANSWER = json.dumps(
    {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-6",
        "content": [{"type": "text", "text": "slow"}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }
).encode()


def ollama_only(make_router, ollama: FakeOllama, **kwargs):
    kwargs.setdefault("timeouts", SLOW_READS)
    return make_router(ollama_base_url=ollama.url, default_provider="ollama", enable_fallback=False, **kwargs)


def assert_deadline(excinfo: pytest.ExceptionInfo[AllProvidersFailed], began: float) -> None:
    elapsed = time.monotonic() - began
    assert "request deadline exceeded" in str(excinfo.value)
    assert elapsed < DEADLINE + SLACK, f"the request took {elapsed:.2f}s with a {DEADLINE}s deadline"


# --- item 1: the whole request under one deadline -----------------------------------------------------------


def test_a_body_trickling_one_byte_at_a_time_ends_at_the_deadline(make_router, ollama):
    ollama.queue(Reply.raw(OLLAMA_ANSWER, trickle=0.05))  # ~5 s of bytes, each well inside the read timeout
    router = ollama_only(make_router, ollama)
    began = time.monotonic()
    with pytest.raises(AllProvidersFailed) as excinfo:
        router.complete(MESSAGES)
    assert_deadline(excinfo, began)
    assert [a.outcome for a in excinfo.value.attempts] == ["deadline"]


def test_a_cloud_sdk_answer_trickling_ends_at_the_deadline(make_router, anthropic_fake):
    anthropic_fake.queue(Reply.raw(CLAUDE_ANSWER, trickle=0.05))
    router = make_router(
        claude_api_key=CLAUDE_KEY, claude_base_url=anthropic_fake.url, default_provider="claude", timeouts=SLOW_READS
    )
    began = time.monotonic()
    with pytest.raises(AllProvidersFailed) as excinfo:
        router.complete(MESSAGES)
    assert_deadline(excinfo, began)


def test_silence_after_part_of_the_body_ends_at_the_deadline(make_router, ollama):
    # Bytes until just before the deadline, then nothing: a read timeout clamped once, at the start, would wait
    # another whole deadline after the last byte.
    ollama.queue(Reply.raw(OLLAMA_ANSWER[:3] + b" " * 200, trickle=0.3))
    router = ollama_only(make_router, ollama)
    began = time.monotonic()
    with pytest.raises(AllProvidersFailed) as excinfo:
        router.complete(MESSAGES)
    assert_deadline(excinfo, began)


@pytest.mark.parametrize("api", ["native", "openai"])
def test_a_stream_of_keepalives_without_a_token_ends_at_the_deadline(make_router, isolated, ollama, api):
    line = b"\n" if api == "native" else b": keep-alive\n\n"
    ollama.queue(Reply.keepalives(line, every=0.05, content_type="application/x-ndjson"))
    router = ollama_only(make_router, ollama, settings=isolated.merged({"OLLAMA_API": api}))
    began = time.monotonic()
    with pytest.raises(AllProvidersFailed) as excinfo:
        list(router.stream(MESSAGES))
    assert_deadline(excinfo, began)


def test_a_cloud_sdk_stream_of_keepalives_ends_at_the_deadline(make_router, openai_fake):
    openai_fake.queue(Reply.keepalives(b": keep-alive\n\n", every=0.05))
    router = make_router(
        openai_api_key=OPENAI_KEY,
        openai_base_url=openai_fake.url + "/v1",
        default_provider="openai",
        enable_fallback=False,
        timeouts=SLOW_READS,
    )
    began = time.monotonic()
    with pytest.raises(AllProvidersFailed) as excinfo:
        list(router.stream(MESSAGES))
    assert_deadline(excinfo, began)


def test_headers_then_silence_ends_at_the_deadline_async(make_router, ollama):
    ollama.queue(Reply.silent_after_headers(30.0))
    router = ollama_only(make_router, ollama)

    async def ask() -> None:
        async for _ in router.astream(MESSAGES):
            pass

    began = time.monotonic()
    with pytest.raises(AllProvidersFailed) as excinfo:
        asyncio.run(ask())
    assert_deadline(excinfo, began)


def test_a_trickling_body_ends_at_the_deadline_async(make_router, ollama):
    ollama.queue(Reply.raw(OLLAMA_ANSWER, trickle=0.05))
    router = ollama_only(make_router, ollama)
    began = time.monotonic()
    with pytest.raises(AllProvidersFailed) as excinfo:
        asyncio.run(router.acomplete(MESSAGES))
    assert_deadline(excinfo, began)


def slow_first_client(monkeypatch: pytest.MonkeyPatch, provider, seconds: float) -> None:
    """The first call's SDK import and client construction, as slow as on a cold start."""
    build = provider._make_client

    def slow(asynchronous, endpoint):
        time.sleep(seconds)
        return build(asynchronous, endpoint)

    monkeypatch.setattr(provider, "_make_client", slow)


def openai_only(make_router, openai_fake: FakeOpenAI):
    return make_router(
        openai_api_key=OPENAI_KEY,
        openai_base_url=openai_fake.url + "/v1",
        default_provider="openai",
        enable_fallback=False,
        timeouts=SLOW_READS,
    )


def test_a_slow_first_client_counts_against_the_deadline(make_router, openai_fake, monkeypatch):
    router = make_router(
        openai_api_key=OPENAI_KEY,
        openai_base_url=openai_fake.url + "/v1",
        default_provider="openai",
        timeouts=SLOW_READS,
    )
    slow_first_client(monkeypatch, router.providers[LLMProvider.OPENAI], DEADLINE + 0.3)
    with pytest.raises(AllProvidersFailed) as excinfo:
        router.complete(MESSAGES)
    assert [a.outcome for a in excinfo.value.attempts] == ["deadline"]
    assert openai_fake.calls() == 0  # nothing was sent after the budget was spent


def test_a_slow_first_client_neither_blocks_the_event_loop_nor_outlives_the_deadline(
    make_router, openai_fake, monkeypatch
):
    router = make_router(
        openai_api_key=OPENAI_KEY,
        openai_base_url=openai_fake.url + "/v1",
        default_provider="openai",
        timeouts=SLOW_READS,
    )
    slow_first_client(monkeypatch, router.providers[LLMProvider.OPENAI], 3 * DEADLINE)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.02)
            ticks += 1

    async def main() -> tuple[float, BaseException | None]:
        task = asyncio.create_task(ticker())
        began = time.monotonic()
        try:
            await router.acomplete(MESSAGES)
        except AllProvidersFailed as exc:
            return time.monotonic() - began, exc
        finally:
            task.cancel()
        return time.monotonic() - began, None

    elapsed, error = asyncio.run(main())
    assert isinstance(error, AllProvidersFailed)
    assert "request deadline exceeded" in str(error)
    assert elapsed < DEADLINE + SLACK
    assert ticks >= 10, f"the event loop ran only {ticks} ticks of 20 ms during a {elapsed:.2f}s call"


def test_a_deadline_is_not_the_endpoints_failure(make_router, ollama):
    ollama.queue(Reply.raw(OLLAMA_ANSWER, trickle=0.05))
    router = ollama_only(make_router, ollama, breaker=BreakerPolicy(failure_threshold=1))
    with pytest.raises(AllProvidersFailed):
        router.complete(MESSAGES)
    assert router.ollama.pool.endpoints[0].breaker.state is BreakerState.CLOSED
    assert router.get_stats()["providers"]["ollama"]["failures"] == 0


# --- item 2: interrupts and cancellation leave every breaker usable ----------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def half_open_router(make_router, ollama: FakeOllama, clock: FakeClock):
    """A router whose only endpoint is half-open, and whose first probe gets a 503 and a long retry wait."""
    router = ollama_only(
        make_router,
        ollama,
        timeouts=Timeouts(deadline=30.0),
        retry=RetryPolicy(max_retries=2, initial_delay=5.0, max_delay=5.0, jitter=0.0),
        breaker=BreakerPolicy(failure_threshold=1, cooldown=10.0, clock=clock),
    )
    breaker = router.ollama.pool.endpoints[0].breaker
    breaker.record_failure("earlier failure")
    clock.now += 11.0
    assert breaker.state is BreakerState.HALF_OPEN
    ollama.queue(Reply.fail(503))
    return router, breaker


def test_cancelling_a_task_while_it_waits_to_retry_a_probe_releases_the_probe(make_router, ollama):
    clock = FakeClock()
    router, breaker = half_open_router(make_router, ollama, clock)

    async def main() -> None:
        task = asyncio.create_task(router.acomplete(MESSAGES))
        while ollama.calls("/api/chat") == 0:  # noqa: ASYNC110 - the fake counts in its own thread
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # the probe failed; the router now sleeps before its retry
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert breaker.allow(), "the half-open breaker still waits for a probe that will never report"


def test_ctrl_c_while_waiting_to_retry_a_probe_releases_the_probe(make_router, ollama):
    clock = FakeClock()
    router, breaker = half_open_router(make_router, ollama, clock)

    def interrupt() -> None:
        while ollama.calls("/api/chat") == 0:
            time.sleep(0.01)
        time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGINT)

    # Python's own Ctrl-C handler, also where this runs with SIGINT ignored (a shell's background job inherits that).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    threading.Thread(target=interrupt, daemon=True).start()
    try:
        with pytest.raises(KeyboardInterrupt):
            router.complete(MESSAGES)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert breaker.allow(), "the half-open breaker still waits for a probe that will never report"


def test_a_consumer_leaving_a_stream_while_it_waits_to_retry_releases_the_probe(make_router, ollama):
    clock = FakeClock()
    router, breaker = half_open_router(make_router, ollama, clock)

    async def main() -> None:
        async def consume() -> None:
            async for _ in router.astream(MESSAGES):
                pass

        task = asyncio.create_task(consume())
        while ollama.calls("/api/chat") == 0:  # noqa: ASYNC110 - the fake counts in its own thread
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert breaker.allow()


# --- item 3: a full connection pool is a wait, not a failure ------------------------------------------------


def test_more_concurrent_requests_than_connections_wait_for_one_and_all_succeed(make_router, ollama):
    ollama.default = Reply(delay=0.3)  # slow but healthy
    router = ollama_only(
        make_router,
        ollama,
        max_connections=2,
        timeouts=Timeouts(ollama_connect=0.05, ollama_read=5.0, deadline=20.0),
        breaker=BreakerPolicy(failure_threshold=1),
    )
    results: list[str] = []
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            results.append(router.complete(MESSAGES).content)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert results == ["Hello from the fake"] * 8
    assert ollama.max_in_flight == 2  # the pool really was full: requests waited for a connection
    assert router.ollama.pool.endpoints[0].breaker.state is BreakerState.CLOSED
    assert router.get_stats()["providers"]["ollama"]["failures"] == 0
