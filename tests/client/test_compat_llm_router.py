"""Issue 26, item 1: `cortex_client.compat.llm_router`, the module Cortex installs as `cortex.llm_router`. Its names
are the original's patch points; the CI stage "cortex's own tests" runs Cortex's own tests against it, these check
the same contract here without Cortex's files, against loopback fakes of the APIs."""

from __future__ import annotations

from typing import Any

import pytest

import cortex_client
from cortex_client import LLMProvider, TaskType
from cortex_client.compat import llm_router as compat

from .conftest import FAST_TIMEOUTS, cloud_router_kwargs

ASK = [{"role": "user", "content": "hi"}]


@pytest.fixture
def make(isolated):
    routers: list[compat.LLMRouter] = []

    def build(*args: Any, **kwargs: Any) -> compat.LLMRouter:
        kwargs.setdefault("settings", isolated)
        kwargs.setdefault("timeouts", FAST_TIMEOUTS)
        router = compat.LLMRouter(*args, **kwargs)
        routers.append(router)
        return router

    yield build
    for router in routers:
        router.close()


def test_the_client_attributes_exist_where_a_key_does(make, anthropic_fake, kimi_fake, openai_fake):
    kwargs = cloud_router_kwargs(anthropic_fake, kimi_fake, openai_fake)
    del kwargs["kimi_api_key"]
    router = make(**kwargs)
    assert router.claude_client is not None and router.claude_client_async is not None
    assert router.openai_client is not None
    assert router.kimi_client is None and router.kimi_client_async is None


def test_the_sdk_class_is_looked_up_in_the_module_when_a_client_is_built(
    make, monkeypatch, anthropic_fake, kimi_fake, openai_fake
):
    built: list[dict[str, Any]] = []
    real = compat.Anthropic

    def recording(**kwargs: Any) -> Any:
        built.append(kwargs)
        return real(api_key=kwargs["api_key"], base_url=kwargs["base_url"], max_retries=0)

    monkeypatch.setattr(compat, "Anthropic", recording)  # what patch("cortex.llm_router.Anthropic") does
    router = make(**cloud_router_kwargs(anthropic_fake, kimi_fake, openai_fake))
    response = router.complete(ASK, force_provider=LLMProvider.CLAUDE)
    assert response.content == "Hello from the fake"
    assert [b["base_url"] for b in built] == [anthropic_fake.url]


def test_a_client_assigned_to_the_router_is_the_one_called(make, anthropic_fake, kimi_fake, openai_fake):
    router = make(**cloud_router_kwargs(anthropic_fake, kimi_fake, openai_fake))
    other = compat.Anthropic(api_key="sk-ant-other", base_url=anthropic_fake.url, max_retries=0)
    router.claude_client = other
    assert router.claude_client is other
    router._complete_claude(ASK, temperature=0.7, max_tokens=32)
    headers = anthropic_fake.requests[-1].headers
    assert "sk-ant-other" in (headers.get("x-api-key") or headers.get("authorization") or "")


def test_openai_api_keys_keep_the_explicit_key_first(make, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    router = make(openai_api_key="sk-given")
    assert router.openai_api_keys == ["sk-given", "sk-from-env"]


def test_no_provider_is_the_originals_runtime_error(make):
    with pytest.raises(RuntimeError):
        make().route_task(TaskType.USER_CHAT)


def test_complete_task_builds_the_router_the_module_names(monkeypatch, ollama, isolated):
    seen: list[Any] = []

    class Recording(compat.LLMRouter):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, ollama_base_url=ollama.url, default_provider="ollama", settings=isolated)
            seen.append(self)

    monkeypatch.setattr(compat, "LLMRouter", Recording)
    assert compat.complete_task("hi", system_prompt="be brief")
    assert len(seen) == 1
    seen[0].close()


def test_the_core_api_has_no_compat_names():
    assert "claude_client" not in vars(cortex_client.LLMRouter)
    assert not hasattr(cortex_client.LLMRouter, "_complete_claude")
