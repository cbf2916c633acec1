"""Issue 26, item 7: Kimi K2's tool-call ids (`functions.<name>:<n>`) are kept exactly across turns: K2 matches a
tool result to its call by that id, and rewriting it breaks its multi-turn tool use. A conversation that moves to
Claude still works there: Claude's API takes only [a-zA-Z0-9_-] in ids (the fake checks it, as the API does)."""

from __future__ import annotations

from typing import Any

from cortex_client import LLMProvider
from tests.support.fakes import Reply

from .conftest import cloud_router_kwargs

K2_ID = "functions.install_package:0"
INSTALL = {
    "type": "function",
    "function": {
        "name": "install_package",
        "description": "Install a Debian package",
        "parameters": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
    },
}
ASK = [{"role": "user", "content": "Install nginx."}]


def k2_turn(kimi_fake: Any) -> None:
    kimi_fake.default = Reply(tool=("install_package", {"name": "nginx"}), tool_id=K2_ID)


def second_turn(call_message: dict[str, Any]) -> list[dict[str, Any]]:
    result = {"role": "tool", "tool_call_id": call_message["tool_calls"][0]["id"], "content": "installed"}
    return [*ASK, call_message, result]


def test_a_k2_tool_call_id_comes_back_and_goes_out_exactly(make_router, anthropic_fake, kimi_fake, openai_fake):
    router = make_router(**cloud_router_kwargs(anthropic_fake, kimi_fake, openai_fake))
    k2_turn(kimi_fake)
    first = router.complete(ASK, force_provider="kimi", tools=[INSTALL])
    assert [c.id for c in first.tool_calls] == [K2_ID]
    kimi_fake.default = Reply(text="nginx is installed")
    router.complete(second_turn(first.to_message()), force_provider="kimi", tools=[INSTALL])
    sent = kimi_fake.requests[-1].body["messages"]
    assert sent[1]["tool_calls"][0]["id"] == K2_ID
    assert sent[2]["tool_call_id"] == K2_ID


def test_a_streamed_k2_tool_call_keeps_its_id(make_router, anthropic_fake, kimi_fake, openai_fake):
    router = make_router(**cloud_router_kwargs(anthropic_fake, kimi_fake, openai_fake))
    k2_turn(kimi_fake)
    (done,) = [c for c in router.stream(ASK, force_provider="kimi", tools=[INSTALL]) if c.done]
    assert done.response is not None
    assert [c.id for c in done.response.tool_calls] == [K2_ID]


def test_a_k2_conversation_continues_on_claude(make_router, anthropic_fake, kimi_fake, openai_fake):
    router = make_router(**cloud_router_kwargs(anthropic_fake, kimi_fake, openai_fake))
    k2_turn(kimi_fake)
    first = router.complete(ASK, force_provider="kimi", tools=[INSTALL])
    response = router.complete(second_turn(first.to_message()), force_provider="claude", tools=[INSTALL])
    assert response.provider is LLMProvider.CLAUDE and response.content == "Hello from the fake"
    blocks = [b for m in anthropic_fake.requests[-1].body["messages"] for b in m["content"]]
    use = next(b for b in blocks if b["type"] == "tool_use")
    result = next(b for b in blocks if b["type"] == "tool_result")
    assert use["id"] == result["tool_use_id"]  # the same call on both sides, in an id Claude accepts
