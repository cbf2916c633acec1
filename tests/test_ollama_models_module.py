"""Role ollama_models' modules against the Ollama test double's real HTTP server and on-disk store: pulls,
removals, check mode, bundle export and import (verified, blobs before manifests, nothing moved twice) and GGUF
create. The modules' logic is the code the role runs on hosts."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.server
import json
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tests.harness import build_double_releases
from tests.support.double import InProcessDouble
from tests.support.filters import role_module

M = role_module("ollama_models", "ollama_model")
B = role_module("ollama_models", "ollama_bundle")
TINY = "registry.ollama.ai/library/tinyllama-double:latest"
SMOL = "registry.ollama.ai/library/smollm-double:1b"


def b64(data: bytes) -> str:
    """A manifest as the role passes it to the module (its exact bytes, base64)."""
    return base64.b64encode(data).decode()


@pytest.fixture
def server(tmp_path: Path, registry: Path) -> Iterator[InProcessDouble]:
    double = InProcessDouble(tmp_path / "models", registry)
    yield double
    double.stop()


def params(double: InProcessDouble, name: str, **overrides: Any) -> dict[str, Any]:
    base = {
        "name": name,
        "state": "present",
        "store": str(double.store.root),
        "api_url": double.url,
        "source": "pull",
        "insecure": False,
        "retries": 1,
        "timeout": 30,
        "manifest": "",
        "staging": str(double.store.root / ".cortex-staging"),
        "gguf_digest": "",
        "gguf_size": 0,
        "template": "",
        "system": "",
        "parameters": {},
    }
    return base | overrides


def blob_files(double: InProcessDouble) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in double.store.blobs.iterdir()}


def test_pull_adds_a_model_once_and_check_mode_changes_nothing(server: InProcessDouble) -> None:
    would = M.ensure(params(server, TINY), check=True)
    assert would["changed"] and "would be pulled" in would["msg"]
    assert server.models() == []

    pulled = M.ensure(params(server, TINY), check=False)
    assert pulled["changed"]
    assert server.models() == ["tinyllama-double:latest"]
    assert pulled["bytes_moved"] == sum(blob_files(server).values()) > 0
    assert any("100%" in line for line in pulled["progress"])

    again = M.ensure(params(server, TINY), check=False)
    assert not again["changed"] and again["bytes_moved"] == 0


def test_a_tag_is_its_own_model(server: InProcessDouble) -> None:
    M.ensure(params(server, SMOL), check=False)
    assert server.models() == ["smollm-double:1b"]
    latest = M.ensure(params(server, "registry.ollama.ai/library/smollm-double:latest", retries=0), check=True)
    assert latest["changed"], "smollm-double:latest is not smollm-double:1b"


def test_a_failing_pull_is_retried_then_reported(server: InProcessDouble) -> None:
    with pytest.raises(M.ModelError, match=r"pulling .*nope:latest failed after 2 attempts.*file does not exist"):
        M.ensure(params(server, "registry.ollama.ai/library/nope:latest", retries=1), check=False)
    assert server.models() == []
    assert not any(server.store.blobs.iterdir())


def test_remove_is_idempotent(server: InProcessDouble) -> None:
    M.ensure(params(server, TINY), check=False)
    M.ensure(params(server, SMOL), check=False)
    assert M.ensure(params(server, TINY, state="absent"), check=True)["changed"]
    assert len(server.models()) == 2
    assert M.ensure(params(server, TINY, state="absent"), check=False)["changed"]
    assert server.models() == ["smollm-double:1b"]
    assert not M.ensure(params(server, TINY, state="absent"), check=False)["changed"]


def export_bundle(tmp_path: Path, registry: Path) -> Path:
    dest = tmp_path / "bundle" / "models"
    result = B.export(registry, [TINY, SMOL], dest)
    assert result["changed"] and result["bytes_copied"] == result["bytes_total"] > 0
    rerun = B.export(registry, [TINY, SMOL], dest)
    assert not rerun["changed"] and rerun["bytes_copied"] == 0
    return dest


def stage(bundle: Path, missing: list[dict[str, Any]], staging: Path) -> None:
    staging.mkdir(exist_ok=True)
    for blob in missing:
        name = blob["digest"].replace(":", "-")
        shutil.copy(bundle / "blobs" / name, staging / name)


def test_a_bundle_imports_verified_blobs_before_the_manifest_and_a_rerun_moves_nothing(
    server: InProcessDouble, tmp_path: Path, registry: Path
) -> None:
    bundle = export_bundle(tmp_path, registry)
    index = json.loads((bundle / "index.json").read_text())
    assert sorted(index["models"]) == sorted([TINY, SMOL])
    for name in (TINY, SMOL):
        raw = b64((bundle / index["models"][name]["manifest"]).read_bytes())
        p = params(server, name, source="bundle", manifest=raw)
        planned = M.ensure(p, check=True)
        assert planned["changed"] and planned["missing"]
        assert {b["digest"] for b in planned["missing"]} <= {b["digest"] for b in index["models"][name]["blobs"]}
        stage(bundle, planned["missing"], Path(p["staging"]))
        done = M.ensure(p, check=False)
        assert done["bytes_moved"] == sum(b["size"] for b in planned["missing"])
        assert not any(Path(p["staging"]).iterdir()), "staged blobs are moved, not copied"
        again = M.ensure(p, check=True)
        assert not again["changed"] and again["missing"] == []
    assert server.models() == ["smollm-double:1b", "tinyllama-double:latest"]
    reply = server.http.post(
        "/api/chat",
        json={"model": "smollm-double:1b", "messages": [{"role": "user", "content": "hi"}], "stream": False},
    )
    assert reply.status_code == 200, reply.text


def test_a_corrupt_blob_is_refused_and_nothing_becomes_visible(
    server: InProcessDouble, tmp_path: Path, registry: Path
) -> None:
    bundle = export_bundle(tmp_path, registry)
    index = json.loads((bundle / "index.json").read_text())
    raw = b64((bundle / index["models"][TINY]["manifest"]).read_bytes())
    p = params(server, TINY, source="bundle", manifest=raw)
    planned = M.ensure(p, check=True)
    stage(bundle, planned["missing"], Path(p["staging"]))
    victim = Path(p["staging"]) / planned["missing"][0]["digest"].replace(":", "-")
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    with pytest.raises(M.ModelError, match=r"in the bundle is corrupt: its sha256 is sha256:.*nothing was imported"):
        M.ensure(p, check=False)
    assert server.models() == []
    assert not any(server.store.blobs.iterdir())


def test_export_refuses_a_model_the_store_lacks(tmp_path: Path, registry: Path) -> None:
    with pytest.raises(B.ExportError, match="not in the store"):
        B.export(registry, ["registry.ollama.ai/library/nope:latest"], tmp_path / "b")


def gguf_model(
    server: InProcessDouble, tmp_path: Path, model: str, data: bytes, **settings: Any
) -> tuple[dict[str, Any], Path]:
    """A GGUF file on the 'controller' and the module's parameters to create `model` from it."""
    gguf = tmp_path / f"{model}.gguf"
    gguf.write_bytes(data)
    digest = M.sha256_file(gguf)
    name = f"registry.ollama.ai/library/{model}:latest"
    return params(server, name, source="gguf", gguf_digest=digest, gguf_size=len(data), **settings), gguf


def stage_gguf(p: dict[str, Any], gguf: Path) -> None:
    """What the role's copy does: the file into the staging directory under its blob name."""
    Path(p["staging"]).mkdir(exist_ok=True)
    shutil.copy(gguf, Path(p["staging"]) / p["gguf_digest"].replace(":", "-"))


def test_a_gguf_model_is_created_once_and_recreated_when_its_settings_change(
    server: InProcessDouble, tmp_path: Path
) -> None:
    settings = {"template": "{{ .Prompt }}", "system": "Be brief.", "parameters": {"num_ctx": 4096, "stop": ["<end>"]}}
    data = build_double_releases.fake_gguf("tiny", 50_000)
    p, gguf = gguf_model(server, tmp_path, "tiny-gguf", data, **settings)
    digest = p["gguf_digest"]
    planned = M.ensure(p, check=True)
    assert planned["changed"] and planned["missing"] == [{"digest": digest, "size": 50_000}]
    stage_gguf(p, gguf)
    created = M.ensure(p, check=False)
    assert created["changed"] and created["bytes_moved"] == 50_000
    show = server.http.post("/api/show", json={"model": "tiny-gguf"}).json()
    assert show["template"] == "{{ .Prompt }}" and show["system"] == "Be brief."
    assert "num_ctx" in show["parameters"]
    assert not M.ensure(p, check=True)["changed"]

    changed = M.ensure(p | {"parameters": {"num_ctx": 8192, "stop": ["<end>"]}}, check=False)
    assert changed["changed"] and changed["missing"] == [] and changed["bytes_moved"] == 0
    assert not M.ensure(p | {"parameters": {"num_ctx": 8192, "stop": ["<end>"]}}, check=True)["changed"]


@contextlib.contextmanager
def serving(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """A scripted Ollama API on a free loopback port: its URL."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def pull_params(store: Path, api_url: str, name: str, **overrides: Any) -> dict[str, Any]:
    base = {"name": name, "state": "present", "store": str(store), "api_url": api_url, "source": "pull"}
    return base | {"insecure": False, "retries": 0, "timeout": 10} | overrides


class _RecordingPull(http.server.BaseHTTPRequestHandler):
    """A registry-facing /api/pull that records what the module asked for, then reports success."""

    bodies: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        self.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.end_headers()
        self.wfile.write(b'{"status":"pulling manifest"}\n{"status":"success"}\n')

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_private_registry_is_pulled_with_insecure_and_success_without_a_manifest_is_an_error(tmp_path: Path) -> None:
    store = tmp_path / "models"
    store.mkdir()
    with serving(_RecordingPull) as url:
        p = pull_params(store, url, "reg.internal:5000/team/model:v1", insecure=True)
        with pytest.raises(M.ModelError, match=r"reported success pulling .* does not exist"):
            M.ensure(p, check=False)
    assert _RecordingPull.bodies == [{"model": "reg.internal:5000/team/model:v1", "insecure": True, "stream": True}]


class _LaggingPull(http.server.BaseHTTPRequestHandler):
    """A /api/pull whose stream lags behind its download, as a loaded server's can: the layer is whole in the store
    (`store`, set by the test), and the manifest written, before the client reads the event that announces it."""

    store: ClassVar[Path]
    layer = b"GGUF" + bytes(4092)
    digest = "sha256:" + hashlib.sha256(layer).hexdigest()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        (self.store / "blobs").mkdir(parents=True, exist_ok=True)
        (self.store / "blobs" / self.digest.replace(":", "-")).write_bytes(self.layer)
        manifest = self.store / "manifests/registry.ollama.ai/library/lagging/latest"
        manifest.parent.mkdir(parents=True, exist_ok=True)
        manifest.write_text(json.dumps({"schemaVersion": 2, "layers": [{"digest": self.digest, "size": 4096}]}))
        size = len(self.layer)
        events = [
            {"status": "pulling manifest"},
            {"status": f"pulling {self.digest[7:19]}", "digest": self.digest, "total": size, "completed": 0},
            {"status": f"pulling {self.digest[7:19]}", "digest": self.digest, "total": size, "completed": size},
            {"status": "success"},
        ]
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.end_headers()
        self.wfile.write(b"".join(json.dumps(e).encode() + b"\n" for e in events))

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_pull_already_done_when_announced_is_still_checked_for_space_and_undone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The space check reads the store, not the event: a layer that landed before its first event was read must
    still leave the spare room, or the pull is stopped and what it added (layer and manifest) removed."""
    store = tmp_path / "models"
    store.mkdir()
    _LaggingPull.store = store
    st = os.statvfs(store)
    monkeypatch.setattr(M, "SPACE_MARGIN", st.f_bavail * st.f_frsize)  # this filesystem has no spare room
    with serving(_LaggingPull) as url:
        p = pull_params(store, url, "registry.ollama.ai/library/lagging:latest")
        with pytest.raises(M.NoSpace, match=r"not enough free space to pull .*lagging:latest.* the pull was stopped"):
            M.ensure(p, check=False)
    assert not any((store / "blobs").iterdir()), "the layer that landed is removed"
    assert not any(p.is_file() for p in (store / "manifests").rglob("*")), "and the manifest the server wrote"


def test_a_blob_of_the_wrong_size_counts_as_missing_and_is_replaced(
    server: InProcessDouble, tmp_path: Path, registry: Path
) -> None:
    """Drift: a blob cut short (a disk that filled, a copy interrupted by hand) is not the blob; the import copies it
    again and the store ends whole."""
    bundle = export_bundle(tmp_path, registry)
    index = json.loads((bundle / "index.json").read_text())
    p = params(server, TINY, source="bundle", manifest=b64((bundle / index["models"][TINY]["manifest"]).read_bytes()))
    stage(bundle, M.ensure(p, check=True)["missing"], Path(p["staging"]))
    M.ensure(p, check=False)
    layer = index["models"][TINY]["blobs"][1]
    blob = server.store.blobs / layer["digest"].replace(":", "-")
    blob.write_bytes(blob.read_bytes()[: layer["size"] // 2])

    planned = M.ensure(p, check=True)
    assert planned["changed"] and [m["digest"] for m in planned["missing"]] == [layer["digest"]]
    assert planned["needs"] == [{"digest": layer["digest"], "bytes": layer["size"]}]
    assert planned["free_bytes"] > 0 and planned["spare_bytes"] == M.SPACE_MARGIN
    stage(bundle, planned["missing"], Path(p["staging"]))
    assert M.ensure(p, check=False)["bytes_moved"] == layer["size"]
    assert M.sha256_file(blob) == layer["digest"]
    assert not M.ensure(p, check=True)["changed"]


def test_imported_blobs_and_the_manifest_reach_the_disk_before_their_rename(
    server: InProcessDouble, tmp_path: Path, registry: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a power loss a renamed file whose data was never flushed is an empty blob or manifest under its final
    name. Every file is fsync'd before os.replace gives it that name, and the directory after."""
    bundle = export_bundle(tmp_path, registry)
    index = json.loads((bundle / "index.json").read_text())
    p = params(server, TINY, source="bundle", manifest=b64((bundle / index["models"][TINY]["manifest"]).read_bytes()))
    stage(bundle, M.ensure(p, check=True)["missing"], Path(p["staging"]))
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src: Any, dst: Any) -> None:
        events.append(("replace", str(src)))
        real_replace(src, dst)

    monkeypatch.setattr(M.os, "fsync", fsync)
    monkeypatch.setattr(M.os, "replace", replace)
    M.ensure(p, check=False)
    replaced = [path for kind, path in events if kind == "replace"]
    assert len(replaced) == len(index["models"][TINY]["blobs"]) + 1  # the blobs, then the manifest
    for path in replaced:
        assert events.index(("fsync", path)) < events.index(("replace", path)), path
    manifest_dir = str(server.store.root.joinpath("manifests", "registry.ollama.ai", "library", "tinyllama-double"))
    assert events[-1] == ("fsync", manifest_dir)


def test_a_gguf_model_without_a_template_stays_put_when_the_server_detects_one(
    server: InProcessDouble, tmp_path: Path
) -> None:
    """Ollama's create reads the GGUF's chat template and stores a template layer of its own choosing when the
    request names none: the next run must not take that layer for a change and create the model again."""
    data = build_double_releases.gguf_with_chat_template("chat", 40_000, "{{ messages }}")
    p, gguf = gguf_model(server, tmp_path, "chat-gguf", data)
    stage_gguf(p, gguf)
    assert M.ensure(p, check=False)["changed"]
    assert server.http.post("/api/show", json={"model": "chat-gguf"}).json()["template"], "the double detected one"
    assert not M.ensure(p, check=True)["changed"]
    # A template asked for is still compared: asking for another one recreates the model.
    assert M.ensure(p | {"template": "{{ .Prompt }}"}, check=True)["changed"]


def test_a_gguf_blob_cut_short_is_uploaded_again(server: InProcessDouble, tmp_path: Path) -> None:
    """The server answers HEAD /api/blobs/<digest> with 200 for any file of that name, so a blob of the wrong size
    must go before the upload, or the model stays on a broken blob and every run reports a change."""
    p, gguf = gguf_model(server, tmp_path, "cut-gguf", build_double_releases.fake_gguf("tiny", 30_000),
                         template="{{ .Prompt }}")  # fmt: skip
    digest = p["gguf_digest"]
    stage_gguf(p, gguf)
    M.ensure(p, check=False)
    blob = server.store.blobs / digest.replace(":", "-")
    blob.write_bytes(blob.read_bytes()[:1000])
    planned = M.ensure(p, check=True)
    assert planned["changed"] and planned["missing"] == [{"digest": digest, "size": 30_000}]
    stage_gguf(p, gguf)
    assert M.ensure(p, check=False)["bytes_moved"] == 30_000
    assert M.sha256_file(blob) == digest
    assert not M.ensure(p, check=True)["changed"]
