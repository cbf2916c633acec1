"""Issue 26, item 5: Ollama's context window per model and per request, and no silently truncated answer.

The Ollama fake answers as Ollama does (ollama#17889): a prompt longer than the window (options.num_ctx, else 4096)
is cut, the answer is still a 200, and its prompt_eval_count is the window, not the prompt."""

from __future__ import annotations

import pytest

from cortex_client import ConfigError, ErrorKind, LLMProvider, ProviderError, StreamInterrupted

from .conftest import cloud_router_kwargs

SHORT = [{"role": "user", "content": "hi"}]
LONG = [{"role": "user", "content": "word " * 8000}]  # about 10,000 tokens: more than 4096 and 8192


def sent_options(ollama):
    return [r.body["options"] for r in ollama.requests if r.path.endswith("/api/chat")]


def test_num_ctx_per_request_and_per_model_reach_ollama(make_router, ollama):
    router = make_router(ollama_base_url=ollama.url, default_provider="ollama", ollama_num_ctx={"llama3.2": 8192})
    router.complete(SHORT)
    router.complete(SHORT, num_ctx=16384)
    assert [o.get("num_ctx") for o in sent_options(ollama)] == [8192, 16384]


def test_no_num_ctx_keeps_the_modelfiles(make_router, ollama):
    make_router(ollama_base_url=ollama.url, default_provider="ollama").complete(SHORT)
    assert "num_ctx" not in sent_options(ollama)[0]


def test_a_num_ctx_for_another_model_is_not_sent(make_router, ollama):
    make_router(ollama_base_url=ollama.url, default_provider="ollama", ollama_num_ctx={"qwen3": 8192}).complete(SHORT)
    assert "num_ctx" not in sent_options(ollama)[0]


def test_a_truncated_prompt_falls_back(make_router, ollama, anthropic_fake, kimi_fake, openai_fake):
    router = make_router(
        **cloud_router_kwargs(anthropic_fake, kimi_fake, openai_fake),
        ollama_base_url=ollama.url,
        default_provider="ollama",
    )
    response = router.complete(LONG)
    assert response.provider is not LLMProvider.OLLAMA
    assert response.attempts[0].provider is LLMProvider.OLLAMA and response.attempts[0].outcome == "context"
    assert "truncated" in (response.attempts[0].error or "")


def test_a_truncated_prompt_raises_under_the_raise_policy(make_router, ollama, anthropic_fake, kimi_fake, openai_fake):
    router = make_router(
        **cloud_router_kwargs(anthropic_fake, kimi_fake, openai_fake),
        ollama_base_url=ollama.url,
        default_provider="ollama",
        on_truncation="raise",
    )
    with pytest.raises(ProviderError) as raised:
        router.complete(LONG)
    assert raised.value.kind is ErrorKind.BAD_REQUEST and "num_ctx 4096" in str(raised.value)
    assert anthropic_fake.requests == []


def test_a_window_large_enough_is_no_truncation(make_router, ollama):
    router = make_router(ollama_base_url=ollama.url, default_provider="ollama")
    response = router.complete(LONG, num_ctx=32768)
    assert response.provider is LLMProvider.OLLAMA


def test_a_truncated_stream_does_not_end_as_a_whole_answer(make_router, ollama):
    router = make_router(ollama_base_url=ollama.url, default_provider="ollama")
    with pytest.raises((StreamInterrupted, ProviderError)):
        list(router.stream(LONG))


def test_on_truncation_and_num_ctx_are_checked(make_router, ollama):
    with pytest.raises(ConfigError, match="on_truncation"):
        make_router(on_truncation="ignore")
    with pytest.raises(ConfigError, match="num_ctx"):
        make_router(ollama_base_url=ollama.url).complete(SHORT, num_ctx=0)
