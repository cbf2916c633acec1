#!/usr/bin/python
"""Ansible module of role ollama: move the model store and the identity key of an Ollama set up outside the role
(install.sh: ~ollama/.ollama under /usr/share/ollama) into the role's directories.

Blobs before manifests (the server's start-up prune never sees a manifest whose blobs are missing). Within one
filesystem each file is renamed. Across filesystems it is copied beside its destination, flushed to disk, renamed
into place, and only then is the source removed; a run cut short anywhere is finished by the next one (a
destination that already holds the same content only has its source removed). A model already in the role's store
under the same name with other content is kept as it is; the earlier copy stays where it was and is reported.
Everything created in the store (and under the home's .ollama) belongs to the service user afterwards, wherever
the store is (ollama_data_dir outside ollama_home too).
"""

from __future__ import annotations

import errno
import os
import pwd
import shutil
from pathlib import Path
from typing import Any

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: ollama_adopt_store
short_description: Move an install.sh Ollama's models and key into role ollama's directories (role ollama, internal)
options:
  old_home:
    description: The service user's home before the take-over (install.sh's /usr/share/ollama).
    type: path
    required: true
  home: {description: The role's ollama_home., type: path, required: true}
  store: {description: The role's ollama_data_dir., type: path, required: true}
  user: {description: The service user., type: str, required: true}
"""


class AdoptError(Exception):
    pass


def same_content(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    with a.open("rb") as fa, b.open("rb") as fb:
        while True:
            ca, cb = fa.read(1 << 20), fb.read(1 << 20)
            if ca != cb:
                return False
            if not ca:
                return True


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def plan(old_home: Path, home: Path, store: Path) -> dict[str, Any]:
    """What moves (src, dst), what is only a leftover of an interrupted move (src whose dst holds the same bytes),
    and which manifests stay where they are because the role's store has another model of that name."""
    old_store = old_home / ".ollama" / "models"
    moves: list[tuple[Path, Path]] = []
    done: list[Path] = []
    kept: list[str] = []
    for kind in ("blobs", "manifests"):
        for dirpath, _, files in sorted(os.walk(old_store / kind)):
            for name in sorted(files):
                src = Path(dirpath, name)
                if name.endswith(".cortex-part"):
                    continue
                dst = store / src.relative_to(old_store)
                if not dst.exists():
                    moves.append((src, dst))
                elif same_content(src, dst):
                    done.append(src)
                elif kind == "manifests":
                    kept.append(str(src.relative_to(old_store / kind)))
    for name in ("id_ed25519", "id_ed25519.pub"):
        src, dst = old_home / ".ollama" / name, home / ".ollama" / name
        if src.is_file() and not dst.exists():
            moves.append((src, dst))
    return {"from": old_store, "moves": moves, "done": done, "kept": kept}


def existing(path: Path) -> Path:
    while not path.exists():
        path = path.parent
    return path


def check_space(moves: list[tuple[Path, Path]], store: Path) -> int:
    size = sum(src.stat().st_size for src, _ in moves)
    probe = existing(store)
    # Renames within the store's filesystem take no room; copies from another one do.
    copied = sum(src.stat().st_size for src, _ in moves if src.stat().st_dev != probe.stat().st_dev)
    st = os.statvfs(probe)
    if copied > st.f_bavail * st.f_frsize:
        raise AdoptError(
            f"the models ({copied} bytes to copy) do not fit into {store} on another filesystem "
            f"({st.f_bavail * st.f_frsize} bytes free); nothing was moved. Free space, or set ollama_data_dir to "
            "where they are"
        )
    return size


def move(src: Path, dst: Path) -> None:
    """src to dst: a rename, or across filesystems a copy that is on disk before its rename and the source's removal."""
    try:
        os.rename(src, dst)
        return
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
    part = dst.with_name(dst.name + ".cortex-part")
    shutil.copy2(src, part)
    fsync_path(part)
    os.rename(part, dst)
    fsync_path(dst.parent)
    src.unlink()


def own(path: Path, roots: list[Path], uid: int, gid: int) -> None:
    """path and its parents up to (and including) the first of roots that holds it: the service user's."""
    root = next(r for r in roots if path == r or r in path.parents)
    while True:
        os.chown(path, uid, gid)
        if path == root:
            return
        path = path.parent


def adopt(old_home: Path, home: Path, store: Path, user: str, check: bool) -> dict[str, Any]:
    p = plan(old_home, home, store)
    size = check_space(p["moves"], store)
    entry = pwd.getpwnam(user)
    roots = [store, home / ".ollama"]
    # Directories of the store not the service user's (an earlier take-over left them root's where the store is
    # outside the home): repaired too.
    foreign = [
        Path(dirpath)
        for root in roots
        if root.is_dir()
        for dirpath, _, _ in os.walk(root)
        if os.stat(dirpath).st_uid != entry.pw_uid or os.stat(dirpath).st_gid != entry.pw_gid
    ]
    if not check:
        for src, dst in p["moves"]:
            dst.parent.mkdir(parents=True, exist_ok=True)
            move(src, dst)
            own(dst, roots, entry.pw_uid, entry.pw_gid)
        for src in p["done"]:  # a move cut short after its copy: only the source is left to remove
            src.unlink()
        for directory in foreign:
            os.chown(directory, entry.pw_uid, entry.pw_gid)
    manifests = p["from"] / "manifests"
    return {
        "changed": bool(p["moves"] or p["done"] or foreign),
        "files": len(p["moves"]),
        "bytes": size,
        "models": len([src for src, _ in p["moves"] if manifests in src.parents]),
        "finished": len(p["done"]),
        "owners_repaired": len(foreign),
        "kept_in_place": p["kept"],
        "from": str(p["from"]),
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "old_home": {"type": "path", "required": True},
            "home": {"type": "path", "required": True},
            "store": {"type": "path", "required": True},
            "user": {"type": "str", "required": True},
        },
        supports_check_mode=True,
    )
    p = module.params
    try:
        result = adopt(Path(p["old_home"]), Path(p["home"]), Path(p["store"]), p["user"], module.check_mode)
    except (AdoptError, OSError) as e:
        module.fail_json(msg=str(e))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
