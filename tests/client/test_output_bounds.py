"""The output bound of a request that gives no max_tokens: per provider, configurable, and tight for the local
model, which may otherwise generate until its context is full (issue 27, item 9)."""

from __future__ import annotations

import pytest

from cortex_client import (
    DEFAULT_MAX_TOKENS,
    ConfigError,
    LLMProvider,
    LLMRouter,
    check_hardware_configs_parallel,
    diagnose_errors_parallel,
    query_multiple_packages,
)
from tests.support.fakes import FakeOpenAI

MESSAGES = [{"role": "user", "content": "hi"}]


def bound_sent(fake) -> int:
    body = fake.requests[-1].body
    return body["options"]["num_predict"] if "options" in body else body["max_tokens"]


@pytest.fixture
def everyone(make_router, ollama, anthropic_fake, openai_fake):
    def make(**kwargs) -> LLMRouter:
        return make_router(
            ollama_base_url=ollama.url,
            claude_api_key="sk-ant-x",
            claude_base_url=anthropic_fake.url,
            openai_api_key="sk-openai-x",
            openai_base_url=openai_fake.url + "/v1",
            **kwargs,
        )

    return make


def test_each_provider_has_a_default_bound_and_the_local_one_is_tight(everyone, ollama, anthropic_fake, openai_fake):
    router = everyone()
    fakes = {LLMProvider.OLLAMA: ollama, LLMProvider.CLAUDE: anthropic_fake, LLMProvider.OPENAI: openai_fake}
    for provider, fake in fakes.items():
        router.complete(MESSAGES, force_provider=provider)
        assert bound_sent(fake) == DEFAULT_MAX_TOKENS[provider]
        list(router.stream(MESSAGES, force_provider=provider))
        assert bound_sent(fake) == DEFAULT_MAX_TOKENS[provider]
    assert DEFAULT_MAX_TOKENS[LLMProvider.OLLAMA] == 1024 < DEFAULT_MAX_TOKENS[LLMProvider.CLAUDE]


def test_a_local_openai_style_server_gets_the_local_bound(make_router):
    fake = FakeOpenAI()
    try:
        router = make_router(ollama_base_url=fake.url, default_provider="ollama", ollama_model="gemma")
        router.complete(MESSAGES)
        assert fake.requests[-1].path == "/v1/chat/completions" and bound_sent(fake) == 1024
    finally:
        fake.close()


def test_the_default_bounds_are_configurable(everyone, ollama, openai_fake):
    router = everyone(default_max_tokens={LLMProvider.OLLAMA: 256})
    router.complete(MESSAGES, force_provider="ollama")
    assert bound_sent(ollama) == 256
    router.complete(MESSAGES, force_provider="openai")
    assert bound_sent(openai_fake) == 4096  # the others keep theirs
    assert everyone(default_max_tokens=300).default_max_tokens == dict.fromkeys(LLMProvider, 300)


def test_a_requests_own_bound_wins(everyone, ollama):
    everyone().complete(MESSAGES, force_provider="ollama", max_tokens=77)
    assert bound_sent(ollama) == 77


@pytest.mark.parametrize("given", [0, "512", {LLMProvider.OLLAMA: -1}, {"ollama": 10}])
def test_a_bad_default_bound_is_refused(isolated, given):
    with pytest.raises(ConfigError, match="default_max_tokens"):
        LLMRouter(settings=isolated, default_max_tokens=given)


@pytest.mark.anyio
async def test_the_module_helpers_bound_their_answers(make_router, ollama):
    router = make_router(ollama_base_url=ollama.url, default_provider="ollama")
    await query_multiple_packages(router, ["nginx"])
    await diagnose_errors_parallel(router, ["E: Unable to locate package"])
    await check_hardware_configs_parallel(router, ["gpu"])
    assert [seen.body["options"]["num_predict"] for seen in ollama.requests] == [1024] * 3
    await query_multiple_packages(router, ["nginx"], max_tokens=200)
    assert bound_sent(ollama) == 200
    await router.aclose()
