"""Streaming: text deltas and a final usage record for every provider, sync and async; fallback only
before the first token; errors inside a 200 stream are failures."""

from __future__ import annotations

import pytest

from cortex_client import AllProvidersFailed, ErrorKind, LLMProvider, StreamInterrupted, Timeouts
from tests.support.fakes import FakeOpenAI, Reply

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
EXPECTED = ["Hello", " from", " the", " fake"]


@pytest.fixture
def all_providers(make_router, anthropic_fake, kimi_fake, openai_fake, ollama):
    return make_router(
        claude_api_key="sk-ant-test-key-000000000000",
        kimi_api_key="sk-kimi-test-key-00000000000",
        openai_api_key="sk-openai-test-key-000000000",
        claude_base_url=anthropic_fake.url,
        kimi_base_url=kimi_fake.url + "/v1",
        openai_base_url=openai_fake.url + "/v1",
        ollama_base_url=ollama.url,
    )


@pytest.mark.parametrize("provider", list(LLMProvider))
def test_stream_yields_deltas_then_a_final_usage_record(all_providers, provider):
    chunks = list(all_providers.stream(MESSAGES, force_provider=provider))
    assert [c.text for c in chunks[:-1]] == EXPECTED
    final = chunks[-1]
    assert final.done and final.text == ""
    assert final.response is not None
    assert final.response.provider is provider
    assert final.response.content == "Hello from the fake"
    assert final.response.finish_reason == "stop"
    assert final.response.output_tokens > 0
    assert final.response.tokens_used == final.response.input_tokens + final.response.output_tokens
    assert all_providers.get_stats()["providers"][provider.value]["requests"] == 1


@pytest.mark.anyio
@pytest.mark.parametrize("provider", list(LLMProvider))
async def test_astream_yields_deltas_then_a_final_usage_record(all_providers, provider):
    chunks = [chunk async for chunk in all_providers.astream(MESSAGES, force_provider=provider)]
    assert [c.text for c in chunks[:-1]] == EXPECTED
    assert chunks[-1].response is not None
    assert chunks[-1].response.provider is provider
    await all_providers.aclose()


def test_ollama_stream_reports_tokens_per_second(make_router, ollama):
    router = make_router(ollama_base_url=ollama.url, default_provider="ollama")
    final = list(router.stream(MESSAGES))[-1].response
    assert final is not None
    # the fake reports eval_count=4 over eval_duration=0.5 s
    assert final.tokens_per_second == pytest.approx(8.0)


def test_cut_before_first_token_is_retried_on_the_same_provider(make_router, anthropic_fake, ollama):
    anthropic_fake.queue(Reply(cut_after=0))
    router = make_router(claude_api_key="sk-ant-x", claude_base_url=anthropic_fake.url, ollama_base_url=ollama.url)
    chunks = list(router.stream(MESSAGES))
    assert "".join(c.text for c in chunks) == "Hello from the fake"
    assert chunks[-1].response is not None
    assert [a.outcome for a in chunks[-1].response.attempts] == ["stream", "ok"]
    assert anthropic_fake.calls() == 2
    assert ollama.calls() == 0


def test_stream_cut_before_first_token_every_time_falls_back(make_router, anthropic_fake, ollama):
    anthropic_fake.default = Reply(cut_after=0)
    router = make_router(claude_api_key="sk-ant-x", claude_base_url=anthropic_fake.url, ollama_base_url=ollama.url)
    chunks = list(router.stream(MESSAGES))
    assert [c.text for c in chunks[:-1]] == EXPECTED  # nothing duplicated from the failed tries
    assert chunks[-1].response is not None
    assert chunks[-1].response.provider is LLMProvider.OLLAMA
    assert anthropic_fake.calls() == 3
    assert ollama.calls("/api/chat") == 1


@pytest.mark.parametrize("provider", [LLMProvider.CLAUDE, LLMProvider.OPENAI, LLMProvider.OLLAMA])
def test_stream_cut_after_first_token_raises_and_never_falls_back(
    make_router, anthropic_fake, openai_fake, ollama, provider
):
    fake = {LLMProvider.CLAUDE: anthropic_fake, LLMProvider.OPENAI: openai_fake, LLMProvider.OLLAMA: ollama}[provider]
    fake.default = Reply(cut_after=2)
    router = make_router(
        claude_api_key="sk-ant-x",
        claude_base_url=anthropic_fake.url,
        openai_api_key="sk-openai-x",
        openai_base_url=openai_fake.url + "/v1",
        ollama_base_url=ollama.url,
        default_provider=provider,
    )
    received: list[str] = []
    with pytest.raises(StreamInterrupted) as info:
        for chunk in router.stream(MESSAGES):
            received.append(chunk.text)
    assert received == EXPECTED[:2]
    assert info.value.provider is provider
    others = [f for f in (anthropic_fake, openai_fake, ollama) if f is not fake]
    assert fake.calls() == 1
    assert [f.calls() for f in others] == [0, 0]


@pytest.mark.parametrize("provider", [LLMProvider.CLAUDE, LLMProvider.OPENAI, LLMProvider.OLLAMA])
def test_error_event_inside_a_200_stream_is_a_failure(make_router, anthropic_fake, openai_fake, ollama, provider):
    fake = {LLMProvider.CLAUDE: anthropic_fake, LLMProvider.OPENAI: openai_fake, LLMProvider.OLLAMA: ollama}[provider]
    fake.default = Reply(error_after=1)
    router = make_router(
        claude_api_key="sk-ant-x",
        claude_base_url=anthropic_fake.url,
        openai_api_key="sk-openai-x",
        openai_base_url=openai_fake.url + "/v1",
        ollama_base_url=ollama.url,
    )
    with pytest.raises(StreamInterrupted) as info:
        list(router.stream(MESSAGES, force_provider=provider))
    assert info.value.kind is ErrorKind.STREAM


def test_error_line_before_any_token_falls_back(make_router, ollama, anthropic_fake):
    ollama.default = Reply(error_after=0)  # HTTP 200, then {"error": ...} as the first line
    router = make_router(
        default_provider="ollama",
        ollama_base_url=ollama.url,
        claude_api_key="sk-ant-x",
        claude_base_url=anthropic_fake.url,
    )
    chunks = list(router.stream(MESSAGES))
    final = chunks[-1].response
    assert final is not None
    assert final.provider is LLMProvider.CLAUDE
    assert [a.outcome for a in final.attempts] == ["stream", "stream", "stream", "ok"]
    assert "model runner crashed" in (final.attempts[0].error or "")


@pytest.mark.anyio
async def test_async_stream_cut_after_first_token_raises(make_router, ollama, anthropic_fake):
    ollama.default = Reply(cut_after=1)
    router = make_router(
        default_provider="ollama",
        ollama_base_url=ollama.url,
        claude_api_key="sk-ant-x",
        claude_base_url=anthropic_fake.url,
    )
    received = []
    with pytest.raises(StreamInterrupted):
        async for chunk in router.astream(MESSAGES):
            received.append(chunk.text)
    assert received == ["Hello"]
    assert anthropic_fake.calls() == 0
    await router.aclose()


@pytest.mark.anyio
async def test_async_stream_falls_back_before_first_token(make_router, ollama, anthropic_fake):
    anthropic_fake.default = Reply.fail(503)
    router = make_router(claude_api_key="sk-ant-x", claude_base_url=anthropic_fake.url, ollama_base_url=ollama.url)
    chunks = [c async for c in router.astream(MESSAGES)]
    assert chunks[-1].response is not None
    assert chunks[-1].response.provider is LLMProvider.OLLAMA
    assert anthropic_fake.calls() == 3
    await router.aclose()


def test_ollama_cold_start_gets_a_longer_first_byte_timeout_than_cloud(make_router, ollama, anthropic_fake):
    """A loading model sends nothing for a while; aborting would make Ollama abort the load."""
    ollama.default = Reply(delay=0.6)
    anthropic_fake.default = Reply(delay=0.6)
    router = make_router(
        claude_api_key="sk-ant-x",
        claude_base_url=anthropic_fake.url,
        ollama_base_url=ollama.url,
        timeouts=Timeouts(ollama_connect=0.2, ollama_read=5.0, cloud_connect=0.2, cloud_read=0.3, deadline=20.0),
    )
    local = list(router.stream(MESSAGES, force_provider=LLMProvider.OLLAMA))[-1].response
    assert local is not None
    assert local.content == "Hello from the fake"
    with pytest.raises(AllProvidersFailed) as info:
        router.complete(MESSAGES, force_provider=LLMProvider.CLAUDE)
    assert {a.outcome for a in info.value.attempts} == {"timeout"}


def test_stream_without_usage_from_the_server_is_estimated_and_flagged(make_router, ollama):
    fake = FakeOpenAI(send_usage=False)
    try:
        router = make_router(openai_api_key="sk-openai-x", openai_base_url=fake.url + "/v1", ollama_base_url=ollama.url)
        final = list(router.stream(MESSAGES, force_provider=LLMProvider.OPENAI))[-1].response
        assert final is not None
        assert final.usage_estimated
        assert final.output_tokens == len(EXPECTED)  # one token per delta
        assert final.input_tokens == len("Be brief.hi") // 4
        assert final.cost_usd > 0
        complete = router.complete(MESSAGES, force_provider=LLMProvider.OPENAI)
        assert complete.usage_estimated and complete.output_tokens == len("Hello from the fake") // 4 + 1
        assert not router.complete(MESSAGES, force_provider=LLMProvider.OLLAMA).usage_estimated
    finally:
        fake.close()


# --- issue 27, item 13: "0+0 (estimated)" from a local server that sends no usage -------------------------------


def test_a_local_openai_style_server_without_usage_gets_estimates_not_zeros(make_router):
    """OLLAMA_BASE_URL at a server like llama.cpp's Python one (no usage, in a stream or not): estimated counts."""
    fake = FakeOpenAI(send_usage=False)
    try:
        router = make_router(ollama_base_url=fake.url, default_provider="ollama", ollama_model="gemma")
        final = list(router.stream(MESSAGES))[-1].response
        assert final is not None and final.usage_estimated
        assert (final.input_tokens, final.output_tokens) == (len("Be brief.hi") // 4, len(EXPECTED))
        assert fake.requests[-1].body["stream_options"] == {"include_usage": True}  # asked for, all the same
        complete = router.complete(MESSAGES)
        assert complete.usage_estimated
        assert (complete.input_tokens, complete.output_tokens) == (2, len("Hello from the fake") // 4 + 1)
    finally:
        fake.close()


def test_a_local_openai_style_server_that_sends_usage_is_believed(make_router, openai_fake):
    router = make_router(ollama_base_url=openai_fake.url, default_provider="ollama", ollama_model="gemma")
    final = list(router.stream(MESSAGES))[-1].response
    assert final is not None and not final.usage_estimated
    assert (final.input_tokens, final.output_tokens) == (11, 5)  # the fake's usage chunk


def test_ollamas_counts_are_used_and_a_cached_prompts_missing_count_is_estimated(make_router, ollama):
    router = make_router(ollama_base_url=ollama.url, default_provider="ollama")
    final = list(router.stream(MESSAGES))[-1].response
    assert final is not None and not final.usage_estimated
    assert (final.input_tokens, final.output_tokens) == (7, len(EXPECTED))
    ollama.default = Reply(extra={"prompt_eval_count": None})  # Ollama leaves it out when the prompt was cached
    final = list(router.stream(MESSAGES))[-1].response
    assert final is not None and final.usage_estimated
    assert (final.input_tokens, final.output_tokens) == (len("Be brief.hi") // 4, len(EXPECTED))


@pytest.mark.parametrize("provider", list(LLMProvider))
def test_async_calls_work_across_separate_event_loops(all_providers, provider):
    """A CLI may call asyncio.run() more than once; a pooled connection of a closed loop must not be reused."""
    import asyncio

    for _ in range(2):
        response = asyncio.run(all_providers.acomplete(MESSAGES, force_provider=provider))
        assert [a.outcome for a in response.attempts] == ["ok"]
