"""Writes <bundle>/bundle.json: every file's path, size and sha256 (standard library only; runs on the controller).

The air-gapped side can check a moved bundle with it (docs/airgap.md) before anything is installed."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

CHUNK = 1 << 20


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def main(root: Path) -> int:
    target = root / "bundle.json"
    files = {
        str(p.relative_to(root)): {"size": p.stat().st_size, "sha256": sha256(p)}
        for p in sorted(root.rglob("*"))
        if p.is_file() and p != target
    }
    text = json.dumps({"format": 1, "files": files}, indent=1, sort_keys=True) + "\n"
    changed = not target.is_file() or target.read_text() != text
    if changed:
        target.write_text(text)
    total = sum(f["size"] for f in files.values())
    print(f"{'written' if changed else 'unchanged'}: {target} ({len(files)} files, {total} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
