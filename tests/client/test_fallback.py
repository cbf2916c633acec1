"""Fallback chain, owned retries and error classes against fake provider servers on loopback."""

from __future__ import annotations

import time

import pytest

from cortex_client import (
    AllProvidersFailed,
    ConfigError,
    ErrorKind,
    LLMProvider,
    ProviderError,
    RetryPolicy,
    Timeouts,
)
from tests.support.fakes import FakeAnthropic, FakeOllama, Reply, closed_port_url

from .conftest import FAST_RETRY

MESSAGES = [{"role": "user", "content": "hi"}]
CLAUDE_KEY = "sk-ant-test-key-000000000000"
OPENAI_KEY = "sk-openai-test-key-000000000"


def claude_then_ollama(make_router, anthropic_fake: FakeAnthropic, ollama: FakeOllama, **kwargs):
    """USER_CHAT routes to Claude first (the original table); Ollama is the last fallback."""
    return make_router(
        claude_api_key=CLAUDE_KEY, claude_base_url=anthropic_fake.url, ollama_base_url=ollama.url, **kwargs
    )


def outcomes(attempts) -> list[str]:
    return [a.outcome for a in attempts]


def test_refused_primary_falls_back_without_retrying(make_router, ollama):
    router = make_router(claude_api_key=CLAUDE_KEY, claude_base_url=closed_port_url(), ollama_base_url=ollama.url)
    response = router.complete(MESSAGES)
    assert response.provider is LLMProvider.OLLAMA
    assert response.content == "Hello from the fake"
    assert outcomes(response.attempts) == ["connect", "ok"]  # a refused port is not retried
    assert ollama.calls("/api/chat") == 1


@pytest.mark.parametrize("status", [500, 502, 503, 529])
def test_server_error_is_retried_then_falls_back_with_exact_call_count(make_router, anthropic_fake, ollama, status):
    anthropic_fake.default = Reply.fail(status)
    router = claude_then_ollama(make_router, anthropic_fake, ollama)
    response = router.complete(MESSAGES)
    assert response.provider is LLMProvider.OLLAMA
    assert anthropic_fake.calls("/v1/messages") == 1 + FAST_RETRY.max_retries
    assert ollama.calls("/api/chat") == 1
    assert outcomes(response.attempts) == ["server"] * 3 + ["ok"]
    assert {a.status for a in response.attempts[:3]} == {status}


def test_server_error_then_success_stays_on_the_same_provider(make_router, anthropic_fake, ollama):
    anthropic_fake.queue(Reply.fail(500))
    router = claude_then_ollama(make_router, anthropic_fake, ollama)
    response = router.complete(MESSAGES)
    assert response.provider is LLMProvider.CLAUDE
    assert anthropic_fake.calls() == 2
    assert ollama.calls() == 0


def test_429_waits_for_retry_after_then_succeeds(make_router, openai_fake):
    openai_fake.queue(Reply.fail(429, headers={"retry-after": "0.3"}))
    router = make_router(
        openai_api_key=OPENAI_KEY,
        openai_base_url=openai_fake.url + "/v1",
        default_provider="openai",
        ollama_base_url=closed_port_url(),
    )
    began = time.monotonic()
    response = router.complete(MESSAGES)
    assert time.monotonic() - began >= 0.3  # the server's wait was honoured, not the tiny backoff
    assert response.provider is LLMProvider.OPENAI
    assert openai_fake.calls("/chat/completions") == 2
    assert outcomes(response.attempts) == ["rate_limit", "ok"]


def test_429_with_long_retry_after_falls_back_and_skips_provider_meanwhile(make_router, openai_fake, ollama):
    openai_fake.queue(Reply.fail(429, headers={"retry-after": "120"}))  # longer than max_retry_after
    router = make_router(
        openai_api_key=OPENAI_KEY,
        openai_base_url=openai_fake.url + "/v1",
        default_provider="openai",
        ollama_base_url=ollama.url,
    )
    began = time.monotonic()
    first = router.complete(MESSAGES)
    assert time.monotonic() - began < 5
    assert first.provider is LLMProvider.OLLAMA
    second = router.complete(MESSAGES)
    assert second.provider is LLMProvider.OLLAMA
    assert openai_fake.calls() == 1  # not asked again while its Retry-After runs
    assert second.attempts[0].outcome.startswith("skipped: circuit open (rate limited")


@pytest.mark.parametrize("status", [400, 413, 422])
def test_bad_request_fails_fast_without_retry_or_fallback(make_router, anthropic_fake, ollama, status):
    anthropic_fake.default = Reply.fail(status)
    router = claude_then_ollama(make_router, anthropic_fake, ollama)
    with pytest.raises(ProviderError) as info:
        router.complete(MESSAGES)
    assert info.value.kind is ErrorKind.BAD_REQUEST
    assert info.value.status == status
    assert info.value.provider is LLMProvider.CLAUDE
    assert anthropic_fake.calls() == 1
    assert ollama.calls() == 0


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failure_falls_back_and_disables_the_provider(make_router, anthropic_fake, ollama, status):
    anthropic_fake.default = Reply.fail(status)
    router = claude_then_ollama(make_router, anthropic_fake, ollama)
    first = router.complete(MESSAGES)
    assert first.provider is LLMProvider.OLLAMA
    assert outcomes(first.attempts) == ["auth", "ok"]  # no retry with a rejected key
    second = router.complete(MESSAGES)
    assert second.provider is LLMProvider.OLLAMA
    assert anthropic_fake.calls() == 1  # disabled: the second request never reached it
    assert (
        second.attempts[0].outcome == f"skipped: circuit open (HTTP {status}: credentials rejected; next try in 600 s)"
    )


def test_kimi_auth_failure_goes_through_the_openai_compatible_path(make_router, kimi_fake, ollama):
    kimi_fake.default = Reply.fail(401)
    router = make_router(
        kimi_api_key="sk-kimi-test-key-00000000000",
        kimi_base_url=kimi_fake.url + "/v1",
        default_provider="kimi_k2",
        ollama_base_url=ollama.url,
    )
    response = router.complete(MESSAGES, task_type=__import__("cortex_client").TaskType.CODE_GENERATION)
    assert response.provider is LLMProvider.OLLAMA
    assert outcomes(response.attempts) == ["auth", "ok"]
    assert kimi_fake.calls("/v1/chat/completions") == 1


def test_model_not_found_falls_back_without_retry(make_router, ollama, anthropic_fake):
    ollama.default = Reply.fail(404, body={"error": "model 'llama3.2' not found, try pulling it first"})
    router = make_router(
        default_provider="ollama",
        ollama_base_url=ollama.url,
        claude_api_key=CLAUDE_KEY,
        claude_base_url=anthropic_fake.url,
    )
    response = router.complete(MESSAGES)
    assert response.provider is LLMProvider.CLAUDE
    assert outcomes(response.attempts) == ["not_found", "ok"]
    assert "try pulling it first" in (response.attempts[0].error or "")


def test_all_providers_down_gives_one_clear_error_quickly(make_router):
    down = closed_port_url()
    router = make_router(
        claude_api_key=CLAUDE_KEY,
        kimi_api_key="sk-kimi-test-key-00000000000",
        openai_api_key=OPENAI_KEY,
        claude_base_url=down,
        kimi_base_url=down + "/v1",
        openai_base_url=down + "/v1",
        ollama_base_url=down,
    )
    began = time.monotonic()
    with pytest.raises(AllProvidersFailed) as info:
        router.complete(MESSAGES)
    assert time.monotonic() - began < 5
    attempts = info.value.attempts
    assert [a.provider for a in attempts] == [
        LLMProvider.CLAUDE,
        LLMProvider.KIMI_K2,
        LLMProvider.OPENAI,
        LLMProvider.OLLAMA,
    ]
    assert outcomes(attempts) == ["connect"] * 4  # each provider once: no ping-pong, no recursion
    assert "all providers failed after 4 upstream call(s)" in str(info.value)
    # The breakers are open now: the next request makes no upstream call at all.
    with pytest.raises(AllProvidersFailed) as again:
        router.complete(MESSAGES)
    assert all(a.outcome.startswith("skipped: circuit open") for a in again.value.attempts)
    assert "after 0 upstream call(s)" in str(again.value)


def test_all_providers_failing_with_500_make_a_bounded_number_of_calls(
    make_router, anthropic_fake, kimi_fake, openai_fake, ollama
):
    for fake in (anthropic_fake, kimi_fake, openai_fake, ollama):
        fake.default = Reply.fail(500)
    router = make_router(
        claude_api_key=CLAUDE_KEY,
        kimi_api_key="sk-kimi-test-key-00000000000",
        openai_api_key=OPENAI_KEY,
        claude_base_url=anthropic_fake.url,
        kimi_base_url=kimi_fake.url + "/v1",
        openai_base_url=openai_fake.url + "/v1",
        ollama_base_url=ollama.url,
    )
    with pytest.raises(AllProvidersFailed):
        router.complete(MESSAGES)
    calls = [f.calls() for f in (anthropic_fake, kimi_fake, openai_fake, ollama)]
    assert calls == [3, 3, 3, 3]


def test_force_provider_never_falls_back(make_router, anthropic_fake, ollama):
    anthropic_fake.default = Reply.fail(503)
    router = claude_then_ollama(make_router, anthropic_fake, ollama, default_provider="ollama")
    with pytest.raises(AllProvidersFailed):
        router.complete(MESSAGES, force_provider=LLMProvider.CLAUDE)
    assert anthropic_fake.calls() == 3
    assert ollama.calls() == 0


def test_force_provider_that_is_not_configured_is_a_config_error(make_router, ollama):
    router = make_router(ollama_base_url=ollama.url)
    with pytest.raises(ConfigError, match="openai is not configured"):
        router.complete(MESSAGES, force_provider=LLMProvider.OPENAI)
    assert ollama.calls() == 0


def test_disabled_fallback_uses_only_the_primary(make_router, anthropic_fake, ollama):
    anthropic_fake.default = Reply.fail(500)
    router = claude_then_ollama(make_router, anthropic_fake, ollama, enable_fallback=False)
    with pytest.raises(AllProvidersFailed):
        router.complete(MESSAGES)
    assert ollama.calls() == 0


def test_one_deadline_bounds_the_whole_request(make_router, anthropic_fake, ollama):
    anthropic_fake.default = Reply(delay=3.0)  # slower than the whole request budget
    router = claude_then_ollama(make_router, anthropic_fake, ollama, timeouts=Timeouts(cloud_read=10.0, deadline=0.5))
    began = time.monotonic()
    with pytest.raises(AllProvidersFailed, match="request deadline exceeded"):
        router.complete(MESSAGES)
    assert time.monotonic() - began < 2.5
    assert ollama.calls() == 0


def test_timeouts_are_retried_then_fall_back(make_router, anthropic_fake, ollama):
    anthropic_fake.default = Reply(delay=1.0)
    router = claude_then_ollama(
        make_router,
        anthropic_fake,
        ollama,
        timeouts=Timeouts(cloud_read=0.2, deadline=20.0),
        retry=RetryPolicy(max_retries=1, initial_delay=0.001, max_delay=0.002),
    )
    response = router.complete(MESSAGES)
    assert response.provider is LLMProvider.OLLAMA
    assert outcomes(response.attempts) == ["timeout", "timeout", "ok"]


def test_empty_messages_are_rejected_before_any_request(make_router, ollama):
    router = make_router(ollama_base_url=ollama.url, default_provider="ollama")
    with pytest.raises(ConfigError, match="messages must be a non-empty list"):
        router.complete([])
    assert ollama.connections == 0


@pytest.mark.anyio
async def test_async_refused_then_500_retries_then_fallback(make_router, anthropic_fake, ollama):
    anthropic_fake.default = Reply.fail(500)
    router = make_router(
        default_provider="openai",
        openai_api_key=OPENAI_KEY,
        openai_base_url=closed_port_url() + "/v1",
        claude_api_key=CLAUDE_KEY,
        claude_base_url=anthropic_fake.url,
        ollama_base_url=ollama.url,
    )
    response = await router.acomplete(MESSAGES)
    assert response.provider is LLMProvider.OLLAMA
    assert outcomes(response.attempts) == ["connect", "server", "server", "server", "ok"]
    assert anthropic_fake.calls() == 3
    await router.aclose()


@pytest.mark.anyio
async def test_async_bad_request_fails_fast(make_router, openai_fake, ollama):
    openai_fake.default = Reply.fail(400)
    router = make_router(
        default_provider="openai",
        openai_api_key=OPENAI_KEY,
        openai_base_url=openai_fake.url + "/v1",
        ollama_base_url=ollama.url,
    )
    with pytest.raises(ProviderError) as info:
        await router.acomplete(MESSAGES)
    assert info.value.status == 400
    assert (openai_fake.calls(), ollama.calls()) == (1, 0)
    await router.aclose()
