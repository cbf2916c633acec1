"""Issue 9, item 15: each policy branch has a test that fails when the branch is removed: Retry-After in
milliseconds and as an HTTP date, 408/409, jitter, set_rate_limit, the temperature clamps, tool `is_error`."""

from __future__ import annotations

import asyncio
import email.utils
import time

import pytest

from cortex_client import LLMProvider, RetryPolicy
from cortex_client._retry import backoff_delay
from cortex_client.providers._base import ChatRequest
from tests.support.fakes import Reply, closed_port_url

MESSAGES = [{"role": "user", "content": "hi"}]
OPENAI_KEY = "sk-openai-test-key-000000000"


def openai_first(make_router, openai_fake):
    return make_router(
        openai_api_key=OPENAI_KEY,
        openai_base_url=openai_fake.url + "/v1",
        default_provider="openai",
        ollama_base_url=closed_port_url(),
    )


def test_retry_after_ms_wins_over_retry_after(make_router, openai_fake):
    # retry-after alone (100 s) is past max_retry_after and would mean "fall back"; the ms header says 0.3 s.
    openai_fake.queue(Reply.fail(429, headers={"retry-after-ms": "300", "retry-after": "100"}))
    router = openai_first(make_router, openai_fake)
    began = time.monotonic()
    response = router.complete(MESSAGES)
    assert time.monotonic() - began >= 0.3
    assert response.provider is LLMProvider.OPENAI
    assert [a.outcome for a in response.attempts] == ["rate_limit", "ok"]


def test_retry_after_as_an_http_date_is_honoured(make_router, openai_fake):
    # A date far past max_retry_after: the router must not wait (nor retry at once) but fall back.
    later = email.utils.formatdate(time.time() + 3600, usegmt=True)
    openai_fake.queue(Reply.fail(429, headers={"retry-after": later}))
    router = openai_first(make_router, openai_fake)
    with pytest.raises(Exception, match="rate_limit"):
        router.complete(MESSAGES)  # the fallback (Ollama) is down too
    assert openai_fake.calls("/chat/completions") == 1
    endpoint = router.providers[LLMProvider.OPENAI].pool.endpoints[0]
    assert not endpoint.breaker.allow()  # skipped while the server's date has not come


@pytest.mark.parametrize("status", [408, 409])
def test_408_and_409_are_retried_on_the_same_provider(make_router, openai_fake, status):
    openai_fake.queue(Reply.fail(status))
    response = openai_first(make_router, openai_fake).complete(MESSAGES)
    assert response.provider is LLMProvider.OPENAI
    assert [a.outcome for a in response.attempts] == ["timeout", "ok"]


def test_backoff_is_jittered_within_its_bounds():
    policy = RetryPolicy(initial_delay=1.0, max_delay=8.0, jitter=0.5)
    delays = [backoff_delay(2, policy) for _ in range(200)]
    assert all(d is not None and 2.0 <= d <= 4.0 for d in delays)
    assert len({round(d, 6) for d in delays if d is not None}) > 100  # spread out, not one fixed delay


def test_set_rate_limit_bounds_complete_batch(make_router, ollama):
    ollama.default = Reply(delay=0.2)
    router = make_router(ollama_base_url=ollama.url, default_provider="ollama")
    router.set_rate_limit(3)
    results = asyncio.run(router.complete_batch([{"messages": MESSAGES} for _ in range(8)]))
    assert all(r.error is None for r in results)
    assert ollama.max_in_flight == 3


@pytest.mark.parametrize(("given", "sent"), [(1.7, 1.0), (-0.5, 0.0), (0.4, 0.4)])
def test_kimi_temperature_is_clamped_to_its_range(make_router, kimi_fake, given, sent):
    router = make_router(kimi_api_key="sk-kimi-x", kimi_base_url=kimi_fake.url + "/v1")
    router.complete(MESSAGES, force_provider="kimi_k2", temperature=given)
    assert kimi_fake.requests[-1].body["temperature"] == sent


@pytest.mark.parametrize(("given", "sent"), [(1.7, 1.0), (-0.5, 0.0), (0.4, 0.4)])
def test_claude_temperature_is_clamped_where_the_sdk_takes_one(make_router, anthropic_fake, given, sent):
    router = make_router(claude_api_key="sk-ant-x", claude_base_url=anthropic_fake.url)
    provider = router.providers[LLMProvider.CLAUDE]
    provider._takes_temperature = True  # anthropic < 2 (the pins allow it) takes `temperature`
    params = provider._params(ChatRequest(MESSAGES, given, 10), 10.0, False)
    assert params["temperature"] == sent


def test_a_tool_error_reaches_claude_as_is_error(make_router, anthropic_fake):
    router = make_router(claude_api_key="sk-ant-x", claude_base_url=anthropic_fake.url)
    conversation = [
        *MESSAGES,
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "t1", "content": "lookup failed: timeout", "is_error": True},
        {"role": "tool", "tool_call_id": "t2", "content": "fine"},
    ]
    router.complete(conversation, force_provider="claude")
    results = anthropic_fake.requests[-1].body["messages"][-1]["content"]
    assert [r.get("is_error", False) for r in results] == [True, False]
