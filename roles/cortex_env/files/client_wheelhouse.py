"""Build cortex_client's wheelhouse from a checkout, on the controller:

    client_wheelhouse.py CHECKOUT DEST

DEST gets the client's wheel (distribution cortexlinux-router) and its dependencies' wheels (pip wheel), built
again only when the client's sources changed (a stamp in DEST holds their digest). The wheel is reproducible
(SOURCE_DATE_EPOCH): the same sources give the same bytes, so hosts that have it get nothing new. Prints one JSON
line: {"changed", "dir", "wheel", "version", "sha256"}, what role cortex_env installs and checks on the host.
Used by role cortex_env (its default source) and by playbooks/airgap_bundle.yml (the bundle's wheels/).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

DISTRIBUTION = "cortexlinux_router"  # the wheel's file-name form of the distribution name
# 1980-01-01, the earliest time a zip file can hold: the wheel's timestamps, whatever the checkout's mtimes.
EPOCH = "315532800"
STAMP = ".source-sha256"


def source_digest(checkout: Path) -> str:
    """The client's sources as the wheel is built from them: pyproject.toml and the package's files."""
    h = hashlib.sha256()
    files = [checkout / "pyproject.toml", *sorted((checkout / "cortex_client").rglob("*"))]
    for path in files:
        if path.is_file() and "__pycache__" not in path.parts:
            h.update(str(path.relative_to(checkout)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def client_wheel(dest: Path) -> dict[str, object]:
    wheels = sorted(dest.glob(f"{DISTRIBUTION}-*.whl"))
    if len(wheels) != 1:
        sys.exit(f"{dest} holds {len(wheels)} wheels of {DISTRIBUTION}, not one")
    wheel = wheels[0]
    return {
        "dir": str(dest),
        "wheel": wheel.name,
        "version": wheel.name.split("-")[1],
        "sha256": hashlib.sha256(wheel.read_bytes()).hexdigest(),
    }


def build(checkout: Path, dest: Path) -> dict[str, object]:
    digest = source_digest(checkout)
    if (dest / STAMP).is_file() and (dest / STAMP).read_text().strip() == digest:
        return {"changed": False, **client_wheel(dest)}
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Built beside DEST and swapped in whole: an interrupted build never leaves a half wheelhouse under DEST.
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
    try:
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "--wheel-dir", str(tmp),
             str(checkout)],
            check=True,
            env={**os.environ, "SOURCE_DATE_EPOCH": EPOCH},
            stdout=sys.stderr,
        )  # fmt: skip
        (tmp / STAMP).write_text(digest + "\n")
        old = dest.with_name(f".{dest.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if dest.exists():
            dest.rename(old)
        tmp.rename(dest)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"changed": True, **client_wheel(dest)}


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    print(json.dumps(build(Path(sys.argv[1]).resolve(), Path(sys.argv[2]).expanduser())))
