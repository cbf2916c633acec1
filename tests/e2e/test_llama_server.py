"""The local llama.cpp server itself, through the bare openai SDK: proves the e2e fixture serves real inference."""

from __future__ import annotations

import pytest
from openai import OpenAI

from .conftest import LlamaServer

pytestmark = pytest.mark.e2e


def test_bare_openai_sdk_gets_a_real_completion(llama_server: LlamaServer) -> None:
    client = OpenAI(base_url=llama_server.base_url, api_key="unused", max_retries=0)
    resp = client.chat.completions.create(
        model=llama_server.model,
        messages=[{"role": "user", "content": "Say hello."}],
        max_tokens=12,
        temperature=0.0,
    )
    assert resp.choices[0].message.content
    assert resp.usage is not None
    assert resp.usage.prompt_tokens > 0
    assert 0 < resp.usage.completion_tokens <= 12
