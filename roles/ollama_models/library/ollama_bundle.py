#!/usr/bin/python
"""Ansible module of role ollama_models: export models from an Ollama store into a model bundle.

A bundle is Ollama's own store layout (`manifests/<host>/<ns>/<model>/<tag>`, `blobs/sha256-<hex>`) plus
`index.json`: each model's manifest path and every blob's digest and size. Every blob is hashed while it is
copied, so a bundle never carries a blob that does not match its name. Blobs already in the bundle with the
right size are kept (a re-run copies nothing); blobs no exported model uses are removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: ollama_bundle
short_description: Export models from an Ollama store into a model bundle (role ollama_models, internal)
options:
  store: {description: The Ollama store to read (OLLAMA_MODELS)., type: path, required: true}
  models: {description: Normalised names (host/namespace/model:tag)., type: list, elements: str, required: true}
  dest: {description: The bundle's models directory., type: path, required: true}
"""

CHUNK = 1 << 20
INDEX_FORMAT = 1


class ExportError(Exception):
    pass


def manifest_rel(name: str) -> Path:
    path, _, tag = name.rpartition(":")
    return Path("manifests", *path.split("/"), tag)


def blob_name(digest: str) -> str:
    algo, _, hexdigest = digest.replace("-", ":", 1).partition(":")
    if algo != "sha256" or len(hexdigest) != 64:
        raise ExportError(f"invalid blob digest {digest!r}")
    return f"sha256-{hexdigest}"


def copy_verified(src: Path, dest: Path, digest: str) -> int:
    tmp = dest.with_name(f".{dest.name}.partial")
    h = hashlib.sha256()
    size = 0
    try:
        with src.open("rb") as fin, tmp.open("wb") as fout:
            while chunk := fin.read(CHUNK):
                h.update(chunk)
                fout.write(chunk)
                size += len(chunk)
        if "sha256:" + h.hexdigest() != digest.replace("-", ":", 1):
            raise ExportError(f"blob {src} does not match its digest (sha256 {h.hexdigest()}): the store is damaged")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return size


def export(store: Path, models: list[str], dest: Path) -> dict[str, Any]:
    started = time.monotonic()
    index: dict[str, Any] = {"format": INDEX_FORMAT, "models": {}}
    wanted: dict[str, int] = {}
    manifests: dict[Path, bytes] = {}
    for name in models:
        rel = manifest_rel(name)
        try:
            raw = (store / rel).read_bytes()
        except FileNotFoundError:
            raise ExportError(f"{name} is not in the store {store}: pull it first") from None
        manifest = json.loads(raw)
        blobs = []
        for layer in [manifest.get("config"), *manifest.get("layers", [])]:
            digest, size = layer["digest"].replace("-", ":", 1), int(layer["size"])
            blobs.append({"digest": digest, "size": size})
            wanted[digest] = size
        index["models"][name] = {"manifest": str(rel), "size": sum(b["size"] for b in blobs), "blobs": blobs}
        manifests[rel] = raw

    (dest / "blobs").mkdir(parents=True, exist_ok=True)
    copied = 0
    for digest, size in wanted.items():
        target = dest / "blobs" / blob_name(digest)
        if target.is_file() and target.stat().st_size == size:
            continue
        source = store / "blobs" / blob_name(digest)
        if not source.is_file():
            raise ExportError(f"blob {digest} is missing from the store {store}: pull the model again")
        copied += copy_verified(source, target, digest)
    changed = copied > 0
    for rel, raw in manifests.items():
        target = dest / rel
        if target.is_file() and target.read_bytes() == raw:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(raw)
        changed = True
    keep = {blob_name(d) for d in wanted}
    for stale in (dest / "blobs").iterdir():
        if stale.name not in keep:
            stale.unlink()
            changed = True
    for path in sorted((dest / "manifests").rglob("*"), reverse=True):
        if path.is_file() and path.relative_to(dest) not in manifests:
            path.unlink()
            changed = True
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    text = json.dumps(index, indent=1, sort_keys=True) + "\n"
    index_path = dest / "index.json"
    if not index_path.is_file() or index_path.read_text() != text:
        index_path.write_text(text)
        changed = True
    return {
        "changed": changed,
        "bytes_copied": copied,
        "bytes_total": sum(wanted.values()),
        "seconds": round(time.monotonic() - started, 3),
        "models": sorted(index["models"]),
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "store": {"type": "path", "required": True},
            "models": {"type": "list", "elements": "str", "required": True},
            "dest": {"type": "path", "required": True},
        },
    )
    try:
        result = export(Path(module.params["store"]), module.params["models"], Path(module.params["dest"]))
    except (ExportError, OSError, ValueError, KeyError) as e:
        module.fail_json(msg=f"exporting the models failed: {e}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
