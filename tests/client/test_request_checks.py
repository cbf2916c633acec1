"""A caller's mistake is refused before any call, as a ConfigError naming the field; a server's error body is
reduced to its message (issue 27, item 10)."""

from __future__ import annotations

from typing import Any

import pytest

from cortex_client import (
    AllProvidersFailed,
    BreakerPolicy,
    ConfigError,
    LLMProvider,
    LLMRouter,
    RetryPolicy,
    TaskType,
    Timeouts,
)
from tests.support.fakes import FakeOpenAI, Reply

MESSAGES = [{"role": "user", "content": "hi"}]
TOOL = {"type": "function", "function": {"name": "install_package", "parameters": {"type": "object"}}}

NAMED_RM = {"type": "function", "function": {"name": "rm"}}
SCHEMA_AS_TEXT = {"type": "function", "function": {"name": "x", "parameters": "{}"}}
TOOL_RESULT_WITHOUT_ID = [*MESSAGES, {"role": "tool", "content": "ok"}]

# The arguments of a request, and the field its error must name; the id says what is wrong.
MALFORMED = [
    pytest.param({"messages": [{"role": "user"}]}, "messages[0].content", id="no content"),
    pytest.param({"messages": [{"role": "user", "content": None}]}, "messages[0].content", id="content None"),
    pytest.param({"messages": TOOL_RESULT_WITHOUT_ID}, "messages[1].tool_call_id", id="no tool_call_id"),
    pytest.param(
        {"messages": [{"role": "assistant", "tool_calls": "x"}]}, "messages[0].tool_calls", id="tool_calls text"
    ),
    pytest.param({"tools": [{"name": "install_package", "parameters": {}}]}, "tools[0]", id="flat tool"),
    pytest.param({"tools": [{"type": "code", "function": {"name": "x"}}]}, "tools[0]", id="other tool type"),
    pytest.param({"tools": TOOL}, "tools must be a list", id="tools not a list"),
    pytest.param({"tools": [SCHEMA_AS_TEXT]}, "tools[0].function.parameters", id="parameters text"),
    pytest.param({"tools": [TOOL], "tool_choice": "bogus"}, "tool_choice", id="bogus tool_choice"),
    pytest.param({"tools": [TOOL], "tool_choice": NAMED_RM}, "tool_choice names 'rm'", id="unknown named tool"),
    pytest.param({"tool_choice": "required"}, "tool_choice", id="required without tools"),
    pytest.param({"temperature": "hot"}, "temperature", id="temperature text"),
    pytest.param({"temperature": float("nan")}, "temperature", id="temperature nan"),
    pytest.param({"max_tokens": "10"}, "max_tokens", id="max_tokens text"),
    pytest.param({"max_tokens": 0}, "max_tokens", id="max_tokens zero"),
    pytest.param({"max_tokens": True}, "max_tokens", id="max_tokens bool"),
    pytest.param({"task_type": "user_chat"}, "task_type", id="task_type text"),
    pytest.param({"force_provider": 3}, "force_provider", id="force_provider int"),
]


@pytest.fixture
def llama_like():
    """An OpenAI-style local server (what OLLAMA_BASE_URL often points at): it must never be called here."""
    fake = FakeOpenAI()
    yield fake
    fake.close()


@pytest.fixture
def router(make_router, llama_like):
    return make_router(
        ollama_base_url=llama_like.url,
        ollama_model="gemma",
        default_provider="ollama",
        openai_api_key="sk-openai-x",
        openai_base_url=llama_like.url + "/v1",
    )


def call(router: LLMRouter, how: str, arguments: dict[str, Any]) -> None:
    kwargs = {"messages": MESSAGES, **arguments}
    if how == "complete":
        router.complete(**kwargs)
    elif how == "stream":
        list(router.stream(**kwargs))
    else:
        import asyncio

        asyncio.run(router.acomplete(**kwargs))


@pytest.mark.parametrize("how", ["complete", "stream", "acomplete"])
@pytest.mark.parametrize(("arguments", "field"), MALFORMED)
def test_a_malformed_request_is_refused_before_any_call(router, llama_like, how, arguments, field):
    with pytest.raises(ConfigError) as caught:
        call(router, how, arguments)
    assert field in str(caught.value)
    assert llama_like.connections == 0
    assert all(entry["failures"] == 0 for entry in router.get_stats()["providers"].values())


def test_route_task_refuses_a_task_type_given_as_text(router):
    with pytest.raises(ConfigError, match="task_type must be a TaskType"):
        router.route_task("user_chat")


def test_well_formed_requests_still_pass(router, llama_like):
    """The checks take every documented form: tool calls without content, tool results, named tools."""
    call = {"id": "c1", "type": "function", "function": {"name": "install_package", "arguments": "{}"}}
    conversation = [
        *MESSAGES,
        {"role": "assistant", "tool_calls": [call]},  # no content: allowed beside tool calls
        {"role": "tool", "tool_call_id": "c1", "content": {"ok": True}},
        {"role": "user", "content": [{"type": "text", "text": "and now?"}]},
    ]
    named = {"type": "function", "function": {"name": "install_package"}}
    for choice in (None, "auto", "none", "required", named, {"type": "function", "name": "install_package"}):
        router.complete(conversation, tools=[TOOL], tool_choice=choice, temperature=0, max_tokens=5)
    sent = llama_like.requests[-1].body
    assert sent["tool_choice"] == named  # the Responses API's form is sent in the chat form
    assert sent["messages"][2]["content"] == '{"ok": true}'
    router.complete(MESSAGES, task_type=TaskType.CODE_GENERATION, force_provider="openai")


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"timeouts": {"deadline": 5}}, "timeouts must be a Timeouts(...), not a dict"),
        ({"retry": {"max_retries": 1}}, "retry must be a RetryPolicy(...)"),
        ({"breaker": {"cooldown": 1}}, "breaker must be a BreakerPolicy(...)"),
        ({"max_connections": 0}, "LLMRouter.max_connections"),
    ],
)
def test_router_arguments_of_the_wrong_kind_are_named(isolated, arguments, field):
    with pytest.raises(ConfigError) as caught:
        LLMRouter(settings=isolated, **arguments)
    assert field in str(caught.value)


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: Timeouts(deadline=-1), "Timeouts.deadline"),
        (lambda: Timeouts(ollama_connect=0), "Timeouts.ollama_connect"),
        (lambda: Timeouts(cloud_read="30"), "Timeouts.cloud_read"),
        (lambda: RetryPolicy(max_retries=-1), "RetryPolicy.max_retries"),
        (lambda: RetryPolicy(max_retries=1.5), "RetryPolicy.max_retries"),
        (lambda: RetryPolicy(initial_delay=-0.1), "RetryPolicy.initial_delay"),
        (lambda: RetryPolicy(jitter=2), "RetryPolicy.jitter"),
        (lambda: BreakerPolicy(failure_threshold=0), "BreakerPolicy.failure_threshold"),
        (lambda: BreakerPolicy(cooldown=-5), "BreakerPolicy.cooldown"),
    ],
)
def test_negative_or_wrong_policy_values_are_refused_when_made(make, field):
    with pytest.raises(ConfigError) as caught:
        make()
    assert field in str(caught.value)


# What llama.cpp's Python server answers a request it cannot validate: a 500 whose message carries pydantic's
# errors and the path of the server's source file.
TRACEBACK = (
    '\n\n  File "/srv/venv/lib/python3.11/site-packages/llama_cpp/server/app.py", line 376, in create_chat_completion'
)
LLAMA_500 = {
    "error": {
        "message": "1 validation error:\n  {'type': 'int_parsing', 'loc': ('body', 'max_tokens')}"
        + TRACEBACK
        + "\n    POST /v1/chat/completions"
        + " padding" * 150,
        "type": "internal_server_error",
        "param": None,
        "code": None,
    }
}


@pytest.mark.parametrize("provider", [LLMProvider.OLLAMA, LLMProvider.OPENAI])
def test_a_servers_error_body_is_reduced_to_its_message(make_router, isolated, llama_like, provider):
    llama_like.default = Reply.fail(500, body=LLAMA_500)
    router = make_router(
        settings=isolated.merged({"OLLAMA_API": "openai"}),  # llama.cpp behind OLLAMA_BASE_URL
        ollama_base_url=llama_like.url,
        openai_api_key="sk-openai-x",
        openai_base_url=llama_like.url + "/v1",
        enable_fallback=False,
    )
    with pytest.raises(AllProvidersFailed) as caught:
        router.complete(MESSAGES, force_provider=provider)
    for attempt in caught.value.attempts:
        assert attempt.error is not None
        assert "HTTP 500: 1 validation error:" in attempt.error
        assert "app.py" not in attempt.error and "internal_server_error" not in attempt.error
        assert len(attempt.error) < 400
    assert "site-packages" not in str(caught.value)
