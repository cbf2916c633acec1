"""Role cortex_env's controller-side builder of the client's wheelhouse (files/client_wheelhouse.py): what makes it
build again, and that the wheel it builds is the same bytes from the same sources (so hosts get nothing new)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
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
    # For every host's Python, whatever the controller runs: anyio needs exceptiongroup below 3.11 (Ubuntu 22.04).
    assert list((tmp_path / "a").glob("exceptiongroup-*.whl")), sorted(p.name for p in (tmp_path / "a").iterdir())
    (root / "cortex_client" / "__init__.py").touch()  # a new mtime, the same bytes
    assert build(tmp_path / "b")["sha256"] == first["sha256"]


def fake_wheel(directory: Path, name: str, requires: list[str]) -> None:
    dist = f"{name}-1.0.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n" + "".join(
        f"Requires-Dist: {r}\n" for r in requires
    )
    with zipfile.ZipFile(directory / f"{name}-1.0-py3-none-any.whl", "w") as wheel:
        wheel.writestr(f"{dist}/METADATA", metadata)


def test_requirements_are_read_for_the_host_s_python_not_the_controller_s(tmp_path: Path) -> None:
    fake_wheel(
        tmp_path, "anyio", ['exceptiongroup>=1.0.2; python_version < "3.11"', "idna>=2.8", 'trio; extra == "trio"']
    )
    fake_wheel(tmp_path, "idna", [])
    assert W.unmet(tmp_path, "3.10") == ["exceptiongroup>=1.0.2"]
    assert W.unmet(tmp_path, "3.13") == []
