"""Issue 9, items 4, 5 and 7: a 200 that is not a usable answer is the provider's failure (classified, retried,
fallen back from, counted); the caller's own mistakes fail fast and blame no endpoint; no key in any exception chain.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import traceback

import pytest

from cortex_client import AllProvidersFailed, BreakerPolicy, ConfigError, LLMProvider
from tests.support.fakes import FakeServer, Reply

from .conftest import FAST_RETRY, cloud_router_kwargs

MESSAGES = [{"role": "user", "content": "hi"}]
CLAUDE_KEY = "sk-ant-test-key-000000000000"

_OPENAI_BASE = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini"}
_CLAUDE_BASE = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-6"}
_USAGE_CLAUDE = {"input_tokens": 1, "output_tokens": 1}

# Per wire format: 200 answers that carry no usable completion.
MALFORMED: dict[str, dict[str, Reply]] = {}
for wire, no_choices, no_content in (
    (
        "openai",
        {**_OPENAI_BASE, "choices": []},
        {**_OPENAI_BASE, "choices": [{"index": 0, "message": {"role": "assistant", "content": None}}]},
    ),
    (
        "claude",
        {**_CLAUDE_BASE, "stop_reason": "end_turn", "usage": _USAGE_CLAUDE},
        {**_CLAUDE_BASE, "content": [], "stop_reason": "end_turn", "usage": _USAGE_CLAUDE},
    ),
    (
        "ollama",
        {"model": "llama3.2", "done": True},
        {"model": "llama3.2", "message": {"role": "assistant", "content": ""}, "done": True},
    ),
):
    MALFORMED[wire] = {
        "truncated json": Reply.raw(b'{"choices": [{"message": {"content": "hal'),
        "html": Reply.raw(b"<html><body><h1>502 Bad Gateway</h1></body></html>", content_type="text/html"),
        "empty body": Reply.raw(b""),
        "error object": Reply.raw(json.dumps({"error": {"message": "overloaded", "type": "server_error"}}).encode()),
        "json array": Reply.raw(b"[1, 2, 3]"),
        "no choices": Reply.raw(json.dumps(no_choices).encode()),
        "no content": Reply.raw(json.dumps(no_content).encode()),
    }

PRIMARIES = {  # provider under test -> (its fake's fixture, wire format)
    LLMProvider.CLAUDE: ("anthropic_fake", "claude"),
    LLMProvider.KIMI_K2: ("kimi_fake", "openai"),
    LLMProvider.OPENAI: ("openai_fake", "openai"),
    LLMProvider.OLLAMA: ("ollama", "ollama"),
}
CASES = [(p, name) for p in PRIMARIES for name in MALFORMED["openai"]]


def router_with_fallback(make_router, request: pytest.FixtureRequest, primary: LLMProvider):
    fakes = {name: request.getfixturevalue(name) for name in ("anthropic_fake", "kimi_fake", "openai_fake", "ollama")}
    return make_router(
        **cloud_router_kwargs(fakes["anthropic_fake"], fakes["kimi_fake"], fakes["openai_fake"]),
        ollama_base_url=fakes["ollama"].url,
        default_provider=primary,
        breaker=BreakerPolicy(failure_threshold=1, cooldown=60.0),
    )


@pytest.mark.parametrize(("primary", "case"), CASES, ids=[f"{p.value}-{c}" for p, c in CASES])
def test_a_malformed_200_is_a_provider_failure_that_falls_back(make_router, request, primary, case):
    fixture, wire = PRIMARIES[primary]
    fake: FakeServer = request.getfixturevalue(fixture)
    fake.default = MALFORMED[wire][case]
    router = router_with_fallback(make_router, request, primary)
    response = router.complete(MESSAGES)
    assert response.provider is not primary
    assert response.content == "Hello from the fake"
    failed = [a for a in response.attempts if a.provider is primary]
    assert [a.outcome for a in failed] == ["server"] * (1 + FAST_RETRY.max_retries)  # retried, then fell back
    endpoint = router.providers[primary].pool.endpoints[0]
    assert not endpoint.breaker.allow(), "the failure was not counted against the endpoint"
    assert router.get_stats()["providers"][primary.value]["failures"] == 1 + FAST_RETRY.max_retries


@pytest.mark.parametrize("primary", list(PRIMARIES), ids=[p.value for p in PRIMARIES])
def test_a_stream_without_content_is_a_failure_before_output(make_router, request, primary):
    fixture, _ = PRIMARIES[primary]
    fake: FakeServer = request.getfixturevalue(fixture)
    fake.default = Reply(text="")  # a well-formed stream that ends without a word
    router = router_with_fallback(make_router, request, primary)
    chunks = list(router.stream(MESSAGES))
    final = chunks[-1].response
    assert final is not None
    assert final.provider is not primary
    assert final.content == "Hello from the fake"


def test_complete_batch_keeps_every_other_slot_when_one_answer_is_malformed(make_router, ollama, anthropic_fake):
    anthropic_fake.default = MALFORMED["claude"]["no content"]
    router = make_router(claude_api_key=CLAUDE_KEY, claude_base_url=anthropic_fake.url, ollama_base_url=ollama.url)
    requests = [
        {"messages": MESSAGES, "force_provider": "ollama"},
        {"messages": MESSAGES, "force_provider": "claude"},
        {"messages": MESSAGES, "force_provider": "ollama"},
    ]
    results = asyncio.run(router.complete_batch(requests))
    assert [r.content for r in results[::2]] == ["Hello from the fake"] * 2
    assert results[1].model == "error"
    assert isinstance(results[1].error, AllProvidersFailed)


# --- item 5: the caller's errors -------------------------------------------------------------------------------

BAD_CONVERSATIONS = {
    "tool arguments not json": [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{city: Paris"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ],
    "message not a dict": ["hello"],
    "no role": [{"content": "hello"}],
    "unknown role": [{"role": "wizard", "content": "hello"}],
    "content not text": [{"role": "user", "content": 42}],
}


@pytest.mark.parametrize("provider", list(PRIMARIES), ids=[p.value for p in PRIMARIES])
@pytest.mark.parametrize("case", list(BAD_CONVERSATIONS))
def test_the_callers_bad_messages_fail_fast_and_blame_no_endpoint(make_router, request, provider, case):
    router = router_with_fallback(make_router, request, provider)
    with pytest.raises(ConfigError):
        router.complete(BAD_CONVERSATIONS[case])
    for each in router.providers.values():
        assert each.pool.endpoints[0].breaker.allow()
    assert all(entry["failures"] == 0 for entry in router.get_stats()["providers"].values())
    assert sum(request.getfixturevalue(PRIMARIES[p][0]).calls() for p in PRIMARIES) == 0  # nothing was sent


# --- item 7: no key anywhere in the exception chain --------------------------------------------------------------


def test_no_key_in_the_exception_chain_traceback_or_logged_exception(make_router, anthropic_fake):
    # The server echoes the key it was sent, as some gateways do in their 401 bodies.
    echo = {"type": "error", "error": {"type": "authentication_error", "message": f"invalid x-api-key {CLAUDE_KEY}"}}
    anthropic_fake.default = Reply.fail(401, body=echo)
    router = make_router(claude_api_key=CLAUDE_KEY, claude_base_url=anthropic_fake.url, enable_fallback=False)
    with pytest.raises(AllProvidersFailed) as excinfo:
        router.complete(MESSAGES, force_provider="claude")

    chain, seen = [], excinfo.value
    while seen is not None and len(chain) < 20:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    texts = [str(e) for e in chain] + [repr(e.args) for e in chain]
    texts.append("".join(traceback.format_exception(excinfo.value)))
    log = io.StringIO()
    logger = logging.getLogger("test-no-key")
    handler = logging.StreamHandler(log)
    logger.addHandler(handler)
    try:
        try:
            raise excinfo.value
        except AllProvidersFailed:
            logger.exception("request failed")
    finally:
        logger.removeHandler(handler)
    texts.append(log.getvalue())
    assert "authentication" in texts[-1] or "401" in texts[-1]  # the failure itself is still described
    for text in texts:
        assert CLAUDE_KEY not in text
        assert CLAUDE_KEY[:12] not in text
