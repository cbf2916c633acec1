"""Circuit breaker (open, half-open probe, close) and the Ollama endpoint pool."""

from __future__ import annotations

import threading
import time

from cortex_client import BreakerPolicy, LLMProvider, RetryPolicy, Timeouts
from cortex_client._breaker import BreakerState, CircuitBreaker
from cortex_client._pool import EndpointPool
from tests.support.fakes import Clock, FakeOllama, Reply, closed_port_url

MESSAGES = [{"role": "user", "content": "hi"}]
NO_RETRY = RetryPolicy(max_retries=0)


def test_breaker_opens_after_threshold_and_lets_one_probe_through_when_half_open():
    clock = Clock()
    breaker = CircuitBreaker(BreakerPolicy(failure_threshold=2, cooldown=10.0, clock=clock))
    breaker.record_failure("server")
    assert breaker.state is BreakerState.CLOSED and breaker.allow()
    breaker.record_failure("server")
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    clock.now += 10.0
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # everyone else waits for its verdict
    breaker.record_failure("server")  # a failed probe re-opens at once
    assert breaker.state is BreakerState.OPEN
    clock.now += 10.0
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow() and breaker.allow()


def test_breaker_trip_holds_for_the_given_time():
    clock = Clock()
    breaker = CircuitBreaker(BreakerPolicy(cooldown=1.0, clock=clock))
    breaker.trip(600.0, "credentials rejected")
    clock.now += 599.0
    assert not breaker.allow()
    assert breaker.reason == "credentials rejected"
    clock.now += 1.0
    assert breaker.allow()


def test_router_breaker_opens_skips_then_half_opens(make_router, anthropic_fake, ollama):
    clock = Clock()
    anthropic_fake.default = Reply.fail(500)
    router = make_router(
        claude_api_key="sk-ant-x",
        claude_base_url=anthropic_fake.url,
        ollama_base_url=ollama.url,
        retry=NO_RETRY,
        breaker=BreakerPolicy(failure_threshold=2, cooldown=0.3, clock=clock),
    )
    for _ in range(2):
        assert router.complete(MESSAGES).provider is LLMProvider.OLLAMA
    assert anthropic_fake.calls() == 2
    skipped = router.complete(MESSAGES)  # open: Claude costs nothing now
    assert anthropic_fake.calls() == 2
    assert skipped.attempts[0].outcome == "skipped: circuit open (server; next try in 0.3 s)"

    clock.now += 0.3  # cooldown over: half-open
    anthropic_fake.default = Reply()
    probe = router.complete(MESSAGES)
    assert probe.provider is LLMProvider.CLAUDE
    assert anthropic_fake.calls() == 3
    assert router.complete(MESSAGES).provider is LLMProvider.CLAUDE  # closed again


def test_failed_half_open_probe_reopens(make_router, anthropic_fake, ollama):
    clock = Clock()
    anthropic_fake.default = Reply.fail(503)
    router = make_router(
        claude_api_key="sk-ant-x",
        claude_base_url=anthropic_fake.url,
        ollama_base_url=ollama.url,
        retry=NO_RETRY,
        breaker=BreakerPolicy(failure_threshold=1, cooldown=0.3, clock=clock),
    )
    router.complete(MESSAGES)
    clock.now += 0.3
    router.complete(MESSAGES)  # the probe fails
    router.complete(MESSAGES)  # open again: not called
    assert anthropic_fake.calls() == 2


def test_pool_orders_closed_and_least_busy_first():
    pool = EndpointPool(("http://a:1", "http://b:1", "http://c:1"), BreakerPolicy())
    a, b, _ = pool.endpoints
    a.breaker.trip(60.0, "down")
    with b.busy():
        assert [e.url for e in pool.ordered()] == ["http://c:1", "http://b:1", "http://a:1"]
    firsts = {pool.ordered()[0].url for _ in range(4)}
    assert firsts == {"http://b:1", "http://c:1"}  # equally idle endpoints take turns


def test_pool_fails_over_to_a_live_endpoint_and_skips_the_dead_one(make_router, ollama):
    dead = closed_port_url()
    router = make_router(ollama_base_url=f"{dead},{ollama.url}", default_provider="ollama")
    assert [e.url for e in router.ollama.pool.endpoints] == [dead, ollama.url]
    responses = [router.complete(MESSAGES) for _ in range(4)]
    assert all(r.provider is LLMProvider.OLLAMA for r in responses)
    tried_dead = [a for r in responses for a in r.attempts if a.endpoint == dead]
    assert [a.outcome for a in tried_dead] == ["connect"]  # once; its breaker keeps it out after that
    assert ollama.calls("/api/chat") == 4


def test_pool_endpoint_without_the_model_is_passed_over(make_router, ollama):
    other = FakeOllama()
    try:
        ollama.default = Reply.fail(404, body={"error": "model 'llama3.2' not found"})
        router = make_router(ollama_base_url=f"{ollama.url},{other.url}", default_provider="ollama")
        for _ in range(3):
            assert router.complete(MESSAGES).attempts[-1].endpoint == other.url
        assert other.calls("/api/chat") == 3
    finally:
        other.close()


def test_pool_spreads_concurrent_requests_over_idle_endpoints(make_router, ollama):
    other = FakeOllama()
    try:
        for fake in (ollama, other):
            fake.default = Reply(delay=0.4)
        router = make_router(ollama_base_url=f"{ollama.url},{other.url}", default_provider="ollama")
        threads = [threading.Thread(target=router.complete, args=(MESSAGES,)) for _ in range(4)]
        for started, thread in enumerate(threads, 1):
            thread.start()
            # Each request is in flight at a server before the next one picks an endpoint (a condition, not a
            # guessed pause).
            deadline = time.monotonic() + 5
            while ollama.in_flight + other.in_flight < started and time.monotonic() < deadline:
                time.sleep(0.001)
        for thread in threads:
            thread.join()
        assert (ollama.calls("/api/chat"), other.calls("/api/chat")) == (2, 2)
        assert ollama.max_in_flight == other.max_in_flight == 2
    finally:
        other.close()


def test_whole_pool_down_falls_back_to_cloud(make_router, anthropic_fake):
    router = make_router(
        ollama_base_url=f"{closed_port_url()},{closed_port_url()}",
        default_provider="ollama",
        claude_api_key="sk-ant-x",
        claude_base_url=anthropic_fake.url,
    )
    response = router.complete(MESSAGES)
    assert response.provider is LLMProvider.CLAUDE
    assert [a.outcome for a in response.attempts] == ["connect", "connect", "ok"]


def test_a_probe_abandoned_by_the_caller_does_not_wedge_the_breaker(make_router, anthropic_fake, ollama):
    clock = Clock()
    anthropic_fake.queue(Reply.fail(500))
    router = make_router(
        claude_api_key="sk-ant-x",
        claude_base_url=anthropic_fake.url,
        ollama_base_url=ollama.url,
        retry=NO_RETRY,
        breaker=BreakerPolicy(failure_threshold=1, cooldown=0.2, clock=clock),
    )
    assert router.complete(MESSAGES).provider is LLMProvider.OLLAMA  # Claude's circuit opens
    clock.now += 0.2
    stream = router.stream(MESSAGES)
    assert next(stream).text == "Hello"  # the half-open probe is streaming from Claude...
    stream.close()  # ...and the caller walks away: no verdict on Claude
    assert router.complete(MESSAGES).provider is LLMProvider.CLAUDE
    assert anthropic_fake.calls() == 3


def test_deadline_too_short_for_a_retry_falls_back_instead_of_waiting(make_router, anthropic_fake, ollama):
    anthropic_fake.default = Reply.fail(429, headers={"retry-after": "1.5"})
    router = make_router(
        claude_api_key="sk-ant-x",
        claude_base_url=anthropic_fake.url,
        ollama_base_url=ollama.url,
        timeouts=Timeouts(deadline=1.0),
    )
    began = time.monotonic()
    response = router.complete(MESSAGES)
    assert time.monotonic() - began < 1.0
    assert response.provider is LLMProvider.OLLAMA
    assert [a.outcome for a in response.attempts] == ["rate_limit", "ok"]
