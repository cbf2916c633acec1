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


@pytest.mark.parametrize(
    "manifest",
    [
        "../../../../etc/shadow",
        "/etc/shadow",
        "manifests/registry.ollama.ai/library/qwen/../../../../../etc/shadow",
        "manifests/registry.ollama.ai/library/other/latest",
        None,
    ],
)
def test_a_bundle_index_pointing_outside_the_model_s_own_manifest_is_refused(manifest: object) -> None:
    """The role reads the manifest the index names on the controller: a doctored index must not reach other files."""
    bundle = {"models": {"registry.ollama.ai/library/qwen:latest": {"manifest": manifest}}}
    with pytest.raises(AnsibleFilterError, match="the bundle is damaged or was altered"):
        F.ollama_models_plan(["qwen"], present=[], bundle=bundle, prune=False)


def _planned(name: str, needs: list[tuple[str, int]], free: int = 300) -> dict[str, object]:
    return {
        "__ollama_models_item": {"name": name},
        "needs": [{"digest": d, "bytes": b} for d, b in needs],
        "free_bytes": free,
        "spare_bytes": 64,
    }


def test_models_that_fit_alone_but_not_together_are_refused() -> None:
    a = _planned("registry.ollama.ai/library/a:latest", [("sha256:1", 100), ("sha256:c", 10)])
    b = _planned("registry.ollama.ai/library/b:latest", [("sha256:2", 100), ("sha256:c", 10)])
    present = _planned("registry.ollama.ai/library/p:latest", [])
    assert F.ollama_models_space_problem([a, present], "/store") == ""  # 110 + 64 <= 300
    assert F.ollama_models_space_problem([a, b, present], "/store") == ""  # 210 (shared blob once) + 64 <= 300
    c = _planned("registry.ollama.ai/library/c:latest", [("sha256:3", 100)])
    problem = F.ollama_models_space_problem([a, b, c], "/store")  # 310 + 64 > 300
    assert "3 models together (a:latest, b:latest, c:latest)" in problem
    assert "need 310 bytes plus 64 spare, /store has 300 free" in problem
