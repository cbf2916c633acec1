"""Issue 26, item 3: reasoning on or off (or a level) per request, and the model's reasoning apart from its answer,
whole and streamed: Ollama `think` / `message.thinking`, Claude extended thinking blocks, Kimi `reasoning_content`.
The fakes give reasoning only where the request asks for it, as each API does."""

from __future__ import annotations

import pytest

from cortex_client import ConfigError, LLMProvider
from tests.support.fakes import Reply

from .conftest import cloud_router_kwargs

ASK = [{"role": "user", "content": "Which init system does Debian use?"}]
THOUGHT = "The user asks about Debian; Debian uses systemd."


@pytest.fixture
def router(make_router, ollama, anthropic_fake, kimi_fake, openai_fake):
    return make_router(**cloud_router_kwargs(anthropic_fake, kimi_fake, openai_fake), ollama_base_url=ollama.url)


def streamed(router, **kwargs):
    chunks = list(router.stream(ASK, **kwargs))
    return "".join(c.reasoning for c in chunks), "".join(c.text for c in chunks), chunks[-1].response


def test_ollama_think_on_gives_the_thinking_apart(router, ollama):
    ollama.default = Reply(text="systemd", reasoning=THOUGHT)
    response = router.complete(ASK, force_provider="ollama", think=True)
    assert (response.reasoning, response.content) == (THOUGHT, "systemd")
    assert ollama.requests[-1].body["think"] is True
    reasoning, text, final = streamed(router, force_provider="ollama", think="high")
    assert (reasoning, text, final.reasoning) == (THOUGHT, "systemd", THOUGHT)
    assert ollama.requests[-1].body["think"] == "high"


def test_ollama_think_off_and_unset(router, ollama):
    ollama.default = Reply(text="systemd", reasoning=THOUGHT)
    assert router.complete(ASK, force_provider="ollama", think=False).reasoning == ""
    assert ollama.requests[-1].body["think"] is False
    router.complete(ASK, force_provider="ollama")
    assert "think" not in ollama.requests[-1].body  # the model's own default


def test_claude_extended_thinking(router, anthropic_fake):
    anthropic_fake.default = Reply(text="systemd", reasoning=THOUGHT)
    response = router.complete(ASK, force_provider="claude", think="low", max_tokens=256)
    assert (response.reasoning, response.content) == (THOUGHT, "systemd")
    body = anthropic_fake.requests[-1].body
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert body["max_tokens"] == 256 + 1024 and "temperature" not in body
    reasoning, text, final = streamed(router, force_provider="claude", think=True)
    assert (reasoning, text, final.reasoning) == (THOUGHT, "systemd", THOUGHT)
    assert router.complete(ASK, force_provider="claude").reasoning == ""
    assert "thinking" not in anthropic_fake.requests[-1].body


def test_kimi_reasoning_content(router, kimi_fake):
    kimi_fake.default = Reply(text="systemd", reasoning=THOUGHT)
    response = router.complete(ASK, force_provider="kimi")
    assert (response.reasoning, response.content) == (THOUGHT, "systemd")
    reasoning, text, final = streamed(router, force_provider="kimi")
    assert (reasoning, text, final.reasoning) == (THOUGHT, "systemd", THOUGHT)


def test_a_think_value_is_checked(router):
    with pytest.raises(ConfigError, match="think"):
        router.complete(ASK, think="max")


def test_an_sdk_without_the_thinking_parameter_sends_it_in_the_body(router, anthropic_fake):
    """anthropic before 0.47 (the `cloud` extra allows 0.40) has no `thinking` argument: it goes as extra_body."""
    anthropic_fake.default = Reply(text="systemd", reasoning=THOUGHT)
    router.complete(ASK, force_provider="claude")  # builds the client, which learns what the SDK takes
    router.providers[LLMProvider.CLAUDE]._takes_thinking = False
    response = router.complete(ASK, force_provider="claude", think="high", max_tokens=64)
    assert response.reasoning == THOUGHT
    assert anthropic_fake.requests[-1].body["thinking"] == {"type": "enabled", "budget_tokens": 16384}
