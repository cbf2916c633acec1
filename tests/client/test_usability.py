"""Issue 27, item 13 (library side): a closed router says so, log lines carry one prefix, a breaker on the only
endpoint says when it retries and lets a recovered server back at once, and errors say what to do."""

from __future__ import annotations

import asyncio
import logging

import pytest

from cortex_client import AllProvidersFailed, BreakerPolicy, ConfigError, LLMProvider, RetryPolicy
from tests.support.fakes import Clock, Reply, closed_port_url

MESSAGES = [{"role": "user", "content": "hi"}]
NO_RETRY = RetryPolicy(max_retries=0)


def test_a_closed_router_refuses_requests_clearly(make_router, ollama):
    router = make_router(ollama_base_url=ollama.url, default_provider="ollama")
    router.complete(MESSAGES)
    router.close()
    with pytest.raises(ConfigError, match="this LLMRouter is closed"):
        router.complete(MESSAGES)
    with pytest.raises(ConfigError, match="closed"):
        list(router.stream(MESSAGES))
    assert ollama.calls("/api/chat") == 1


def test_an_async_closed_router_refuses_requests_clearly(make_router, ollama):
    router = make_router(ollama_base_url=ollama.url, default_provider="ollama")

    async def use_then_close() -> None:
        async with router:
            await router.acomplete(MESSAGES)
        await router.acomplete(MESSAGES)

    with pytest.raises(ConfigError, match="this LLMRouter is closed"):
        asyncio.run(use_then_close())


def test_log_lines_carry_the_logger_name_once(make_router, anthropic_fake, ollama, caplog):
    anthropic_fake.default = Reply.fail(500)
    router = make_router(claude_api_key="sk-ant-x", claude_base_url=anthropic_fake.url, ollama_base_url=ollama.url)
    with caplog.at_level(logging.DEBUG, logger="cortex_client"):
        router.complete(MESSAGES)
    formatted = [logging.Formatter("%(name)s: %(message)s").format(r) for r in caplog.records]
    assert any("trying the next target" in line for line in formatted)
    assert not any(line.startswith("cortex_client: cortex_client:") for line in formatted), formatted


def test_a_breaker_on_the_only_endpoint_probes_a_recovered_server_at_once(make_router, ollama):
    clock = Clock()
    router = make_router(
        ollama_base_url=ollama.url,
        default_provider="ollama",
        enable_fallback=False,
        retry=NO_RETRY,
        breaker=BreakerPolicy(failure_threshold=1, cooldown=15.0, clock=clock),
    )
    ollama.queue(Reply.fail(500))
    with pytest.raises(AllProvidersFailed):
        router.complete(MESSAGES)  # the circuit opens for 15 s
    clock.now += 1
    served = router.complete(MESSAGES)  # the server is back: nothing else to try, so one probe goes through
    assert served.content == "Hello from the fake"
    assert [a.outcome for a in served.attempts] == ["ok"]
    assert ollama.calls("/api/chat") == 2


def test_an_open_breaker_says_when_it_tries_again(make_router, anthropic_fake, ollama):
    """Where the request has somewhere else to go, the open circuit is skipped, and the attempt says until when;
    a rejected key (the only endpoint) gets no early probe: it stays off for its time."""
    clock = Clock()
    anthropic_fake.default = Reply.fail(401)
    router = make_router(
        claude_api_key="sk-ant-x",
        claude_base_url=anthropic_fake.url,
        ollama_base_url=ollama.url,
        retry=NO_RETRY,
        breaker=BreakerPolicy(failure_threshold=1, cooldown=15.0, auth_disable=600.0, clock=clock),
    )
    router.complete(MESSAGES)
    clock.now += 100
    fell_back = router.complete(MESSAGES)
    assert fell_back.attempts[0].outcome == "skipped: circuit open (HTTP 401: credentials rejected; next try in 500 s)"
    with pytest.raises(AllProvidersFailed, match="next try in 500 s"):
        router.complete(MESSAGES, force_provider="claude")
    assert anthropic_fake.calls() == 1


def test_ollama_down_says_to_start_it_or_point_at_it(make_router):
    down = closed_port_url()
    router = make_router(ollama_base_url=down, default_provider="ollama", enable_fallback=False)
    with pytest.raises(AllProvidersFailed) as caught:
        router.complete(MESSAGES)
    assert caught.value.hints == [
        f"start Ollama (systemctl start ollama, or: ollama serve), or set OLLAMA_BASE_URL to where it listens "
        f"(now {down})",
        "cortex-llm doctor checks the whole setup",
    ]
    assert "  what to do: start Ollama (systemctl start ollama, or: ollama serve)" in str(caught.value)


def test_a_missing_model_says_how_to_pull_it(make_router, ollama):
    ollama.default = Reply.fail(404, body={"error": "model 'llama3.2' not found"})
    router = make_router(ollama_base_url=ollama.url, default_provider="ollama", enable_fallback=False)
    with pytest.raises(AllProvidersFailed, match=r"what to do: pull the model: cortex-llm models pull llama3\.2"):
        router.complete(MESSAGES)


def test_a_rejected_key_says_which_variable_to_check(make_router, anthropic_fake):
    anthropic_fake.default = Reply.fail(401)
    router = make_router(claude_api_key="sk-ant-x", claude_base_url=anthropic_fake.url)
    with pytest.raises(AllProvidersFailed, match="claude rejected its API key: check ANTHROPIC_API_KEY"):
        router.complete(MESSAGES, force_provider=LLMProvider.CLAUDE)
    with pytest.raises(ConfigError, match=r"openai is not configured \(no API key\): set OPENAI_API_KEY"):
        router.complete(MESSAGES, force_provider=LLMProvider.OPENAI)
