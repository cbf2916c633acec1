"""Fixtures: fake provider servers on loopback and routers isolated from the developer's config."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cortex_client import ORIGINAL_LOCAL_FIRST, BreakerPolicy, LLMRouter, RetryPolicy, Settings, Timeouts
from tests.support.fakes import FakeAnthropic, FakeOllama, FakeOpenAI

# Tiny delays so retry tests run in milliseconds; the policy is the same as in production.
FAST_RETRY = RetryPolicy(max_retries=2, initial_delay=0.001, max_delay=0.004, max_retry_after=2.0)
FAST_TIMEOUTS = Timeouts(ollama_connect=1.0, ollama_read=5.0, cloud_connect=1.0, cloud_read=5.0, deadline=20.0)


@pytest.fixture
def ollama() -> Iterator[FakeOllama]:
    fake = FakeOllama()
    yield fake
    fake.close()


@pytest.fixture
def openai_fake() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    yield fake
    fake.close()


@pytest.fixture
def kimi_fake() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI(usage_in_choice=True)
    yield fake
    fake.close()


@pytest.fixture
def anthropic_fake() -> Iterator[FakeAnthropic]:
    fake = FakeAnthropic()
    yield fake
    fake.close()


@pytest.fixture
def isolated(tmp_path: Path) -> Settings:
    """Settings from an empty environment and empty config dirs: never the developer's real files."""
    return Settings.load(environ={}, cwd=tmp_path, home=tmp_path, etc_dir=tmp_path)


@pytest.fixture
def make_router(isolated: Settings) -> Iterator[Callable[..., LLMRouter]]:
    routers: list[LLMRouter] = []

    def make(**kwargs: Any) -> LLMRouter:
        kwargs.setdefault("settings", isolated)
        kwargs.setdefault("retry", FAST_RETRY)
        kwargs.setdefault("timeouts", FAST_TIMEOUTS)
        kwargs.setdefault("breaker", BreakerPolicy(failure_threshold=3, cooldown=60.0))
        # The fault tests give Ollama as the fallback beside a cloud primary: the original's routing table, where
        # no task is local-first. test_routing.py tests the local-first default.
        kwargs.setdefault("local_first", ORIGINAL_LOCAL_FIRST)
        router = LLMRouter(**kwargs)
        routers.append(router)
        return router

    yield make
    for router in routers:
        router.close()


def cloud_router_kwargs(
    anthropic_fake: FakeAnthropic, kimi_fake: FakeOpenAI, openai_fake: FakeOpenAI
) -> dict[str, Any]:
    return {
        "claude_api_key": "sk-ant-test-key-000000000000",
        "kimi_api_key": "sk-kimi-test-key-00000000000",
        "openai_api_key": "sk-openai-test-key-000000000",
        "claude_base_url": anthropic_fake.url,
        "kimi_base_url": kimi_fake.url + "/v1",
        "openai_base_url": openai_fake.url + "/v1",
    }
