"""Role cortex_env's controller-side builder of the client's wheelhouse (files/client_wheelhouse.py): what makes it
build again, and that the wheel it builds is the same bytes from the same sources (so hosts get nothing new)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.archives import REPO
from tests.support.filters import load_file

W = load_file(REPO / "roles" / "cortex_env" / "files" / "client_wheelhouse.py", "client_wheelhouse")


def checkout(tmp_path: Path) -> Path:
    root = tmp_path / "checkout"
    shutil.copytree(REPO / "cortex_client", root / "cortex_client", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    shutil.copy(REPO / "README.md", root / "README.md")
    return root


def test_the_source_digest_follows_the_client_s_sources_only(tmp_path: Path) -> None:
    root = checkout(tmp_path)
    digest = W.source_digest(root)
    (root / "cortex_client" / "__pycache__").mkdir(exist_ok=True)
    (root / "cortex_client" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    (root / "docs.md").write_text("not the client")
    assert W.source_digest(root) == digest
    (root / "cortex_client" / "_defaults.py").write_text("# changed\n", encoding="utf-8")
    assert W.source_digest(root) != digest


def test_the_same_sources_give_the_same_wheel_and_no_rebuild(tmp_path: Path) -> None:
    root = checkout(tmp_path)
    script = REPO / "roles" / "cortex_env" / "files" / "client_wheelhouse.py"

    def build(dest: Path) -> dict[str, object]:
        run = subprocess.run([sys.executable, str(script), str(root), str(dest)], capture_output=True, text=True,
                             check=True, timeout=600)  # fmt: skip
        result: dict[str, object] = json.loads(run.stdout)
        return result

    first = build(tmp_path / "a")
    assert first["changed"] and first["wheel"] == "cortexlinux_router-0.1.0-py3-none-any.whl"
    wheel = tmp_path / "a" / str(first["wheel"])
    assert first["sha256"] == hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert build(tmp_path / "a") == {**first, "changed": False}
    (root / "cortex_client" / "__init__.py").touch()  # a new mtime, the same bytes
    assert build(tmp_path / "b")["sha256"] == first["sha256"]
