"""Local-only mode: no connection to any cloud endpoint, ever; `*-cloud` Ollama models refused."""

from __future__ import annotations

import pytest

from cortex_client import AllProvidersFailed, LLMProvider, LLMRouter, LocalOnlyViolation, Settings
from tests.support.fakes import ConnectionRecorder, Reply, closed_port_url

MESSAGES = [{"role": "user", "content": "private data"}]


@pytest.fixture
def recorder():
    listener = ConnectionRecorder()
    yield listener
    listener.close()


@pytest.fixture
def clouds(anthropic_fake, kimi_fake, openai_fake):
    return anthropic_fake, kimi_fake, openai_fake


def cloud_everywhere(clouds, recorder, use_recorder: bool) -> dict[str, str]:
    """Cloud keys configured; base URLs at the fakes, or at a socket that records any connection."""
    urls = (recorder.url,) * 3 if use_recorder else tuple(fake.url for fake in clouds)
    return {
        "claude_api_key": "sk-ant-x",
        "kimi_api_key": "sk-kimi-x",
        "openai_api_key": "sk-openai-x",
        "claude_base_url": urls[0],
        "kimi_base_url": urls[1] + "/v1",
        "openai_base_url": urls[2] + "/v1",
    }


@pytest.mark.parametrize("use_recorder", [False, True])
def test_local_only_with_ollama_down_errors_and_never_touches_the_cloud(make_router, clouds, recorder, use_recorder):
    router = make_router(
        local_only=True,
        ollama_base_url=closed_port_url(),
        **cloud_everywhere(clouds, recorder, use_recorder),
    )
    for task in ("complete", "stream"):
        with pytest.raises(AllProvidersFailed) as info:
            if task == "complete":
                router.complete(MESSAGES)
            else:
                list(router.stream(MESSAGES))
        assert {a.provider for a in info.value.attempts} == {LLMProvider.OLLAMA}
    assert set(router.providers) == {LLMProvider.OLLAMA}  # cloud adapters are never even built
    assert [fake.connections for fake in clouds] == [0, 0, 0]
    assert recorder.connections == 0


@pytest.mark.anyio
async def test_local_only_async_with_ollama_failing_never_touches_the_cloud(make_router, clouds, recorder, ollama):
    ollama.default = Reply.fail(500)
    router = make_router(
        local_only=True,
        ollama_base_url=ollama.url,
        **cloud_everywhere(clouds, recorder, False),
    )
    with pytest.raises(AllProvidersFailed):
        await router.acomplete(MESSAGES)
    assert ollama.calls("/api/chat") == 3
    assert [fake.connections for fake in clouds] == [0, 0, 0]
    await router.aclose()


def test_local_only_from_env_key(tmp_path, anthropic_fake, recorder):
    settings = Settings.load(
        environ={
            "CORTEX_LOCAL_ONLY": "true",
            "ANTHROPIC_API_KEY": "sk-ant-x",
            "ANTHROPIC_BASE_URL": recorder.url,
            "OLLAMA_BASE_URL": closed_port_url(),
        },
        cwd=tmp_path,
        home=tmp_path,
        etc_dir=tmp_path,
    )
    router = LLMRouter(settings=settings)
    assert router.local_only
    with pytest.raises(AllProvidersFailed):
        router.complete(MESSAGES)
    assert recorder.connections == 0


def test_forcing_a_cloud_provider_in_local_only_mode_is_refused(make_router, clouds, recorder, ollama):
    router = make_router(local_only=True, ollama_base_url=ollama.url, **cloud_everywhere(clouds, recorder, False))
    with pytest.raises(LocalOnlyViolation):
        router.complete(MESSAGES, force_provider=LLMProvider.CLAUDE)
    assert [fake.connections for fake in clouds] == [0, 0, 0]
    assert ollama.connections == 0


@pytest.mark.parametrize("model", ["gpt-oss:120b-cloud", "glm-4.6:cloud", "qwen3-coder:480b-CLOUD"])
def test_ollama_cloud_models_are_refused_in_local_only_mode(make_router, ollama, model):
    with pytest.raises(LocalOnlyViolation, match=r"ollama\.com"):
        make_router(local_only=True, ollama_base_url=ollama.url, ollama_model=model)
    assert ollama.connections == 0


def test_ollama_cloud_models_are_allowed_without_local_only(make_router, ollama):
    router = make_router(ollama_base_url=ollama.url, ollama_model="gpt-oss:120b-cloud", default_provider="ollama")
    assert router.complete(MESSAGES).model == "gpt-oss:120b-cloud"


def test_a_response_served_remotely_by_ollama_is_refused_in_local_only_mode(make_router, ollama):
    ollama.default = Reply(extra={"remote_host": "https://ollama.com:443", "remote_model": "gpt-oss:120b"})
    router = make_router(local_only=True, ollama_base_url=ollama.url)
    with pytest.raises(LocalOnlyViolation, match=r"ollama\.com"):
        router.complete(MESSAGES)
