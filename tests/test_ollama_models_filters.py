"""Role ollama_models' filters: names read the way Ollama reads them (types/model/name.go), the API URL a host
uses, and the plan (one action per model, where each model comes from, prunes)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from tests.support.filters import role_filters

F = role_filters("ollama_models")


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("llama3.2", "registry.ollama.ai/library/llama3.2:latest"),
        ("llama3.2:1b", "registry.ollama.ai/library/llama3.2:1b"),
        ("library/llama3.2:1b", "registry.ollama.ai/library/llama3.2:1b"),
        ("registry.ollama.ai/library/llama3.2", "registry.ollama.ai/library/llama3.2:latest"),
        ("https://registry.ollama.ai/library/llama3.2:3b", "registry.ollama.ai/library/llama3.2:3b"),
        ("me/tuned", "registry.ollama.ai/me/tuned:latest"),
        ("reg.internal:5000/team/model:v1", "reg.internal:5000/team/model:v1"),
        ("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M"),
        ("qwen2.5:0.5b@sha256:" + "a" * 64, "registry.ollama.ai/library/qwen2.5:0.5b"),
        ("  phi3  ", "registry.ollama.ai/library/phi3:latest"),
    ],
)
def test_names_get_ollamas_defaults(raw: str, name: str) -> None:
    assert F.ollama_model_name(raw) == name


def test_latest_and_a_sized_tag_are_different_models() -> None:
    assert F.ollama_model_name("llama3.2") != F.ollama_model_name("llama3.2:1b")
    assert F.ollama_model_short(F.ollama_model_name("llama3.2")) == "llama3.2:latest"
    assert F.ollama_model_short(F.ollama_model_name("me/tuned")) == "me/tuned:latest"
    assert F.ollama_model_short("reg.internal:5000/team/model:v1") == "reg.internal:5000/team/model:v1"


@pytest.mark.parametrize("raw", ["", "a/b/c/d", "../etc:passwd", "model:", "bad name", "ns/.hidden", 7, None])
def test_invalid_names_are_refused(raw: object) -> None:
    with pytest.raises(AnsibleFilterError):
        F.ollama_model_name(raw)


@pytest.mark.parametrize(
    ("bind", "url"),
    [
        ("127.0.0.1:11434", "http://127.0.0.1:11434"),
        ("0.0.0.0:11434", "http://127.0.0.1:11434"),
        ("[::]:8080", "http://[::1]:8080"),
        ("10.1.2.3:11434", "http://10.1.2.3:11434"),
        ("", "http://127.0.0.1:11434"),
        ("https://ollama.internal:443", "https://ollama.internal:443"),
    ],
)
def test_the_api_url_follows_the_bind(bind: str, url: str) -> None:
    assert F.ollama_api_url(bind) == url


BUNDLE = {
    "models": {
        "registry.ollama.ai/library/qwen:latest": {"manifest": "manifests/registry.ollama.ai/library/qwen/latest"}
    }
}


def test_the_plan_picks_a_source_per_model_and_prunes_the_rest() -> None:
    plan = F.ollama_models_plan(
        ["qwen", {"name": "llama3.2:1b"}, {"name": "mine", "gguf": "/m.gguf"}, {"name": "old", "state": "absent"}],
        present=["qwen:latest", "stray:7b", "old:latest"],
        bundle=BUNDLE,
        prune=True,
    )
    got = [(p["name"].split("/", 2)[2], p["state"], p["source"]) for p in plan]
    assert got == [
        ("qwen:latest", "present", "bundle"),
        ("llama3.2:1b", "present", "pull"),
        ("mine:latest", "present", "gguf"),
        ("old:latest", "absent", "pull"),
        ("stray:7b", "absent", "pull"),
    ]
    assert plan[0]["manifest"] == "manifests/registry.ollama.ai/library/qwen/latest"
    no_prune = F.ollama_models_plan(["qwen"], present=["stray:7b"], bundle=None, prune=False)
    assert [p["name"] for p in no_prune] == ["registry.ollama.ai/library/qwen:latest"]


@pytest.mark.parametrize(
    ("declared", "message"),
    [
        (["llama3.2", "llama3.2:latest"], "twice"),
        ([{"name": "a", "state": "gone"}], "state must be present or absent"),
        ([{"name": "a", "tag": "1b"}], "unknown keys"),
        ([{"state": "present"}], "needs a name"),
        ("llama3.2", "must be a list"),
    ],
)
def test_bad_declarations_are_refused(declared: object, message: str) -> None:
    with pytest.raises(AnsibleFilterError, match=message):
        F.ollama_models_plan(declared, present=[], bundle=None, prune=False)
