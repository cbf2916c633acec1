"""Upgrade and downgrade across the .tgz and .tar.zst layouts: models survive, one restart per change.

Converge installed 0.13.5 (.tgz, floor lowered in molecule.yml) from a controller path. This walks to 0.34.3
(.tar.zst) downloaded from an internal mirror (an HTTP server on the controller's loopback), 0.34.3 again from
the controller path (same archive: a no-op) and 0.13.4 (downgrade to .tgz). Each step compares against the
version found running, so the verifier can be re-run on the same instance.
"""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.support.archives import RELEASES, archive_file_hashes, archive_members, archive_path, extract
from tests.support.instances import Instance, apply_role, http_mirror, instance_names

(HOST,) = (Instance(name) for name in instance_names())
MODEL_DIR = "/var/lib/ollama/models"
MODEL = "survivor:latest"
# The role records the installed archive's sha256 in this file inside lib/ollama (roles/ollama/vars/main.yml).
ROLE_MARKER = "lib/ollama/.cortex-installed-sha256"

# A model in Ollama's real on-disk layout: a GGUF-looking blob, a config blob and a v2 manifest naming both.
PLACE_MODEL = r"""
import hashlib, json, pathlib
root = pathlib.Path("/var/lib/ollama/models")
def blob(data, media_type):
    digest = hashlib.sha256(data).hexdigest()
    path = root / "blobs" / f"sha256-{digest}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}
model = blob(b"GGUF\x03\x00\x00\x00" + bytes(range(256)) * 512, "application/vnd.ollama.image.model")
config = blob(json.dumps({"model_format": "gguf", "model_family": "gemma3", "model_families": ["gemma3"],
                          "model_type": "268.10M", "file_type": "Q4_K_M"}).encode(),
              "application/vnd.docker.container.image.v1+json")
manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": config, "layers": [model]}
path = root / "manifests/registry.ollama.ai/library/survivor/latest"
path.parent.mkdir(parents=True, exist_ok=True)
path.write_text(json.dumps(manifest))
"""


def lib_tree() -> set[str]:
    out = HOST.sh("cd /usr/local && find lib/ollama -mindepth 1")
    return set(out.splitlines()) - {ROLE_MARKER}


def shipped_lib(version: str) -> set[str]:
    return {m for m in archive_members(archive_path(version)) if m.startswith("lib/ollama/")}


def installed_files() -> dict[str, str]:
    hashes = HOST.file_hashes("/usr/local/lib/ollama /usr/local/bin/ollama")
    hashes.pop(f"/usr/local/{ROLE_MARKER}", None)
    return hashes


def model_names() -> set[str]:
    return {m["name"] for m in HOST.api("/api/tags")["models"]}


def test_archives_differ_in_lib_ollama() -> None:
    # Otherwise "nothing of the old lib/ollama remains" below would prove nothing.
    assert shipped_lib("0.13.5") - shipped_lib("0.34.3")
    assert shipped_lib("0.34.3") - shipped_lib("0.13.5")


def test_upgrade_and_downgrade_keep_models_and_restart_once_per_change(tmp_path: Path) -> None:
    HOST.sh(f"python3 - && chown -R ollama:ollama {MODEL_DIR}", stdin=PLACE_MODEL)
    models = HOST.file_hashes(MODEL_DIR)
    assert len(models) == 3
    assert MODEL in model_names()
    version = HOST.api("/api/version")["version"]

    with http_mirror(RELEASES) as mirror:
        for target, source in [("0.34.3", "mirror"), ("0.34.3", "path"), ("0.13.4", "path")]:
            step_vars: dict[str, Any] = {"ollama_version": target}
            remote = f"/{target}/{archive_path(target).name}"
            if source == "mirror":
                # An empty controller cache, so the archive really comes over HTTP.
                step_vars["ollama_archive_src"] = mirror.url + remote
                step_vars["ollama_controller_cache_dir"] = str(tmp_path / "controller-cache")
            changes = target != version
            invocation, starts = HOST.unit("InvocationID"), HOST.starts()

            run = apply_role(HOST.name, **step_vars)

            assert run.rc == 0, run
            assert (f"GET {remote}" in mirror.requests) == (source == "mirror" and changes), mirror.requests
            mirror.requests.clear()
            assert (run.stats["changed"] > 0) == changes, f"{version} -> {target}: {run}"
            assert HOST.starts() == starts + (1 if changes else 0), f"{version} -> {target}: starts"
            assert (HOST.unit("InvocationID") != invocation) == changes, f"{version} -> {target}: InvocationID"
            assert HOST.unit("ActiveState") == "active"
            assert HOST.api("/api/version")["version"] == target
            assert target in HOST.sh("/usr/local/bin/ollama --version")
            assert lib_tree() == shipped_lib(target), f"{version} -> {target}: lib/ollama is not exactly {target}'s"
            assert installed_files() == archive_file_hashes(archive_path(target), "/usr/local")
            assert HOST.file_hashes(MODEL_DIR) == models, f"{version} -> {target}: model store changed"
            assert MODEL in model_names()
            version = target


@pytest.mark.parametrize("marker", [True, False], ids=["files-and-marker", "files-only"])
def test_a_restart_lost_to_a_failed_run_is_repaired(marker: bool, tmp_path: Path) -> None:
    """A run unpacked a new version and failed before its restart: the new files are in place (with the marker, as
    the role wrote it before the restart until now, or without it, as it does now) and the old server still runs.
    The next run restarts it once and ends on the pinned version, instead of failing on the version check."""
    running = HOST.api("/api/version")["version"]
    target = "0.34.3" if running != "0.34.3" else "0.13.4"
    extract(archive_path(target), tmp_path / "usr")
    with tarfile.open(tmp_path / "release.tar", mode="w") as tar:
        tar.add(tmp_path / "usr", arcname=".")
    digest = hashlib.sha256(archive_path(target).read_bytes()).hexdigest()
    HOST.host.ansible(
        "ansible.builtin.copy", f"src={tmp_path / 'release.tar'} dest=/tmp/release.tar", become=True, check=False
    )
    HOST.sh(
        "rm -rf /usr/local/bin/ollama /usr/local/lib/ollama && tar -x --no-same-owner -C /usr/local -f /tmp/release.tar"
        + f" && rm /tmp/release.tar{f' && echo {digest} > /usr/local/{ROLE_MARKER}' if marker else ''}"
    )
    assert HOST.api("/api/version")["version"] == running  # the old process still serves
    starts = HOST.starts()

    run = apply_role(HOST.name, ollama_version=target)

    assert run.rc == 0, run
    assert HOST.api("/api/version")["version"] == target
    assert HOST.starts() == starts + 1
    assert HOST.sh(f"cat /usr/local/{ROLE_MARKER}").strip() == digest
