"""LLMRouter against a real local LLM (llama.cpp serving Gemma 3 270M), as the OpenAI provider.

The router's Ollama provider speaks Ollama's native /api/chat, which llama.cpp does not serve, so the real
model is reached through the OpenAI-compatible provider with its base URL pointed at the local server.
Answers of a 270M model are poor: the tests assert shape (text, token counts, provider, model, cost).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cortex_client import LLMProvider, LLMRouter, Settings
from tests.support.net import closed_port_url

from .conftest import LlamaServer

pytestmark = pytest.mark.e2e

PRICE = (1.0, 2.0)  # USD per 1M tokens; made up, so the cost of the real token counts can be checked
MESSAGES = [{"role": "user", "content": "Name one Linux package manager."}]


@pytest.fixture
def router(llama_server: LlamaServer, tmp_path: Path) -> Iterator[LLMRouter]:
    isolated = Settings.load(environ={}, cwd=tmp_path, home=tmp_path, etc_dir=tmp_path)
    with LLMRouter(
        openai_api_key="sk-local-unused",
        openai_base_url=llama_server.base_url,
        openai_model=llama_server.model,
        default_provider=LLMProvider.OPENAI,
        ollama_base_url=closed_port_url(),
        settings=isolated,
        prices={llama_server.model: PRICE},
    ) as r:
        yield r


def expected_cost(input_tokens: int, output_tokens: int) -> float:
    return (input_tokens * PRICE[0] + output_tokens * PRICE[1]) / 1_000_000


def test_complete_returns_a_real_answer(router: LLMRouter, llama_server: LlamaServer) -> None:
    r = router.complete(MESSAGES, max_tokens=16, temperature=0.0)
    assert r.content.strip()
    assert r.provider is LLMProvider.OPENAI
    assert r.model == llama_server.model
    assert r.input_tokens > 0
    assert 0 < r.output_tokens <= 16
    assert r.tokens_used == r.input_tokens + r.output_tokens
    assert r.cost_usd == pytest.approx(expected_cost(r.input_tokens, r.output_tokens))
    assert r.finish_reason in ("stop", "length")
    assert r.usage_estimated is False  # the server's own counts
    assert r.latency_seconds > 0
    assert [a.outcome for a in r.attempts] == ["ok"]
    stats = router.get_stats()
    assert stats["total_requests"] == 1
    assert stats["providers"]["openai"]["tokens"] == r.tokens_used
    assert stats["total_cost_usd"] == pytest.approx(r.cost_usd, abs=1e-6)


def test_stream_yields_text_then_the_full_response(router: LLMRouter, llama_server: LlamaServer) -> None:
    chunks = list(router.stream(MESSAGES, max_tokens=16, temperature=0.0))
    texts = [c.text for c in chunks[:-1]]
    final = chunks[-1].response
    assert len(texts) >= 2  # really streamed, token by token
    assert all(texts) and not any(c.done for c in chunks[:-1])
    assert final is not None
    assert final.content == "".join(texts)
    assert final.provider is LLMProvider.OPENAI
    assert final.model == llama_server.model
    # llama.cpp's server ignores stream_options.include_usage: the router estimates, and says so.
    assert final.usage_estimated is True
    assert final.input_tokens > 0
    assert final.output_tokens > 0
    assert final.cost_usd == pytest.approx(expected_cost(final.input_tokens, final.output_tokens))


@pytest.mark.anyio
async def test_acomplete_returns_a_real_answer(router: LLMRouter) -> None:
    r = await router.acomplete(MESSAGES, max_tokens=8, temperature=0.0)
    assert r.content.strip()
    assert 0 < r.output_tokens <= 8


def test_refused_ollama_falls_back_to_the_real_llm(router: LLMRouter) -> None:
    """Ollama first, on a port that refuses: the stream falls back to the real model before any text."""
    ollama_first = LLMRouter(
        settings=router.settings,
        default_provider=LLMProvider.OLLAMA,
        prices=dict(router.prices),
    )
    with ollama_first:
        chunks = list(ollama_first.stream(MESSAGES, max_tokens=8, temperature=0.0))
    final = chunks[-1].response
    assert final is not None
    assert final.provider is LLMProvider.OPENAI
    assert final.content.strip()
    assert [(a.provider, a.outcome) for a in final.attempts] == [
        (LLMProvider.OLLAMA, "connect"),
        (LLMProvider.OPENAI, "ok"),
    ]


def test_the_ollama_provider_reaches_the_real_llm_behind_ollama_base_url(
    llama_server: LlamaServer, tmp_path: Path
) -> None:
    """OLLAMA_BASE_URL at llama.cpp's server (its root, as people set it): the Ollama provider finds out it is not
    an Ollama and talks /v1 to it, free of charge, through both complete and stream."""
    isolated = Settings.load(environ={}, cwd=tmp_path, home=tmp_path, etc_dir=tmp_path)
    root = llama_server.base_url.removesuffix("/v1")
    with LLMRouter(
        ollama_base_url=root, ollama_model=llama_server.model, default_provider=LLMProvider.OLLAMA, settings=isolated
    ) as router:
        r = router.complete(MESSAGES, max_tokens=8, temperature=0.0)
        assert r.provider is LLMProvider.OLLAMA and r.content.strip()
        assert r.model == llama_server.model and r.input_tokens > 0 and 0 < r.output_tokens <= 8
        assert r.cost_usd == 0.0
        assert [a.outcome for a in r.attempts] == ["ok"]
        chunks = list(router.stream(MESSAGES, max_tokens=8, temperature=0.0))
        final = chunks[-1].response
        assert final is not None and final.provider is LLMProvider.OLLAMA
        assert final.content == "".join(c.text for c in chunks[:-1]) and final.content.strip()
        # The server sends no usage in a stream: estimated from the prompt and the deltas, never "0+0" (issue 27).
        assert final.usage_estimated
        assert final.input_tokens > 0 and final.output_tokens == len(chunks) - 1
