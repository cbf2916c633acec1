"""Tool calls: OpenAI-format tools in, each provider's wire format on the wire, ToolCalls back,
and the second turn (tool results) mapped correctly."""

from __future__ import annotations

import json

import pytest

from cortex_client import ConfigError, LLMProvider
from tests.support.fakes import FakeOpenAI, Reply

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]
QUESTION = [
    {"role": "system", "content": "You are a weather bot."},
    {"role": "user", "content": "Weather in Oslo?"},
]
ARGS = {"city": "Oslo"}


def test_openai_tool_call_round_trip(make_router, openai_fake):
    openai_fake.queue(Reply(tool=("get_weather", ARGS)), Reply(text="It is sunny in Oslo"))
    router = make_router(openai_api_key="sk-openai-x", openai_base_url=openai_fake.url + "/v1")
    first = router.complete(QUESTION, force_provider=LLMProvider.OPENAI, tools=TOOLS, tool_choice="auto")
    assert first.finish_reason == "tool_calls"
    assert [(c.id, c.name, c.parsed_arguments()) for c in first.tool_calls] == [("call_fake1", "get_weather", ARGS)]
    sent = openai_fake.requests[0].body
    assert sent["tools"] == TOOLS and sent["tool_choice"] == "auto"
    assert sent["messages"][0] == {"role": "system", "content": "You are a weather bot."}

    conversation = [
        *QUESTION,
        first.to_message(),
        {"role": "tool", "tool_call_id": "call_fake1", "content": "sunny, 21 C"},
    ]
    second = router.complete(conversation, force_provider=LLMProvider.OPENAI, tools=TOOLS)
    assert second.content == "It is sunny in Oslo"
    sent = openai_fake.requests[1].body["messages"]
    assert sent[2]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": json.dumps(ARGS)}
    assert sent[3] == {"role": "tool", "tool_call_id": "call_fake1", "content": "sunny, 21 C"}


def test_claude_tool_call_round_trip(make_router, anthropic_fake):
    anthropic_fake.queue(Reply(tool=("get_weather", ARGS)), Reply(text="It is sunny in Oslo"))
    router = make_router(claude_api_key="sk-ant-x", claude_base_url=anthropic_fake.url)
    first = router.complete(QUESTION, force_provider=LLMProvider.CLAUDE, tools=TOOLS, tool_choice="required")
    sent = anthropic_fake.requests[0].body
    assert sent["system"] == "You are a weather bot."  # hoisted: Claude has no system role
    assert sent["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Weather in Oslo?"}]}]
    assert sent["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": TOOLS[0]["function"]["parameters"],
        }
    ]
    assert sent["tool_choice"] == {"type": "any"}
    assert first.finish_reason == "tool_calls"
    assert first.content == "Let me check."
    assert [(c.id, c.name, c.parsed_arguments()) for c in first.tool_calls] == [("toolu_fake1", "get_weather", ARGS)]

    conversation = [
        *QUESTION,
        first.to_message(),
        {"role": "tool", "tool_call_id": "toolu_fake1", "content": "sunny, 21 C"},
    ]
    second = router.complete(conversation, force_provider=LLMProvider.CLAUDE, tools=TOOLS)
    assert second.content == "It is sunny in Oslo"
    messages = anthropic_fake.requests[1].body["messages"]
    assert messages[1] == {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_fake1", "name": "get_weather", "input": ARGS},
        ],
    }
    assert messages[2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "toolu_fake1", "content": "sunny, 21 C"}],
    }


def test_claude_parallel_tool_results_merge_into_one_user_turn(make_router, anthropic_fake):
    router = make_router(claude_api_key="sk-ant-x", claude_base_url=anthropic_fake.url)
    calls = [
        {
            "id": f"toolu_{i}",
            "type": "function",
            "function": {"name": "get_weather", "arguments": json.dumps({"city": c})},
        }
        for i, c in enumerate(("Oslo", "Rome"))
    ]
    conversation = [
        {"role": "user", "content": "Oslo and Rome?"},
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": "toolu_0", "content": "sunny"},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "rain"},
        {"role": "system", "content": "Answer in one line."},
    ]
    router.complete(
        conversation,
        force_provider=LLMProvider.CLAUDE,
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    body = anthropic_fake.requests[0].body
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert [b["tool_use_id"] for b in body["messages"][2]["content"]] == ["toolu_0", "toolu_1"]
    assert body["system"] == "Answer in one line."
    assert body["tool_choice"] == {"type": "tool", "name": "get_weather"}


def test_claude_streamed_tool_call_is_assembled(make_router, anthropic_fake):
    anthropic_fake.default = Reply(tool=("get_weather", ARGS))
    router = make_router(claude_api_key="sk-ant-x", claude_base_url=anthropic_fake.url)
    chunks = list(router.stream(QUESTION, force_provider=LLMProvider.CLAUDE, tools=TOOLS))
    final = chunks[-1].response
    assert final is not None
    assert [c.text for c in chunks[:-1]] == ["Let me check."]
    assert [(c.id, c.parsed_arguments()) for c in final.tool_calls] == [("toolu_fake1", ARGS)]
    assert final.finish_reason == "tool_calls"


def test_openai_streamed_tool_call_is_assembled(make_router, openai_fake):
    openai_fake.default = Reply(tool=("get_weather", ARGS))
    router = make_router(openai_api_key="sk-openai-x", openai_base_url=openai_fake.url + "/v1")
    final = list(router.stream(QUESTION, force_provider=LLMProvider.OPENAI, tools=TOOLS))[-1].response
    assert final is not None
    assert [(c.id, c.name, c.parsed_arguments()) for c in final.tool_calls] == [("call_fake1", "get_weather", ARGS)]
    assert final.finish_reason == "tool_calls"


def test_ollama_tool_call_round_trip(make_router, ollama):
    ollama.queue(Reply(tool=("get_weather", ARGS)), Reply(text="sunny"))
    router = make_router(ollama_base_url=ollama.url, default_provider="ollama")
    first = router.complete(QUESTION, tools=TOOLS)
    assert first.finish_reason == "tool_calls"
    assert [(c.name, c.parsed_arguments()) for c in first.tool_calls] == [("get_weather", ARGS)]
    assert ollama.requests[0].body["tools"] == TOOLS
    conversation = [
        *QUESTION,
        first.to_message(),
        {"role": "tool", "tool_call_id": first.tool_calls[0].id, "content": "sunny"},
    ]
    router.complete(conversation, tools=TOOLS)
    sent = ollama.requests[1].body["messages"]
    # native Ollama wants arguments as an object and names the tool on the result
    assert sent[2]["tool_calls"] == [{"function": {"name": "get_weather", "arguments": ARGS}}]
    assert sent[3] == {"role": "tool", "content": "sunny", "tool_name": "get_weather"}


def test_unsupported_tool_choice_is_rejected_before_sending(make_router, anthropic_fake):
    router = make_router(claude_api_key="sk-ant-x", claude_base_url=anthropic_fake.url)
    with pytest.raises(ConfigError, match="tool_choice"):
        router.complete(QUESTION, force_provider=LLMProvider.CLAUDE, tools=TOOLS, tool_choice="sometimes")
    assert anthropic_fake.connections == 0


# --- issue 9, item 13: tool_choice, call ids and tool results on Ollama's native API ------------------------------

SECOND_TOOL = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}


def test_ollama_honours_tool_choice_none_and_a_named_tool(make_router, ollama):
    router = make_router(ollama_base_url=ollama.url)
    router.complete(QUESTION, force_provider="ollama", tools=[*TOOLS, SECOND_TOOL], tool_choice="none")
    assert "tools" not in ollama.requests[-1].body
    named = {"type": "function", "function": {"name": "get_time"}}
    router.complete(QUESTION, force_provider="ollama", tools=[*TOOLS, SECOND_TOOL], tool_choice=named)
    assert ollama.requests[-1].body["tools"] == [SECOND_TOOL]
    router.complete(QUESTION, force_provider="ollama", tools=[*TOOLS, SECOND_TOOL], tool_choice="auto")
    assert ollama.requests[-1].body["tools"] == [*TOOLS, SECOND_TOOL]


def test_ollama_tool_call_ids_are_unique_within_a_conversation(make_router, ollama):
    ollama.queue(Reply(tool=("get_weather", ARGS)), Reply(tool=("get_weather", {"city": "Bergen"})))
    router = make_router(ollama_base_url=ollama.url)
    first = router.complete(QUESTION, force_provider="ollama", tools=TOOLS)
    conversation = [*QUESTION, first.to_message()]
    conversation += [{"role": "tool", "tool_call_id": c.id, "content": "sunny"} for c in first.tool_calls]
    second = router.complete(conversation, force_provider="ollama", tools=TOOLS)
    ids = [c.id for c in first.tool_calls + second.tool_calls]
    assert len(ids) == len(set(ids)) == 2


@pytest.mark.parametrize("provider", ["ollama", "claude"])
def test_a_dict_tool_result_is_sent_as_json(make_router, ollama, anthropic_fake, provider):
    router = make_router(ollama_base_url=ollama.url, claude_api_key="sk-ant-x", claude_base_url=anthropic_fake.url)
    result = {"temperature": 21, "sky": "clear", "ok": True}
    conversation = [
        *QUESTION,
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": result},
    ]
    router.complete(conversation, force_provider=provider, tools=TOOLS)
    if provider == "ollama":
        sent = ollama.requests[-1].body["messages"][-1]["content"]
    else:
        sent = anthropic_fake.requests[-1].body["messages"][-1]["content"][0]["content"]
    assert json.loads(sent) == result  # JSON, not Python's repr ("{'temperature': 21, ... True}")


# --- issue 9, item 14: OpenAI reasoning models ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "reasoning"),
    [("o4-mini", True), ("o3", True), ("gpt-5", True), ("gpt-5-mini", True), ("gpt-4o-mini", False)],
)
def test_reasoning_models_get_max_completion_tokens_and_no_temperature(make_router, openai_fake, model, reasoning):
    router = make_router(openai_api_key="sk-openai-x", openai_base_url=openai_fake.url + "/v1", openai_model=model)
    router.complete(QUESTION, force_provider="openai", max_tokens=123, temperature=0.3)
    sent = openai_fake.requests[-1].body
    if reasoning:
        assert sent["max_completion_tokens"] == 123
        assert "max_tokens" not in sent and "temperature" not in sent
    else:
        assert sent["max_tokens"] == 123 and sent["temperature"] == 0.3
        assert "max_completion_tokens" not in sent


def test_the_reasoning_rule_is_openais_only(make_router, kimi_fake):
    router = make_router(kimi_api_key="sk-kimi-x", kimi_base_url=kimi_fake.url + "/v1", kimi_model="o3-lookalike")
    router.complete(QUESTION, force_provider="kimi_k2", max_tokens=50)
    assert kimi_fake.requests[-1].body["max_tokens"] == 50


# --- issue 27, item 8: streamed tool calls from a server that repeats the name in every delta (llama.cpp) ---------

INSTALL_ARGS = {"name": "nginx", "version": "1.24", "assume_yes": True}  # long enough for several deltas


@pytest.fixture
def llama_like():
    fake = FakeOpenAI(repeat_tool_name=True)
    fake.default = Reply(tool=("install_package", INSTALL_ARGS))
    yield fake
    fake.close()


def routers_to(make_router, fake):
    """The two providers that speak chat completions to a local server: OpenAI's (SDK) and Ollama's (/v1)."""
    return {
        "openai": make_router(openai_api_key="sk-local", openai_base_url=fake.url + "/v1", default_provider="openai"),
        "ollama": make_router(ollama_base_url=fake.url, default_provider="ollama", ollama_model="gemma"),
    }


@pytest.mark.parametrize("provider", ["openai", "ollama"])
def test_a_name_repeated_in_every_stream_delta_is_the_name_once(make_router, llama_like, provider):
    router = routers_to(make_router, llama_like)[provider]
    final = list(router.stream(QUESTION, tools=TOOLS))[-1].response
    assert final is not None
    assert [(c.id, c.name, c.parsed_arguments()) for c in final.tool_calls] == [
        ("call_fake1", "install_package", INSTALL_ARGS)
    ]


@pytest.mark.anyio
@pytest.mark.parametrize("provider", ["openai", "ollama"])
async def test_a_name_repeated_in_every_async_stream_delta_is_the_name_once(make_router, llama_like, provider):
    router = routers_to(make_router, llama_like)[provider]
    chunks = [chunk async for chunk in router.astream(QUESTION, tools=TOOLS)]
    final = chunks[-1].response
    assert final is not None
    assert [(c.name, c.parsed_arguments()) for c in final.tool_calls] == [("install_package", INSTALL_ARGS)]
    await router.aclose()
