"""OLLAMA_BASE_URL pointing at another local server with an OpenAI-compatible API (llama.cpp, vLLM, LM Studio),
as the original router's /v1 client allowed: detected once per endpoint, spoken to at /v1/chat/completions; a
real Ollama pays nothing for the detection. FakeOpenAI answers 404 on Ollama's paths, like those servers."""

from __future__ import annotations

import pytest

from cortex_client import AllProvidersFailed, ConfigError, LLMProvider
from tests.support.fakes import FakeOpenAI, Reply

MESSAGES = [{"role": "user", "content": "hi"}]


def paths(fake):
    return [f"{seen.method} {seen.path}" for seen in fake.requests]


@pytest.fixture
def local_router(make_router, openai_fake):
    def make(**kwargs):
        return make_router(ollama_base_url=openai_fake.url, default_provider="ollama", ollama_model="gemma", **kwargs)

    return make


def test_another_server_is_detected_once_and_spoken_to_at_v1(local_router, openai_fake):
    router = local_router()
    first = router.complete(MESSAGES)
    assert (first.provider, first.content, first.model) == (LLMProvider.OLLAMA, "Hello from the fake", "gemma")
    assert (first.input_tokens, first.output_tokens, first.cost_usd) == (11, 5, 0.0)
    assert paths(openai_fake) == ["POST /api/chat", "GET /api/version", "POST /v1/chat/completions"]
    router.complete(MESSAGES)
    assert paths(openai_fake)[3:] == ["POST /v1/chat/completions"]  # known now: no second detection
    assert openai_fake.requests[-1].body["model"] == "gemma"


def test_streaming_from_another_server(local_router, openai_fake):
    chunks = list(local_router().stream(MESSAGES))
    assert "".join(c.text for c in chunks[:-1]) == "Hello from the fake"
    final = chunks[-1].response
    assert final is not None and final.provider is LLMProvider.OLLAMA and final.output_tokens == 5
    assert openai_fake.requests[-1].body["stream"] is True


@pytest.mark.anyio
async def test_async_requests_to_another_server(local_router, openai_fake):
    router = local_router()
    response = await router.acomplete(MESSAGES)
    assert response.content == "Hello from the fake"
    assert paths(openai_fake)[-1] == "POST /v1/chat/completions"
    await router.aclose()


def test_a_real_ollama_costs_no_detection_and_its_404_stays_a_404(make_router, ollama):
    router = make_router(ollama_base_url=ollama.url, default_provider="ollama", enable_fallback=False)
    router.complete(MESSAGES)
    assert paths(ollama) == ["POST /api/chat"]
    ollama.queue(Reply.fail(404, body={"error": "model 'llama3.2' not found"}))
    with pytest.raises(AllProvidersFailed, match="not_found"):
        router.complete(MESSAGES)
    assert paths(ollama)[1:] == ["POST /api/chat"]  # known as an Ollama from its first answer: no probe


def test_a_404_from_an_unknown_ollama_is_checked_once(make_router, ollama):
    ollama.queue(Reply.fail(404, body={"error": "model 'llama3.2' not found"}))
    router = make_router(ollama_base_url=ollama.url, default_provider="ollama", enable_fallback=False)
    with pytest.raises(AllProvidersFailed, match="not_found"):
        router.complete(MESSAGES)
    assert paths(ollama) == ["POST /api/chat", "GET /api/version"]
    ollama.queue(Reply.fail(404, body={"error": "model 'llama3.2' not found"}))
    with pytest.raises(AllProvidersFailed):
        router.complete(MESSAGES)
    assert paths(ollama)[2:] == ["POST /api/chat"]


@pytest.mark.parametrize(
    ("api", "expected"), [("openai", ["POST /v1/chat/completions"]), ("native", ["POST /api/chat"])]
)
def test_ollama_api_forces_one_dialect(isolated, make_router, openai_fake, api, expected):
    settings = isolated.merged({"OLLAMA_API": api, "OLLAMA_BASE_URL": openai_fake.url})
    router = make_router(settings=settings, default_provider="ollama", enable_fallback=False)
    if api == "openai":
        assert router.complete(MESSAGES).content == "Hello from the fake"
    else:
        with pytest.raises(AllProvidersFailed):
            router.complete(MESSAGES)
    assert paths(openai_fake) == expected


def test_a_bad_ollama_api_value_is_refused(isolated):
    with pytest.raises(ConfigError, match=r"OLLAMA_API \(from argument\) must be auto, native or openai"):
        isolated.merged({"OLLAMA_API": "grpc"})


class NoChoices(FakeOpenAI):
    """An OpenAI-style server whose 200 answers carry no choices."""

    def respond(self, handler, method, path, body, reply):
        if path.endswith("/chat/completions"):
            handler.send_json(200, {"object": "chat.completion", "model": "gemma", "choices": []})
        else:
            super().respond(handler, method, path, body, reply)


def test_an_answer_without_choices_is_a_provider_failure(make_router):
    server = NoChoices()
    try:
        router = make_router(ollama_base_url=server.url, default_provider="ollama", enable_fallback=False)
        with pytest.raises(AllProvidersFailed) as caught:
            router.complete(MESSAGES)
        assert "answer without choices" in str(caught.value)
        assert router.get_stats()["providers"]["ollama"]["failures"] >= 1
    finally:
        server.close()
