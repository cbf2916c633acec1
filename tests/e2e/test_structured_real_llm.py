"""Structured output from the real model (llama.cpp's server with Gemma 3 270M): the schema constrains its
generation, and the router hands back the answer parsed and validated (issue 26, item 2)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cortex_client import LLMRouter, Settings
from cortex_client._structured import parse, structure_of

from .conftest import LlamaServer

pytestmark = pytest.mark.e2e

PLAN = {
    "title": "install_plan",
    "type": "object",
    "properties": {
        "package": {"type": "string", "maxLength": 40},
        "commands": {"type": "array", "items": {"type": "string", "maxLength": 80}, "minItems": 1, "maxItems": 3},
    },
    "required": ["package", "commands"],
    "additionalProperties": False,
}
ASK = [{"role": "user", "content": "Give an installation plan for nginx on Debian as JSON."}]


@pytest.fixture
def router(llama_server: LlamaServer, tmp_path: Path) -> Iterator[LLMRouter]:
    """The local provider at the server's root (it speaks /v1 there, with llama.cpp's `json_object` + `schema`);
    OpenAI's `json_schema` format is one llama.cpp's Python server does not take."""
    isolated = Settings.load(environ={}, cwd=tmp_path, home=tmp_path, etc_dir=tmp_path)
    base_url = llama_server.base_url.removesuffix("/v1")
    with LLMRouter(
        settings=isolated, ollama_base_url=base_url, ollama_model=llama_server.model, default_provider="ollama"
    ) as r:
        yield r


def test_the_real_models_answer_matches_the_schema(router: LLMRouter) -> None:
    response = router.complete(ASK, json_schema=PLAN, max_tokens=160, temperature=0.0)
    assert isinstance(response.parsed, dict)
    assert set(response.parsed) == {"package", "commands"}
    assert response.parsed["commands"] and all(isinstance(c, str) for c in response.parsed["commands"])
    parsed, problem = parse(response.content, structure_of(PLAN))  # the content is the same JSON, checked again
    assert problem is None and parsed == response.parsed
