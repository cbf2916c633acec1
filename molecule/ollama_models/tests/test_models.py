"""Role ollama_models on a host run by role ollama: the declared models are in /api/tags and in the store (blobs
hash-checked, owned by the service user), names are read as Ollama reads them (`smollm-double` is `:latest`, not
`:1b`), removal and prune change only what they must, check mode changes nothing, and a GGUF model (Gemma 3 270M)
is created once and not copied again."""

from __future__ import annotations

import datetime
import hashlib
import json

import pytest

from tests.support.gguf import gguf_path
from tests.support.instances import Instance, apply_role, instance_names

(HOST,) = (Instance(name) for name in instance_names())
STORE = "/var/lib/ollama/models"
DECLARED = ["gemma3-270m:latest", "smollm-double:1b", "tinyllama-double:latest"]
POST = (
    "import sys, urllib.request; "
    'print(urllib.request.urlopen("http://127.0.0.1:11434" + sys.argv[1], sys.stdin.buffer.read()).read().decode())'
)
GGUF = gguf_path()


def listed() -> list[str]:
    return sorted(m["name"] for m in HOST.api("/api/tags")["models"])


def manifest(model: str, tag: str) -> dict[str, object]:
    return json.loads(HOST.sh(f"cat {STORE}/manifests/registry.ollama.ai/library/{model}/{tag}"))


@pytest.fixture(autouse=True)
def converged() -> None:
    """Each test starts from (and leaves) the converged state."""
    if listed() != DECLARED:
        run = apply_role(HOST.name, role="ollama_models")
        assert run.rc == 0, run
    assert listed() == DECLARED


def test_the_declared_models_are_listed_and_stored_whole() -> None:
    hashes = HOST.file_hashes(f"{STORE}/blobs")
    for model, tag in (("tinyllama-double", "latest"), ("smollm-double", "1b"), ("gemma3-270m", "latest")):
        m = manifest(model, tag)
        for layer in [m["config"], *m["layers"]]:
            path = f"{STORE}/blobs/{layer['digest'].replace(':', '-')}"
            assert hashes[path] == layer["digest"].split(":")[1], path
    owners = HOST.sh(f"find {STORE}/blobs {STORE}/manifests -not -user ollama")
    assert owners == "", f"files not owned by the service user:\n{owners}"
    assert HOST.sh(f"ls -A {STORE}") == "blobs\nmanifests\n", "no staging directory is left behind"


def test_the_gguf_model_is_the_file_with_its_settings_and_answers() -> None:
    digest = "sha256:" + hashlib.sha256(GGUF.read_bytes()).hexdigest()
    layers = manifest("gemma3-270m", "latest")["layers"]
    assert [layer["digest"] for layer in layers if layer["mediaType"].endswith(".model")] == [digest]
    show = json.loads(HOST.sh(f"python3 -c '{POST}' /api/show", stdin=json.dumps({"model": "gemma3-270m"})))
    assert show["template"].startswith("<start_of_turn>user")
    assert "num_ctx" in show["parameters"] and "<end_of_turn>" in show["parameters"]


def test_a_rerun_changes_and_copies_nothing() -> None:
    before = HOST.file_hashes(STORE)
    run = apply_role(HOST.name, role="ollama_models")
    assert run.rc == 0 and run.stats["changed"] == 0, run
    assert HOST.file_hashes(STORE) == before


def test_latest_is_not_a_sized_tag() -> None:
    # smollm-double:latest is another model than smollm-double:1b: removing the first leaves the second ...
    run = apply_role(
        HOST.name,
        role="ollama_models",
        ollama_models=[{"name": "smollm-double", "state": "absent"}, "smollm-double:1b"],
    )
    assert run.rc == 0 and run.stats["changed"] == 0, run
    assert listed() == DECLARED
    # ... and asking for it pulls it by that name (the double's registry has no such tag), without a fallback.
    run = apply_role(HOST.name, role="ollama_models", ollama_models=["smollm-double"], ollama_models_pull_retries=0)
    assert run.rc != 0
    assert any(
        "pulling registry.ollama.ai/library/smollm-double:latest failed after 1 attempt" in f
        and "file does not exist" in f
        for f in run.failures
    ), run
    assert listed() == DECLARED


def test_check_mode_reports_a_removal_and_changes_nothing_then_the_removal_frees_the_blobs() -> None:
    spec = [{"name": "smollm-double:1b", "state": "absent"}]

    def blobs(model: str, tag: str) -> set[str]:
        m = manifest(model, tag)
        return {f"{STORE}/blobs/{layer['digest'].replace(':', '-')}" for layer in [m["config"], *m["layers"]]}

    own = blobs("smollm-double", "1b") - blobs("tinyllama-double", "latest") - blobs("gemma3-270m", "latest")
    assert own
    before = HOST.file_hashes(STORE)
    check = apply_role(HOST.name, role="ollama_models", check=True, ollama_models=spec)
    assert check.rc == 0 and check.stats["changed"] == 1, check
    assert HOST.file_hashes(STORE) == before

    run = apply_role(HOST.name, role="ollama_models", ollama_models=spec)
    assert run.rc == 0 and run.stats["changed"] == 1, run
    assert listed() == ["gemma3-270m:latest", "tinyllama-double:latest"]
    assert not own & set(HOST.file_hashes(f"{STORE}/blobs")), "the model's own blobs go with it"


def test_prune_removes_what_is_not_declared_and_check_mode_first_reports_it() -> None:
    keep = [
        "smollm-double:1b",
        {
            "name": "gemma3-270m",
            "gguf": str(GGUF),
            # Ansible templates variables: Ollama's Go template braces are escaped as in molecule.yml.
            "template": "<start_of_turn>user\n{{ '{{' }} .Prompt {{ '}}' }}<end_of_turn>\n<start_of_turn>model\n",
            "parameters": {"num_ctx": 2048, "stop": ["<end_of_turn>"]},
        },
    ]
    check = apply_role(HOST.name, role="ollama_models", check=True, ollama_models=keep, ollama_models_prune=True)
    assert check.rc == 0 and check.stats["changed"] == 1, check
    assert listed() == DECLARED
    run = apply_role(HOST.name, role="ollama_models", ollama_models=keep, ollama_models_prune=True)
    assert run.rc == 0 and run.stats["changed"] == 1, run
    assert listed() == ["gemma3-270m:latest", "smollm-double:1b"]


def test_a_pull_that_would_not_fit_is_stopped_and_leaves_no_partial_file() -> None:
    run = apply_role(HOST.name, role="ollama_models", ollama_models=[{"name": "tinyllama-double", "state": "absent"}])
    assert run.rc == 0, run
    # 32 MiB free: the 4 KiB model fits, but not with the 64 MiB the role keeps spare.
    with HOST.small_filesystem(STORE, spare_mib=32, spare_inodes=1000):
        before = HOST.file_hashes(STORE)
        run = apply_role(HOST.name, role="ollama_models", ollama_models=["tinyllama-double"])
        assert run.rc != 0
        assert any(
            "not enough free space to pull registry.ollama.ai/library/tinyllama-double:latest" in f
            and "the pull was stopped" in f
            for f in run.failures
        ), run
        # The module removes what appeared in the store during the pull: partial files, also of layers it never
        # saw announced, and layers the server finished before it noticed the closed connection.
        assert HOST.file_hashes(STORE) == before, "no blob, no partial file, no manifest"
        HOST.restart()
        assert listed() == ["gemma3-270m:latest", "smollm-double:1b"]


def test_warm_loads_every_present_model_for_the_keep_alive() -> None:
    HOST.restart()  # nothing loaded
    assert HOST.api("/api/ps")["models"] == []
    run = apply_role(HOST.name, role="ollama_models", ollama_models_warm=True, ollama_models_keep_alive="45m")
    assert run.rc == 0 and run.stats["changed"] == 0, run
    loaded = HOST.api("/api/ps")["models"]
    assert sorted(m["name"] for m in loaded) == DECLARED
    left = [datetime.datetime.fromisoformat(m["expires_at"]) - datetime.datetime.now().astimezone() for m in loaded]
    assert all(datetime.timedelta(minutes=40) < t <= datetime.timedelta(minutes=45) for t in left), left


@pytest.mark.parametrize("first", ["nomic-embed-double", "qwen3-double:0.6b"], ids=["embedding", "thinking"])
def test_embedding_and_thinking_models_pass_the_warm_up_and_the_gate(first: str) -> None:
    """nomic-embed-text answers 400 to /api/generate, and a thinking model's eight tokens may all be reasoning: the
    warm-up loads each the way it can be loaded, and the gate (which checks the first model) passes for both."""
    models = [first, *DECLARED]
    try:
        run = apply_role(HOST.name, role="ollama_models", then="gate", ollama_models=models, ollama_models_warm=True)
        assert run.rc == 0, run
        loaded = sorted(m["name"] for m in HOST.api("/api/ps")["models"])
        assert (first if ":" in first else f"{first}:latest") in loaded, loaded
    finally:
        absent = [{"name": first, "state": "absent"}]
        assert apply_role(HOST.name, role="ollama_models", ollama_models=absent).rc == 0
