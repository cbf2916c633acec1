"""Role ollama's take-over of an install.sh store (library/ollama_adopt_store.py): blobs before manifests, a move
across filesystems flushed before its source goes, a run cut short finished by the next, and a clashing model kept
where it was. The scenario ollama_adopt runs it for real (store inside and outside the service user's home)."""

from __future__ import annotations

import json
import os
import pwd
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.support.filters import role_module

M = role_module("ollama", "ollama_adopt_store")
USER = pwd.getpwuid(os.getuid()).pw_name


def install_sh_store(old_home: Path) -> dict[str, bytes]:
    """Two models in Ollama's layout under old_home/.ollama, and its identity key; the files by relative path."""
    files = {
        "models/blobs/sha256-" + "a" * 64: b"GGUF model a" * 100,
        "models/blobs/sha256-" + "b" * 64: b"{config}",
        "models/manifests/registry.ollama.ai/library/first/latest": json.dumps({"layers": ["a"]}).encode(),
        "id_ed25519": b"KEY",
    }
    for rel, data in files.items():
        path = old_home / ".ollama" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def adopt(tmp_path: Path, old_home: Path, check: bool = False) -> dict[str, Any]:
    result: dict[str, Any] = M.adopt(old_home, tmp_path / "home", tmp_path / "srv" / "models", USER, check)
    return result


def test_check_mode_plans_and_moves_nothing_then_the_move_keeps_every_byte(tmp_path: Path) -> None:
    old_home = tmp_path / "usr-share-ollama"
    files = install_sh_store(old_home)
    planned = adopt(tmp_path, old_home, check=True)
    assert planned["changed"] and (planned["files"], planned["models"]) == (4, 1)
    assert all((old_home / ".ollama" / rel).is_file() for rel in files)
    done = adopt(tmp_path, old_home)
    store = tmp_path / "srv" / "models"
    for rel, data in files.items():
        moved = tmp_path / "home" / ".ollama" / rel if rel == "id_ed25519" else store / rel.removeprefix("models/")
        assert moved.read_bytes() == data, rel
    assert done["files"] == 4 and not any((old_home / ".ollama" / "models").rglob("sha256-*"))
    assert not adopt(tmp_path, old_home)["changed"]


def test_a_move_cut_short_after_its_copy_is_finished_by_the_next_run(tmp_path: Path) -> None:
    """Across filesystems the copy lands before the source is removed; if the run stops between the two, the
    next one finds the destination whole and removes only the source."""
    old_home = tmp_path / "usr-share-ollama"
    install_sh_store(old_home)
    blob = "sha256-" + "a" * 64
    store_blob = tmp_path / "srv" / "models" / "blobs" / blob
    store_blob.parent.mkdir(parents=True)
    shutil.copy(old_home / ".ollama" / "models" / "blobs" / blob, store_blob)
    result = adopt(tmp_path, old_home)
    assert result["finished"] == 1 and result["files"] == 3
    assert not (old_home / ".ollama" / "models" / "blobs" / blob).exists()


def test_a_clashing_manifest_stays_where_it_was_and_is_reported(tmp_path: Path) -> None:
    old_home = tmp_path / "usr-share-ollama"
    install_sh_store(old_home)
    mine = tmp_path / "srv" / "models" / "manifests" / "registry.ollama.ai" / "library" / "first" / "latest"
    mine.parent.mkdir(parents=True)
    mine.write_text("{}")
    result = adopt(tmp_path, old_home)
    assert result["kept_in_place"] == ["registry.ollama.ai/library/first/latest"]
    assert mine.read_text() == "{}"


def test_across_filesystems_the_copy_is_on_disk_before_the_source_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src_dir = Path("/dev/shm") / f"adopt-test-{os.getpid()}"  # a tmpfs: another filesystem than tmp_path's
    src_dir.mkdir()
    try:
        src = src_dir / "blob"
        src.write_bytes(b"x" * 4096)
        assert src.stat().st_dev != tmp_path.stat().st_dev, "the test needs two filesystems"
        events: list[tuple[str, str]] = []
        real = {name: getattr(M.os, name) for name in ("fsync", "rename", "unlink")}
        monkeypatch.setattr(M.os, "fsync", lambda fd: (events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))),
                                                       real["fsync"](fd))[1])  # fmt: skip
        monkeypatch.setattr(M.os, "rename", lambda a, b: (events.append(("rename", str(b))), real["rename"](a, b))[1])
        dst = tmp_path / "blobs" / "blob"
        dst.parent.mkdir()
        M.move(src, dst)
        assert dst.read_bytes() == b"x" * 4096 and not src.exists()
        kinds = [kind for kind, _ in events]
        # os.rename was tried first (EXDEV), then: the copy flushed, renamed into place, its directory flushed.
        assert kinds[-3:] == ["fsync", "rename", "fsync"], events
        assert events[-3][1].endswith(".cortex-part") and events[-1][1] == str(dst.parent)
    finally:
        shutil.rmtree(src_dir, ignore_errors=True)
