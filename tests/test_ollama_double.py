"""The Ollama test double and its release-archive builder (tests/harness/), checked against Ollama's real
layouts and API shapes. The double runs from an extracted archive as a real server on a loopback port."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness import build_double_releases as builder
from tests.harness import ollama_double as double
from tests.support.archives import REPO, extract, read_archive
from tests.support.double import InProcessDouble
from tests.support.net import free_port

OLD, NEW = "0.13.5", "0.34.3"  # .tgz and .tar.zst releases


def build(*args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.harness.build_double_releases", *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    return proc.stdout


def members(archive: Path) -> dict[str, tarfile.TarInfo]:
    with read_archive(archive) as tar:
        return {m.name: m for m in tar.getmembers()}


def ndjson(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("releases")
    build("--out", str(out), "--versions", OLD, NEW)
    return out


@pytest.fixture(scope="module")
def ollama_bin(releases: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return extract(releases / NEW / "ollama-linux-amd64.tar.zst", tmp_path_factory.mktemp("install") / "usr")


class Double:
    def __init__(self, binary: Path, home: Path, env: dict[str, str]) -> None:
        self.binary, self.home = binary, home
        self.port = free_port()
        self.env = {
            "PATH": os.environ["PATH"],
            "HOME": str(home),
            "OLLAMA_HOST": f"127.0.0.1:{self.port}",
            "OLLAMA_DOUBLE_DISCOVERY_MS": "0",
            **env,
        }
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [str(binary), "serve"], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.http = httpx.Client(base_url=self.url, timeout=10)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.http.get("/")
                return
            except httpx.TransportError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    log = self.proc.stderr.read() if self.proc.stderr else ""
                    raise RuntimeError(f"double did not start: {log}") from None
                time.sleep(0.05)

    def cli(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.binary), *args], check=False, env=self.env, capture_output=True, text=True, cwd=cwd
        )

    def stop(self) -> int:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=10)


@pytest.fixture
def server(ollama_bin: Path, registry: Path, tmp_path: Path) -> Iterator[Double]:
    d = Double(ollama_bin, tmp_path / "home", {"OLLAMA_DOUBLE_REGISTRY": str(registry)})
    yield d
    d.stop()


class InProcess(InProcessDouble):
    """The in-process double with its store under `home`, where the real server keeps it."""

    def __init__(self, home: Path, registry: Path) -> None:
        self.home = home
        super().__init__(home / ".ollama" / "models", registry)


@pytest.fixture
def api(registry: Path, tmp_path: Path) -> Iterator[InProcess]:
    d = InProcess(tmp_path / "home", registry)
    yield d
    d.stop()


# --- builder --------------------------------------------------------------------------------------------


def test_archive_format_follows_version(releases: Path) -> None:
    def names(version: str, ext: str) -> list[str]:
        return [
            f"ollama-linux-amd64-rocm.{ext}",
            f"ollama-linux-amd64.{ext}",
            f"ollama-linux-arm64-jetpack5.{ext}",
            f"ollama-linux-arm64-jetpack6.{ext}",
            f"ollama-linux-arm64.{ext}",
            "sha256sum.txt",
        ]

    assert sorted(p.name for p in (releases / OLD).iterdir()) == names(OLD, "tgz")
    assert sorted(p.name for p in (releases / NEW).iterdir()) == names(NEW, "tar.zst")
    assert (releases / OLD / "ollama-linux-amd64.tgz").read_bytes()[:2] == b"\x1f\x8b"  # gzip
    assert (releases / NEW / "ollama-linux-amd64.tar.zst").read_bytes()[:4] == b"\x28\xb5\x2f\xfd"  # zstd
    assert builder.archive_name("0.13.99", "amd64").endswith(".tgz")
    assert builder.archive_name("0.14.0", "amd64").endswith(".tar.zst")
    assert builder.archive_name("0.14.0-rc2", "amd64", "rocm") == "ollama-linux-amd64-rocm.tar.zst"


@pytest.mark.parametrize(("version", "ext", "cuda"), [(OLD, "tgz", "cuda_v12"), (NEW, "tar.zst", "cuda_v13")])
def test_archive_layout_owners_and_modes(releases: Path, version: str, ext: str, cuda: str) -> None:
    """As Ollama's release workflow packs it: `tar c -T list --owner 0 --group 0` of bin/ollama and lib/ollama/*."""
    entries = members(releases / version / f"ollama-linux-amd64.{ext}")
    assert {"bin/ollama", "lib/ollama/libggml-base.so", f"lib/ollama/{cuda}/libggml-cuda.so"} <= set(entries)
    assert not any(name.startswith("./") for name in entries)
    assert not {"bin", "lib", "lib/ollama"} & {name.rstrip("/") for name in entries}  # tar makes them
    assert not any(("cuda_v13" if cuda == "cuda_v12" else "cuda_v12") in name for name in entries)
    for m in entries.values():
        assert (m.uid, m.gid, m.uname, m.gname) == (0, 0, "root", "root"), m.name
        assert m.mtime == builder.MTIME
    assert entries["bin/ollama"].mode == 0o755
    base = entries["lib/ollama/libggml-base.so"]
    assert base.issym() and base.linkname == "libggml-base.so.0.0.0"
    real = entries["lib/ollama/libggml-base.so.0.0.0"]
    assert real.isfile() and real.mode == 0o644
    assert entries[f"lib/ollama/{cuda}/libcublas.so.12"].linkname == "libcublas.so.12.8.4"


@pytest.mark.parametrize(
    ("arch", "addon", "backend"), [("amd64", "rocm", "rocm_v7"), ("arm64", "jetpack6", "cuda_jetpack6")]
)
def test_gpu_addons_hold_only_their_backend(releases: Path, arch: str, addon: str, backend: str) -> None:
    entries = members(releases / NEW / f"ollama-linux-{arch}-{addon}.tar.zst")
    assert entries and all(name.startswith(f"lib/ollama/{backend}") for name in entries), sorted(entries)


def test_binary_and_libraries_carry_the_version(releases: Path, tmp_path: Path) -> None:
    binary = extract(releases / OLD / "ollama-linux-arm64.tgz", tmp_path / "x")
    assert f'VERSION = "{OLD}"' in binary.read_text()
    assert "TEST DOUBLE" in binary.read_text()
    libs = [p for p in (tmp_path / "x" / "lib" / "ollama").rglob("*.so*") if not p.is_symlink()]
    assert libs and all(f"linux-arm64 for ollama {OLD};" in p.read_text() for p in libs)
    assert (tmp_path / "x" / "lib" / "ollama" / "libggml-cpu-arm64.so").is_file()


def test_sha256sum_txt_matches_the_real_format(releases: Path) -> None:
    for version, ext in ((OLD, "tgz"), (NEW, "tar.zst")):
        text = (releases / version / "sha256sum.txt").read_text()
        lines = text.splitlines()
        assert lines == sorted(lines, key=lambda line: line.split()[1]) and len(lines) == 5
        for line in lines:
            name_re = r"ollama-linux-(amd64|arm64)(-[a-z0-9]+)?\." + re.escape(ext)
            m = re.fullmatch(r"([0-9a-f]{64})  \./(" + name_re + ")", line)
            assert m, line
            assert hashlib.sha256((releases / version / m.group(2)).read_bytes()).hexdigest() == m.group(1)
        subprocess.run(["sha256sum", "-c", "--quiet", "sha256sum.txt"], cwd=releases / version, check=True)


def test_builds_are_reproducible_and_reruns_skip(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    first = build("--out", str(a), "--versions", OLD, NEW, "--arch", "amd64")
    build("--out", str(b), "--versions", OLD, NEW, "--arch", "amd64")
    assert first.count("built:") == 4  # main and ROCm add-on, two versions
    for rel in (f"{OLD}/ollama-linux-amd64.tgz", f"{NEW}/ollama-linux-amd64.tar.zst", f"{NEW}/sha256sum.txt"):
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    stamp = (a / NEW / "ollama-linux-amd64.tar.zst").stat().st_mtime_ns
    again = build("--out", str(a), "--versions", OLD, NEW, "--arch", "amd64")
    assert again.count("up to date:") == 4 and "built:" not in again
    assert (a / NEW / "ollama-linux-amd64.tar.zst").stat().st_mtime_ns == stamp
    (a / NEW / "ollama-linux-amd64.tar.zst").write_bytes(b"corrupt")  # damaged output is rebuilt
    assert "built: " + NEW in build("--out", str(a), "--versions", NEW, "--arch", "amd64")
    assert (a / NEW / "ollama-linux-amd64.tar.zst").read_bytes() == (
        b / NEW / "ollama-linux-amd64.tar.zst"
    ).read_bytes()


def test_bad_version_is_refused_before_writing(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.harness.build_double_releases",
            "--out",
            str(tmp_path / "out"),
            "--versions",
            "0.13.5",
            "v1.2",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    assert proc.returncode == 2
    assert "invalid version 'v1.2'" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_registry_has_real_store_layout(registry: Path) -> None:
    manifest_path = registry / "manifests" / "registry.ollama.ai" / "library" / "tinyllama-double" / "latest"
    manifest = json.loads(manifest_path.read_text())
    assert manifest["schemaVersion"] == 2
    assert manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert (registry / "manifests" / "registry.ollama.ai" / "library" / "smollm-double" / "1b").is_file()
    model = [x for x in manifest["layers"] if x["mediaType"] == "application/vnd.ollama.image.model"]
    assert len(model) == 1
    for layer in [*manifest["layers"], manifest["config"]]:
        blob = registry / "blobs" / layer["digest"].replace("sha256:", "sha256-")
        data = blob.read_bytes()
        assert "sha256:" + hashlib.sha256(data).hexdigest() == layer["digest"]
        assert len(data) == layer["size"]
    gguf = (registry / "blobs" / model[0]["digest"].replace(":", "-")).read_bytes()
    assert gguf[:4] == b"GGUF" and 1000 < len(gguf) < 100_000


# --- names and settings -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "parts", "short"),
    [
        ("llama3", ("registry.ollama.ai", "library", "llama3", "latest"), "llama3:latest"),
        ("llama3.2:1b", ("registry.ollama.ai", "library", "llama3.2", "1b"), "llama3.2:1b"),
        ("acme/tiny:q4", ("registry.ollama.ai", "acme", "tiny", "q4"), "acme/tiny:q4"),
        ("reg.local:5000/team/m", ("reg.local:5000", "team", "m", "latest"), "reg.local:5000/team/m:latest"),
    ],
)
def test_names_are_normalised_like_ollama(raw: str, parts: tuple[str, ...], short: str) -> None:
    name = double.parse_name(raw)
    assert name is not None and name.parts() == parts and name.shortest() == short


@pytest.mark.parametrize("raw", ["", "a/b/c/d", "../etc:passwd", "x/..", "bad name"])
def test_invalid_names_are_rejected(raw: str) -> None:
    assert double.parse_name(raw) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", ("http", "127.0.0.1", 11434)),
        ("0.0.0.0", ("http", "0.0.0.0", 11434)),
        ("10.1.2.3:8080", ("http", "10.1.2.3", 8080)),
        ("http://example.internal:9000", ("http", "example.internal", 9000)),
        ("https://example.internal", ("https", "example.internal", 443)),
        ("[::1]:7000", ("http", "::1", 7000)),
        (":11500", ("http", "", 11500)),
    ],
)
def test_ollama_host_parsing(value: str, expected: tuple[str, str, int]) -> None:
    assert double.parse_host(value) == expected


# --- server ---------------------------------------------------------------------------------------------


def test_version_cli_with_and_without_server(server: Double, ollama_bin: Path, tmp_path: Path) -> None:
    proc = server.cli("--version")
    assert (proc.returncode, proc.stdout) == (0, f"ollama version is {NEW}\n")
    assert server.cli("-v").stdout == proc.stdout
    env = {**server.env, "OLLAMA_HOST": f"127.0.0.1:{free_port()}"}
    alone = subprocess.run([str(ollama_bin), "--version"], check=False, env=env, capture_output=True, text=True)
    assert alone.returncode == 0
    assert alone.stdout == (
        f"Warning: could not connect to a running Ollama instance\nWarning: client version is {NEW}\n"
    )


def test_root_version_and_key(server: Double) -> None:
    r = server.http.get("/")
    assert (r.status_code, r.text) == (200, "Ollama is running")
    assert server.http.head("/").status_code == 200
    assert server.http.get("/api/version").json() == {"version": NEW}
    assert server.http.get("/api/tags").json() == {"models": []}
    assert server.http.get("/api/ps").json() == {"models": []}
    assert server.http.get("/nope").status_code == 404
    assert server.http.get("/api/pull").status_code == 405
    key = server.home / ".ollama" / "id_ed25519"
    assert key.is_file() and key.stat().st_mode & 0o777 == 0o600
    assert (server.home / ".ollama" / "models" / "blobs").is_dir()


def test_pull_streams_progress_and_fills_the_store(api: InProcess, registry: Path) -> None:
    r = api.http.post("/api/pull", json={"model": "tinyllama-double"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-ndjson"
    events = ndjson(r.text)
    statuses = [e["status"] for e in events]
    assert statuses[0] == "pulling manifest"
    assert statuses[-3:] == ["verifying sha256 digest", "writing manifest", "success"]
    layer_events = [e for e in events if e["status"].startswith("pulling ") and "digest" in e]
    assert layer_events
    for e in layer_events:
        assert e["status"] == f"pulling {e['digest'][7:19]}" and e["completed"] <= e["total"]
    store = api.home / ".ollama" / "models"
    assert (store / "manifests" / "registry.ollama.ai" / "library" / "tinyllama-double" / "latest").is_file()
    source = registry / "manifests" / "registry.ollama.ai" / "library" / "tinyllama-double" / "latest"
    for layer in double.layers_of(json.loads(source.read_text())):
        assert (store / "blobs" / layer["digest"].replace(":", "-")).is_file()
    models = api.http.get("/api/tags").json()["models"]
    assert [m["name"] for m in models] == ["tinyllama-double:latest"]
    m = models[0]
    assert m["model"] == m["name"] and re.fullmatch(r"[0-9a-f]{64}", m["digest"])
    assert m["digest"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert m["details"]["format"] == "gguf" and m["details"]["quantization_level"] == "Q4_0"
    assert m["size"] == sum(x["size"] for x in double.layers_of(json.loads(source.read_text())))
    single = api.http.post("/api/pull", json={"model": "smollm-double:1b", "stream": False})
    assert single.json() == {"status": "success"}


def test_pull_unknown_model_errors_like_ollama(api: InProcess) -> None:
    r = api.http.post("/api/pull", json={"model": "missing-model", "stream": False})
    assert (r.status_code, r.json()) == (500, {"error": "pull model manifest: file does not exist"})
    streamed = ndjson(api.http.post("/api/pull", json={"model": "missing-model"}).text)
    assert streamed == [{"status": "pulling manifest"}, {"error": "pull model manifest: file does not exist"}]
    assert api.http.get("/api/tags").json() == {"models": []}


def test_pull_verifies_blob_digests(registry: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad-registry"
    shutil.copytree(registry, bad)
    manifest = json.loads((bad / "manifests/registry.ollama.ai/library/smollm-double/1b").read_text())
    model_digest = manifest["layers"][0]["digest"]
    (bad / "blobs" / model_digest.replace(":", "-")).write_bytes(b"GGUF tampered")
    d = InProcess(tmp_path / "home", bad)
    try:
        r = d.http.post("/api/pull", json={"model": "smollm-double:1b", "stream": False})
        assert r.status_code == 500
        assert r.json()["error"].startswith(f"digest mismatch, file must be downloaded again: want {model_digest}")
        assert d.http.get("/api/tags").json() == {"models": []}
        assert not list((tmp_path / "home/.ollama/models/blobs").glob(model_digest.replace(":", "-") + "*"))
    finally:
        d.stop()


def test_show_and_delete(api: InProcess) -> None:
    api.http.post("/api/pull", json={"model": "tinyllama-double", "stream": False})
    show = api.http.post("/api/show", json={"model": "tinyllama-double"}).json()
    assert show["details"]["family"] == "llama" and "{{ .Prompt }}" in show["template"]
    assert show["modelfile"].startswith('# Modelfile generated by "ollama show"')
    missing = api.http.post("/api/show", json={"model": "nope"})
    assert (missing.status_code, missing.json()) == (404, {"error": "model 'nope' not found"})
    assert api.http.request("DELETE", "/api/delete", json={"model": "tinyllama-double"}).status_code == 200
    gone = api.http.request("DELETE", "/api/delete", json={"model": "tinyllama-double"})
    assert (gone.status_code, gone.json()) == (404, {"error": "model 'tinyllama-double' not found"})
    store = api.home / ".ollama" / "models"
    assert not list((store / "blobs").iterdir())  # unreferenced layers are removed with the model
    assert not (store / "manifests" / "registry.ollama.ai").exists()


def test_native_chat_stream_and_single(api: InProcess) -> None:
    api.http.post("/api/pull", json={"model": "tinyllama-double", "stream": False})
    messages = [{"role": "system", "content": "be nice"}, {"role": "user", "content": "Name three colours please"}]
    r = api.http.post("/api/chat", json={"model": "tinyllama-double", "messages": messages})
    assert r.headers["content-type"] == "application/x-ndjson"
    lines = ndjson(r.text)
    assert all(not x["done"] for x in lines[:-1]) and lines[-1]["done"] is True
    text = "".join(x["message"]["content"] for x in lines)
    assert "Name three colours please" in text
    last = lines[-1]
    assert last["done_reason"] == "stop" and last["eval_count"] == len(lines) - 1
    for key in ("total_duration", "load_duration", "prompt_eval_count", "eval_count", "eval_duration"):
        assert isinstance(last[key], int) and last[key] > 0, key
    one = api.http.post("/api/chat", json={"model": "tinyllama-double", "messages": messages, "stream": False})
    body = one.json()
    assert body["message"] == {"role": "assistant", "content": text} and body["done"] is True
    assert body["eval_count"] == last["eval_count"] and body["eval_duration"] > 0
    short = api.http.post(
        "/api/chat",
        json={"model": "tinyllama-double", "messages": messages, "stream": False, "options": {"num_predict": 2}},
    ).json()
    assert (short["eval_count"], short["done_reason"]) == (2, "length")
    assert [m["name"] for m in api.http.get("/api/ps").json()["models"]] == ["tinyllama-double:latest"]
    missing = api.http.post("/api/chat", json={"model": "ghost", "messages": messages})
    assert (missing.status_code, missing.json()) == (404, {"error": 'model "ghost" not found, try pulling it first'})
    assert api.http.post("/api/chat", content=b"").json() == {"error": "missing request body"}


def test_an_embedding_model_embeds_and_refuses_to_generate_like_ollama(api: InProcess) -> None:
    """nomic-embed-text and its kind: /api/show says embedding only, /api/generate and /api/chat answer 400 (even
    an empty load request), /api/embed loads without input and embeds with it."""
    api.http.post("/api/pull", json={"model": "nomic-embed-double", "stream": False})
    assert api.http.post("/api/show", json={"model": "nomic-embed-double"}).json()["capabilities"] == ["embedding"]
    for path, body in [("/api/generate", {}), ("/api/generate", {"prompt": "hi"}), ("/api/chat", {"messages": []})]:
        r = api.http.post(path, json={"model": "nomic-embed-double", **body})
        kind = "chat" if path == "/api/chat" else "generate"
        assert (r.status_code, r.json()) == (400, {"error": f'"nomic-embed-double" does not support {kind}'})
    loaded = api.http.post("/api/embed", json={"model": "nomic-embed-double", "keep_alive": "10m"})
    assert loaded.json() == {"model": "nomic-embed-double", "embeddings": []}
    assert [m["name"] for m in api.http.get("/api/ps").json()["models"]] == ["nomic-embed-double:latest"]
    out = api.http.post("/api/embed", json={"model": "nomic-embed-double", "input": ["a b", "c"]}).json()
    assert len(out["embeddings"]) == 2 and len(out["embeddings"][0]) == 16
    assert abs(sum(v * v for v in out["embeddings"][0]) - 1) < 1e-3 and out["prompt_eval_count"] == 3
    missing = api.http.post("/api/embed", json={"model": "ghost", "input": "x"})
    assert (missing.status_code, missing.json()) == (404, {"error": "model 'ghost' not found"})
    bad = api.http.post("/api/embed", json={"model": "nomic-embed-double", "input": 3})
    assert (bad.status_code, bad.json()) == (400, {"error": "invalid input type"})


def test_a_thinking_model_reasons_first_unless_told_not_to(api: InProcess) -> None:
    """qwen3 and its kind think by default: a short generate spends its tokens on `thinking` and leaves `response`
    empty; think=false answers at once; think=true on a model without the capability is a 400."""
    api.http.post("/api/pull", json={"model": "qwen3-double:0.6b", "stream": False})
    assert api.http.post("/api/show", json={"model": "qwen3-double:0.6b"}).json()["capabilities"] == [
        "completion",
        "thinking",
    ]
    body = {"model": "qwen3-double:0.6b", "prompt": "Reply with OK.", "stream": False, "options": {"num_predict": 8}}
    short = api.http.post("/api/generate", json=body).json()
    assert short["response"] == "" and short["thinking"] and short["done_reason"] == "length"
    direct = api.http.post("/api/generate", json={**body, "think": False}).json()
    assert direct["response"] and "thinking" not in direct
    chat = api.http.post(
        "/api/chat",
        json={"model": "qwen3-double:0.6b", "messages": [{"role": "user", "content": "hi"}], "stream": False},
    ).json()
    assert chat["message"]["thinking"] and chat["message"]["content"].startswith("Test double reply")
    api.http.post("/api/pull", json={"model": "smollm-double:1b", "stream": False})
    refused = api.http.post("/api/generate", json={"model": "smollm-double:1b", "prompt": "hi", "think": True})
    assert (refused.status_code, refused.json()) == (400, {"error": '"smollm-double:1b" does not support thinking'})


def test_openai_chat_completions(api: InProcess) -> None:
    api.http.post("/api/pull", json={"model": "smollm-double:1b", "stream": False})
    messages = [{"role": "user", "content": "hello from the client"}]
    r = api.http.post("/v1/chat/completions", json={"model": "smollm-double:1b", "messages": messages})
    body = r.json()
    assert body["object"] == "chat.completion" and body["model"] == "smollm-double:1b"
    choice = body["choices"][0]
    assert choice["finish_reason"] == "stop" and "hello from the client" in choice["message"]["content"]
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    streamed = api.http.post(
        "/v1/chat/completions",
        json={
            "model": "smollm-double:1b",
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    )
    assert streamed.headers["content-type"].startswith("text/event-stream")
    events = [line[len("data: ") :] for line in streamed.text.split("\n\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"]["content"] for c in chunks if c["choices"])
    assert text == choice["message"]["content"]
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == usage
    missing = api.http.post("/v1/chat/completions", json={"model": "ghost", "messages": messages})
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"


def raw_request(url: str, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    """Send the path exactly as given (httpx would normalise `..`)."""
    import http.client

    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request(method, path, body=body)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_blob_upload_verifies_digests(api: InProcess) -> None:
    data = b"GGUF" + os.urandom(2048)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    assert api.http.head(f"/api/blobs/{digest}").status_code == 404
    assert api.http.post(f"/api/blobs/{digest}", content=data).status_code == 201
    assert api.http.head(f"/api/blobs/{digest}").status_code == 200
    assert api.http.post(f"/api/blobs/{digest}", content=data).status_code == 200  # already there
    other = "sha256:" + "0" * 64
    r = api.http.post(f"/api/blobs/{other}", content=data)
    assert r.status_code == 400 and r.json()["error"] == f'digest mismatch, expected "{other}", got "{digest}"'
    blobs = api.home / ".ollama" / "models" / "blobs"
    assert [p.name for p in blobs.iterdir()] == [digest.replace(":", "-")]


def test_malformed_digests_are_rejected(api: InProcess) -> None:
    digests = ["sha256:../../../../etc/passwd", "sha256:" + "a" * 63, "md5:" + "a" * 32, "sha256:" + "g" * 64]
    for digest in digests:
        for method in ("POST", "HEAD"):
            status, body = raw_request(api.url, method, f"/api/blobs/{digest}", b"x" if method == "POST" else b"")
            assert status == 400, (method, digest)
            if method == "POST":
                assert json.loads(body) == {"error": "invalid digest format"}
    assert not list((api.home / ".ollama" / "models" / "blobs").iterdir())


def test_cli_pull_list_rm(server: Double) -> None:
    pulled = server.cli("pull", "smollm-double:1b")
    assert pulled.returncode == 0 and pulled.stdout.splitlines()[-1] == "success"
    assert "smollm-double:1b" in server.cli("list").stdout
    missing = server.cli("pull", "missing-model")
    assert missing.returncode == 1 and "Error: pull model manifest: file does not exist" in missing.stderr
    assert server.cli("rm", "smollm-double:1b").returncode == 0
    assert "smollm-double" not in server.cli("ls").stdout


def test_create_from_gguf_with_the_cli_then_chat_and_remove(server: Double, tmp_path: Path) -> None:
    gguf = tmp_path / "model dir" / "tiny.gguf"
    gguf.parent.mkdir()
    gguf.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + os.urandom(1024))
    (gguf.parent / "Modelfile").write_text(
        'FROM ./tiny.gguf\nTEMPLATE """{{ .Prompt }}"""\nSYSTEM You are a test.\nPARAMETER temperature 0.1\n'
    )
    proc = server.cli("create", "cortex-local", "-f", str(gguf.parent / "Modelfile"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "success"
    digest = "sha256-" + hashlib.sha256(gguf.read_bytes()).hexdigest()
    assert (server.home / ".ollama" / "models" / "blobs" / digest).is_file()
    show = server.http.post("/api/show", json={"model": "cortex-local"}).json()
    assert show["system"] == "You are a test." and '"temperature"' not in show["parameters"]
    assert "temperature" in show["parameters"]
    chat = server.http.post(
        "/api/chat", json={"model": "cortex-local", "stream": False, "messages": [{"role": "user", "content": "hi"}]}
    )
    assert chat.status_code == 200
    listing = server.cli("list")
    assert listing.stdout.splitlines()[0].split() == ["NAME", "ID", "SIZE", "MODIFIED"]
    assert "cortex-local:latest" in listing.stdout
    assert server.cli("rm", "cortex-local").stdout == "deleted 'cortex-local'\n"
    again = server.cli("rm", "cortex-local")
    assert again.returncode == 1 and "Error: model 'cortex-local' not found" in again.stderr


def test_create_api_errors_change_nothing(api: InProcess) -> None:
    r = api.http.post("/api/create", json={"model": "x", "stream": False})
    assert (r.status_code, r.json()) == (400, {"error": "neither 'from' or 'files' was specified"})
    missing = "sha256:" + "1" * 64
    r = api.http.post("/api/create", json={"model": "x", "files": {"m.gguf": missing}, "stream": False})
    assert r.status_code == 400
    not_gguf = b"not a gguf file"
    digest = "sha256:" + hashlib.sha256(not_gguf).hexdigest()
    api.http.post(f"/api/blobs/{digest}", content=not_gguf)
    r = api.http.post("/api/create", json={"model": "x", "files": {"m.gguf": digest}, "stream": False})
    assert r.status_code == 400
    r = api.http.post("/api/create", json={"model": "y", "from": "ghost", "stream": False})
    assert r.status_code == 404
    assert api.http.get("/api/tags").json() == {"models": []}


def test_create_from_existing_model_streams_status(api: InProcess) -> None:
    api.http.post("/api/pull", json={"model": "tinyllama-double", "stream": False})
    r = api.http.post("/api/create", json={"model": "acme/derived:v1", "from": "tinyllama-double", "system": "hi"})
    statuses = [e["status"] for e in ndjson(r.text)]
    assert statuses[0] == "gathering model components" and statuses[-2:] == ["writing manifest", "success"]
    assert any(s.startswith("using existing layer sha256:") for s in statuses)
    assert any(s.startswith("creating new layer sha256:") for s in statuses)
    names = {m["name"] for m in api.http.get("/api/tags").json()["models"]}
    assert names == {"tinyllama-double:latest", "acme/derived:v1"}


def test_startup_prunes_unreferenced_blobs_unless_noprune(ollama_bin: Path, tmp_path: Path) -> None:
    blobs = tmp_path / "models" / "blobs"
    blobs.mkdir(parents=True)
    stray = blobs / ("sha256-" + "ab" * 32)
    legacy = blobs / ("sha256:" + "cd" * 32)
    stray.write_bytes(b"x")
    legacy.write_bytes(b"y")
    d = Double(ollama_bin, tmp_path / "home", {"OLLAMA_MODELS": str(tmp_path / "models"), "OLLAMA_NOPRUNE": "1"})
    assert d.stop() == 0
    assert stray.exists() and not legacy.exists() and (blobs / ("sha256-" + "cd" * 32)).exists()  # fixBlobs
    d = Double(ollama_bin, tmp_path / "home", {"OLLAMA_MODELS": str(tmp_path / "models")})
    assert d.stop() == 0
    assert not list(blobs.iterdir())


def test_serve_fails_on_read_only_home(ollama_bin: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "OLLAMA_HOST": f"127.0.0.1:{free_port()}"}
    if os.geteuid() == 0:  # root ignores modes: make HOME a read-only bind mount, as ProtectHome=read-only does
        script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" "$1" && shift && exec "$@"'
        cmd = ["unshare", "-m", "sh", "-c", script, "sh", str(home), str(ollama_bin), "serve"]
    else:
        home.chmod(0o555)
        cmd = [str(ollama_bin), "serve"]
    proc = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=20)
    assert proc.returncode == 1
    expected = "read-only file system" if os.geteuid() == 0 else "permission denied"
    assert f"Error: could not create directory mkdir {home}/.ollama: {expected}" in proc.stderr
    assert not (home / ".ollama").exists()


def test_serve_fails_when_models_dir_cannot_be_created(ollama_bin: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path / "home"),
        "OLLAMA_HOST": f"127.0.0.1:{free_port()}",
        "OLLAMA_MODELS": str(blocker / "models"),
    }
    proc = subprocess.run([str(ollama_bin), "serve"], check=False, env=env, capture_output=True, text=True, timeout=20)
    assert proc.returncode == 1 and "Error: mkdir" in proc.stderr and "not a directory" in proc.stderr


def test_serve_stops_cleanly_on_sigterm(server: Double) -> None:
    assert server.stop() == 0
    assert f"Listening on 127.0.0.1:{server.port} (version {NEW})" in (
        server.proc.stderr.read() if server.proc.stderr else ""
    )


def serve_briefly(binary: Path, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`ollama serve` that must exit by itself (a start-up failure); a server that starts is killed after 5 s."""
    environ = {"PATH": os.environ["PATH"], "HOME": str(home), "OLLAMA_HOST": f"127.0.0.1:{free_port()}", **env}
    try:
        return subprocess.run(
            [str(binary), "serve"], check=False, env=environ, capture_output=True, text=True, timeout=5
        )
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"serve kept running: {e.stderr!r}") from None


@pytest.mark.parametrize("damage", ["no lib/ollama", "another release's lib/ollama"])
def test_serve_refuses_to_start_without_its_own_libraries(releases: Path, tmp_path: Path, damage: str) -> None:
    binary = extract(releases / NEW / "ollama-linux-amd64.tar.zst", tmp_path / "usr")
    shutil.rmtree(tmp_path / "usr" / "lib" / "ollama")
    if damage != "no lib/ollama":
        extract(releases / OLD / "ollama-linux-amd64.tgz", tmp_path / "old")
        shutil.copytree(tmp_path / "old" / "lib" / "ollama", tmp_path / "usr" / "lib" / "ollama", symlinks=True)

    proc = serve_briefly(binary, tmp_path / "home")

    assert proc.returncode == 1
    assert "Error: unable to load the backends" in proc.stderr
    assert ("belongs to another release" if damage != "no lib/ollama" else "is missing") in proc.stderr


def test_serve_finds_its_libraries_through_symlinks_and_lists_addon_backends(releases: Path, tmp_path: Path) -> None:
    """Like ml/path.go: the executable's symlinks are resolved before looking for ../lib/ollama, so a bin/ollama
    that links into a versioned release directory finds that release's libraries (and add-ons unpacked there)."""
    release = tmp_path / "releases" / "v1"
    extract(releases / NEW / "ollama-linux-amd64.tar.zst", release)
    with read_archive(releases / NEW / "ollama-linux-amd64-rocm.tar.zst") as tar:
        tar.extractall(release, filter="tar")
    (tmp_path / "releases" / "current").symlink_to("v1")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "ollama").symlink_to("../releases/current/bin/ollama")
    server = Double(tmp_path / "bin" / "ollama", tmp_path / "home", {})
    try:
        assert server.http.get("/api/version").json() == {"version": NEW}
    finally:
        assert server.stop() == 0
    log = server.proc.stderr.read() if server.proc.stderr else ""
    assert "backends=cuda_v13,rocm_v7" in log


def test_serve_listens_before_it_answers_while_it_discovers_gpus(ollama_bin: Path, tmp_path: Path) -> None:
    """The port accepts connections before the API answers: a readiness check must wait for an answer."""
    port = free_port()
    environ = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "OLLAMA_HOST": f"127.0.0.1:{port}"}
    proc = subprocess.Popen(
        [str(ollama_bin), "serve"], env={**environ, "OLLAMA_DOUBLE_DISCOVERY_MS": "1500"}, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=1)
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.02)
        connected = time.monotonic()
        with sock, httpx.Client(timeout=10) as http:
            answer = http.get(f"http://127.0.0.1:{port}/api/version")
            waited = time.monotonic() - connected
        assert answer.status_code == 200
        assert waited > 0.5, waited  # the answer came only after discovery
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


@pytest.mark.parametrize(
    ("origins", "panic"),
    [
        ("app://cortex", "bad origin: origins must contain '*' or include http://,https://,chrome-extension://"),
        ("null", "bad origin"),
        ("example.com", "bad origin"),
        ("https://app.example.com,", "bad origin"),  # the empty entry after the comma
        ("https://*.*.example.com", "only one * is allowed"),
    ],
)
def test_serve_exits_on_origins_that_make_the_real_server_panic(
    ollama_bin: Path, tmp_path: Path, origins: str, panic: str
) -> None:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "OLLAMA_HOST": f"127.0.0.1:{free_port()}",
        "OLLAMA_ORIGINS": origins,
    }
    proc = subprocess.run([str(ollama_bin), "serve"], env=env, capture_output=True, text=True, timeout=10, check=False)
    assert proc.returncode == 2
    assert f"panic: {panic}" in proc.stderr
    assert "Listening on" not in proc.stderr


@pytest.mark.parametrize(
    "origins", ["https://app.example.com,chrome-extension://abcdef", "https://*.example.com", "*.com", "https://*.com"]
)
def test_serve_starts_with_origins_the_library_accepts(ollama_bin: Path, tmp_path: Path, origins: str) -> None:
    # '*.com' and 'https://*.com' start (the library takes them); the role refuses them as over-broad.
    d = Double(ollama_bin, tmp_path / "home", {"OLLAMA_ORIGINS": origins})
    assert d.http.get("/api/version").status_code == 200
    assert d.stop() == 0


# --- Ollama's DNS-rebinding guard (allowedHostsMiddleware): the Host header a loopback-bound server accepts ------


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("127.0.0.1:11434", 200),
        ("localhost", 200),
        ("[::1]:11434", 200),
        ("10.1.2.3:11434", 200),  # private
        ("0.0.0.0", 200),  # unspecified
        ("gpu-01.internal", 200),
        ("ollama.local:11434", 200),
        ("llm.example.com", 403),  # what a reverse proxy passes on unless told otherwise
        ("8.8.8.8", 403),  # a public address that is not this host's
    ],
)
def test_a_loopback_bound_double_checks_the_host_header_like_ollama(
    tmp_path: Path, registry: Path, host: str, status: int
) -> None:
    server = InProcessDouble(tmp_path / "models", registry)
    try:
        response = server.http.get("/api/version", headers={"Host": host})
    finally:
        server.stop()
    assert response.status_code == status
    if status == 403:
        assert response.content == b""


def test_the_host_check_is_off_for_a_server_bound_beyond_loopback() -> None:
    assert double.host_allowed("0.0.0.0", "llm.example.com")
    assert not double.host_allowed("127.0.0.1", "llm.example.com")
    assert double.host_allowed("127.0.0.1", double.socket.gethostname())
