"""Issue 26, item 4: embeddings through the router (Ollama /api/embed, OpenAI's embeddings), with the fallback,
deadline, breaker and stats of chat. Real loopback fakes of both APIs."""

from __future__ import annotations

import pytest

from cortex_client import ConfigError, Embeddings, LLMProvider
from tests.support.fakes import Reply

from .conftest import cloud_router_kwargs

TEXTS = ["nginx", "postgresql"]


@pytest.fixture
def router(make_router, ollama, anthropic_fake, kimi_fake, openai_fake):
    return make_router(**cloud_router_kwargs(anthropic_fake, kimi_fake, openai_fake), ollama_base_url=ollama.url)


def test_ollama_embeds_first(router, ollama):
    result = router.embed(TEXTS)
    assert isinstance(result, Embeddings) and result.provider is LLMProvider.OLLAMA
    assert result.vectors == [[5.0, 0.5, -0.5], [10.0, 0.5, -0.5]]
    assert (result.model, result.input_tokens, result.cost_usd) == ("nomic-embed-text", 5, 0.0)
    assert ollama.requests[-1].path == "/api/embed" and ollama.requests[-1].body["input"] == TEXTS
    assert router.get_stats()["providers"]["ollama"]["requests"] == 1


def test_a_failing_ollama_falls_back_to_openai(router, ollama, openai_fake):
    ollama.default = Reply.fail(503)
    result = router.embed(TEXTS)
    assert result.provider is LLMProvider.OPENAI and result.vectors == [[5.0, 1.0], [10.0, 1.0]]
    assert result.model == "text-embedding-3-small" and result.cost_usd == pytest.approx(8 * 0.02 / 1_000_000)
    assert [a.provider for a in result.attempts][-1] is LLMProvider.OPENAI
    sent = openai_fake.requests[-1].body
    assert (sent["model"], sent["input"]) == ("text-embedding-3-small", TEXTS)


@pytest.mark.anyio
async def test_aembed(router):
    result = await router.aembed(TEXTS, force_provider="openai")
    assert result.provider is LLMProvider.OPENAI and len(result.vectors) == 2
    await router.aclose()


def test_a_provider_without_embeddings_is_refused(router):
    with pytest.raises(ConfigError, match="no embeddings API"):
        router.embed(TEXTS, force_provider="claude")
    with pytest.raises(ConfigError, match="texts"):
        router.embed([])


def test_an_answer_with_the_wrong_number_of_vectors_falls_back(router, ollama):
    ollama.default = Reply.raw(b'{"model": "m", "embeddings": [[1.0]]}')
    assert router.embed(TEXTS).provider is LLMProvider.OPENAI


def test_local_only_never_embeds_in_the_cloud(make_router, ollama, openai_fake):
    ollama.default = Reply.fail(503)
    router = make_router(ollama_base_url=ollama.url, openai_api_key="sk-x", local_only=True)
    with pytest.raises(Exception, match="ollama"):
        router.embed(TEXTS)
    assert openai_fake.requests == []
