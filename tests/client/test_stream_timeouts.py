"""Issue 26, item 6: time to the first token and the idle time between tokens are limits of their own, under the
whole-request deadline. Past the first-token limit the stream falls back (nothing has been shown yet); an idle
stream after output started raises StreamInterrupted long before the deadline. Real loopback servers."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest

from cortex_client import ConfigError, LLMProvider, StreamInterrupted, Timeouts
from tests.support.fakes import Reply

from .conftest import FAST_TIMEOUTS, cloud_router_kwargs

ASK = [{"role": "user", "content": "hi"}]
LIMITS = dataclasses.replace(FAST_TIMEOUTS, first_token=0.4, stream_idle=0.4)


def one_token_then_silence(fake) -> Reply:  # an Ollama that sends a token, then nothing until the fake closes
    def script(handler) -> None:
        handler.start_stream("application/x-ndjson")
        line = {"model": "llama3.2", "message": {"role": "assistant", "content": "Hel"}, "done": False}
        handler.chunk(json.dumps(line).encode() + b"\n")
        fake.stopping.wait(10)

    return Reply(script=script)


def test_no_first_token_in_time_falls_back_before_the_deadline(
    make_router, ollama, anthropic_fake, kimi_fake, openai_fake
):
    ollama.default = Reply(delay=5.0)  # a model still loading: headers and tokens only after 5 s
    router = make_router(
        **cloud_router_kwargs(anthropic_fake, kimi_fake, openai_fake),
        ollama_base_url=ollama.url,
        default_provider="ollama",
        timeouts=LIMITS,
    )
    began = time.monotonic()
    chunks = list(router.stream(ASK))
    response = chunks[-1].response
    assert response is not None and response.provider is not LLMProvider.OLLAMA
    assert time.monotonic() - began < 4.0
    assert response.attempts[0].outcome == "timeout" and "first token" in (response.attempts[0].error or "")


@pytest.mark.anyio
async def test_no_first_token_in_time_falls_back_async(make_router, ollama, anthropic_fake, kimi_fake, openai_fake):
    ollama.default = Reply(delay=5.0)
    router = make_router(
        **cloud_router_kwargs(anthropic_fake, kimi_fake, openai_fake),
        ollama_base_url=ollama.url,
        default_provider="ollama",
        timeouts=LIMITS,
    )
    began = time.monotonic()
    chunks = [c async for c in router.astream(ASK)]
    assert chunks[-1].response is not None and chunks[-1].response.provider is not LLMProvider.OLLAMA
    assert time.monotonic() - began < 4.0
    await router.aclose()


def test_an_idle_stream_after_output_is_interrupted_early(make_router, ollama):
    ollama.default = one_token_then_silence(ollama)
    router = make_router(ollama_base_url=ollama.url, default_provider="ollama", timeouts=LIMITS)
    began = time.monotonic()
    texts = []
    with pytest.raises(StreamInterrupted, match="idle"):
        for chunk in router.stream(ASK):
            texts.append(chunk.text)
    assert texts == ["Hel"]
    assert time.monotonic() - began < 4.0  # the deadline is 20 s


@pytest.mark.anyio
async def test_an_idle_stream_after_output_is_interrupted_early_async(make_router, ollama):
    ollama.default = one_token_then_silence(ollama)
    router = make_router(ollama_base_url=ollama.url, default_provider="ollama", timeouts=LIMITS)
    began = time.monotonic()
    with pytest.raises(StreamInterrupted, match="idle"):
        async for _ in router.astream(ASK):
            pass
    assert time.monotonic() - began < 4.0
    await router.aclose()


def test_without_limits_a_slow_first_token_is_waited_for(make_router, ollama):
    ollama.default = Reply(delay=0.6)
    router = make_router(ollama_base_url=ollama.url, default_provider="ollama")
    assert list(router.stream(ASK))[-1].response.provider is LLMProvider.OLLAMA


def test_the_limits_are_checked():
    with pytest.raises(ConfigError):
        Timeouts(first_token=0)
    with pytest.raises(ConfigError):
        Timeouts(stream_idle=-1.0)
