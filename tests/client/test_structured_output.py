"""Issue 26, item 2: structured output. A JSON schema (or a pydantic model class) per request reaches each provider
in its own mechanism (Ollama `format`, OpenAI and Kimi `response_format`, Claude a forced tool); the answer comes
back parsed and validated, and one that does not match falls back instead of reaching the caller."""

from __future__ import annotations

import json
import sys

import pydantic
import pytest

from cortex_client import ConfigError, LLMProvider
from cortex_client._structured import parse, structure_of
from tests.support.fakes import Reply

from .conftest import cloud_router_kwargs

ASK = [{"role": "user", "content": "Plan the installation of nginx."}]
PLAN = {
    "title": "install_plan",
    "type": "object",
    "properties": {
        "package": {"type": "string"},
        "commands": {"type": "array", "items": {"type": "string"}, "minItems": 1},
    },
    "required": ["package", "commands"],
    "additionalProperties": False,
}
GOOD = {"package": "nginx", "commands": ["apt-get install -y nginx"]}


class Plan(pydantic.BaseModel):
    package: str
    commands: list[str]


@pytest.fixture
def router(make_router, ollama, anthropic_fake, kimi_fake, openai_fake):
    return make_router(**cloud_router_kwargs(anthropic_fake, kimi_fake, openai_fake), ollama_base_url=ollama.url)


@pytest.fixture
def ollama_first(make_router, ollama, anthropic_fake, kimi_fake, openai_fake):
    kwargs = cloud_router_kwargs(anthropic_fake, kimi_fake, openai_fake)
    return make_router(**kwargs, ollama_base_url=ollama.url, default_provider="ollama")


def test_ollama_gets_the_schema_as_format(router, ollama):
    ollama.default = Reply(text=json.dumps(GOOD))
    response = router.complete(ASK, force_provider="ollama", json_schema=PLAN)
    assert response.parsed == GOOD
    assert ollama.requests[-1].body["format"] == PLAN


def test_openai_gets_a_json_schema_response_format(router, openai_fake):
    openai_fake.default = Reply(text=json.dumps(GOOD))
    response = router.complete(ASK, force_provider="openai", json_schema=PLAN)
    assert response.parsed == GOOD
    sent = openai_fake.requests[-1].body["response_format"]
    assert sent == {"type": "json_schema", "json_schema": {"name": "install_plan", "schema": PLAN}}


def test_kimi_gets_json_mode_and_the_schema_in_a_system_message(router, kimi_fake):
    kimi_fake.default = Reply(text=json.dumps(GOOD))
    response = router.complete(ASK, force_provider="kimi", json_schema=PLAN)
    assert response.parsed == GOOD
    body = kimi_fake.requests[-1].body
    assert body["response_format"] == {"type": "json_object"}
    assert body["messages"][0]["role"] == "system" and '"install_plan"' in body["messages"][0]["content"]
    assert body["messages"][1:] == ASK


def test_claude_is_forced_to_call_the_schemas_tool(router, anthropic_fake):
    anthropic_fake.default = Reply(tool=("install_plan", GOOD))
    response = router.complete(ASK, force_provider="claude", json_schema=PLAN)
    assert response.parsed == GOOD and response.tool_calls == []
    body = anthropic_fake.requests[-1].body
    assert body["tool_choice"] == {"type": "tool", "name": "install_plan"}
    assert body["tools"][0]["input_schema"] == PLAN


def test_a_pydantic_model_gives_its_instance(router, ollama):
    ollama.default = Reply(text=json.dumps(GOOD))
    response = router.complete(ASK, force_provider="ollama", json_schema=Plan)
    assert response.parsed == Plan(**GOOD)
    assert ollama.requests[-1].body["format"]["properties"]["commands"]["type"] == "array"


@pytest.mark.parametrize(
    "answer",
    ["Sure! Here is the plan: apt-get install nginx", json.dumps({"package": "nginx"}), json.dumps([1, 2])],
    ids=["not-json", "missing-field", "not-an-object"],
)
def test_an_answer_that_does_not_match_falls_back(ollama_first, ollama, anthropic_fake, answer):
    ollama.default = Reply(text=answer)
    anthropic_fake.default = Reply(tool=("install_plan", GOOD))
    response = ollama_first.complete(ASK, json_schema=PLAN)
    assert response.provider is not LLMProvider.OLLAMA and response.parsed == GOOD
    failed = [a for a in response.attempts if a.provider is LLMProvider.OLLAMA]
    assert failed and all("does not match the schema" in (a.error or "") for a in failed)


@pytest.mark.anyio
async def test_acomplete_validates_too(router, ollama):
    ollama.default = Reply(text=json.dumps(GOOD))
    response = await router.acomplete(ASK, force_provider="ollama", json_schema=PLAN)
    assert response.parsed == GOOD
    await router.aclose()


def test_a_schema_and_tools_together_are_refused(router):
    tool = {"type": "function", "function": {"name": "x", "parameters": {"type": "object", "properties": {}}}}
    with pytest.raises(ConfigError, match="json_schema"):
        router.complete(ASK, json_schema=PLAN, tools=[tool])
    with pytest.raises(ConfigError, match="json_schema"):
        router.complete(ASK, json_schema="a schema")


@pytest.mark.parametrize("jsonschema_installed", [True, False])
@pytest.mark.parametrize(
    ("answer", "matches"),
    [
        (GOOD, True),
        ({"package": "nginx"}, False),
        ({**GOOD, "extra": 1}, False),
        ({"package": "nginx", "commands": []}, False),
        ({"package": 7, "commands": ["x"]}, False),
        ({"package": "nginx", "commands": [True]}, False),
    ],
)
def test_the_check_without_jsonschema_agrees_with_it(monkeypatch, jsonschema_installed, answer, matches):
    if not jsonschema_installed:
        monkeypatch.setitem(sys.modules, "jsonschema", None)  # `import jsonschema` raises ImportError
    parsed, problem = parse(json.dumps(answer), structure_of(PLAN))
    assert (problem is None) is matches
    assert (parsed == answer) is matches
