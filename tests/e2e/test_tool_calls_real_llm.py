"""Streamed tool calls from the real llama.cpp server, which repeats the function name (and the call id) in every
delta: both providers that speak its API assemble the name once and the arguments in order (issue 27, item 8)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cortex_client import LLMRouter, Settings
from tests.support.net import closed_port_url

from .conftest import LlamaServer

pytestmark = pytest.mark.e2e

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "install_package",
            "description": "Install a Debian package",
            "parameters": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
        },
    }
]
# A named tool_choice makes llama.cpp constrain the answer to a call of that tool.
FORCED = {"type": "function", "function": {"name": "install_package"}}
MESSAGES = [{"role": "user", "content": "Install nginx."}]


@pytest.fixture(params=["openai", "ollama"])
def router(request: pytest.FixtureRequest, llama_server: LlamaServer, tmp_path: Path) -> Iterator[LLMRouter]:
    isolated = Settings.load(environ={}, cwd=tmp_path, home=tmp_path, etc_dir=tmp_path)
    if request.param == "openai":
        kwargs = {
            "openai_api_key": "sk-local-unused",
            "openai_base_url": llama_server.base_url,
            "openai_model": llama_server.model,
            "ollama_base_url": closed_port_url(),
        }
    else:  # OLLAMA_BASE_URL at the server's root: the Ollama provider speaks /v1 to it
        kwargs = {"ollama_base_url": llama_server.base_url.removesuffix("/v1"), "ollama_model": llama_server.model}
    with LLMRouter(settings=isolated, default_provider=request.param, enable_fallback=False, **kwargs) as r:
        yield r


def test_a_streamed_tool_call_has_its_name_once(router: LLMRouter) -> None:
    chunks = list(router.stream(MESSAGES, tools=TOOLS, tool_choice=FORCED, max_tokens=48, temperature=0.0))
    final = chunks[-1].response
    assert final is not None
    assert [call.name for call in final.tool_calls] == ["install_package"]
    assert final.tool_calls[0].arguments.startswith("{")
    assert final.finish_reason in ("tool_calls", "length")


def test_a_tool_call_streamed_and_completed_agree(router: LLMRouter) -> None:
    """The same request, whole and streamed (temperature 0): the same call, so the stream lost and added nothing."""
    whole = router.complete(MESSAGES, tools=TOOLS, tool_choice=FORCED, max_tokens=48, temperature=0.0)
    streamed = list(router.stream(MESSAGES, tools=TOOLS, tool_choice=FORCED, max_tokens=48, temperature=0.0))
    final = streamed[-1].response
    assert final is not None
    assert [(c.name, c.arguments) for c in final.tool_calls] == [(c.name, c.arguments) for c in whole.tool_calls]
    assert final.provider is router.default_provider
