"""Build cortex_client's wheelhouse from a checkout, on the controller:

    client_wheelhouse.py CHECKOUT DEST [PYTHON_VERSION ...]

DEST gets the client's wheel (distribution cortexlinux-router) and its dependencies' wheels for the Pythons the
hosts run (given, as role cortex_env does for the hosts of its play; by default every supported one: 3.10 on
Ubuntu 22.04 to 3.13 on Debian 13), whatever Python the controller runs: a dependency may differ by version, as
anyio needs exceptiongroup below 3.11. Built again only when the client's sources or the versions changed (a stamp
in DEST holds their digest). The wheel is reproducible
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
import zipfile
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

DISTRIBUTION = "cortexlinux_router"  # the wheel's file-name form of the distribution name
# 1980-01-01, the earliest time a zip file can hold: the wheel's timestamps, whatever the checkout's mtimes.
EPOCH = "315532800"
STAMP = ".source-sha256"
# The hosts' Pythons: Ubuntu 22.04, Debian 12, Ubuntu 24.04, Debian 13.
HOST_PYTHONS = ("3.10", "3.11", "3.12", "3.13")


def source_digest(checkout: Path) -> str:
    """The client's sources as the wheel is built from them: pyproject.toml and the package's files."""
    h = hashlib.sha256()
    files = [checkout / "pyproject.toml", *sorted((checkout / "cortex_client").rglob("*"))]
    for path in files:
        if path.is_file() and "__pycache__" not in path.parts:
            h.update(str(path.relative_to(checkout)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def unmet(wheelhouse: Path, version: str) -> list[str]:
    """Requirements of the wheels in `wheelhouse` that a host on Python `version` needs and no wheel there meets
    (pip download --python-version picks wheels for that version but evaluates markers for the running one)."""
    env = {"python_version": version, "python_full_version": f"{version}.0", "extra": ""}
    have = {canonicalize_name(w.name.split("-")[0]) for w in wheelhouse.glob("*.whl")}
    needed = set()
    for wheel in wheelhouse.glob("*.whl"):
        with zipfile.ZipFile(wheel) as z:
            metadata = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
            lines = z.read(metadata).decode().splitlines()
        for line in lines:
            if line.startswith("Requires-Dist:"):
                req = Requirement(line.split(":", 1)[1].strip())
                if (req.marker is None or req.marker.evaluate(env)) and canonicalize_name(req.name) not in have:
                    needed.add(f"{req.name}{req.specifier}")
    return sorted(needed)


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


def build(checkout: Path, dest: Path, pythons: tuple[str, ...] = HOST_PYTHONS) -> dict[str, object]:
    digest = source_digest(checkout) + "-" + ",".join(pythons)
    if (dest / STAMP).is_file() and (dest / STAMP).read_text().strip() == digest:
        return {"changed": False, **client_wheel(dest)}
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Built beside DEST and swapped in whole: an interrupted build never leaves a half wheelhouse under DEST.
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
    try:
        pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
        env = {**os.environ, "SOURCE_DATE_EPOCH": EPOCH}
        subprocess.run([*pip, "wheel", "--no-deps", "--wheel-dir", str(tmp), str(checkout)], check=True, env=env,
                       stdout=sys.stderr)  # fmt: skip
        (client,) = tmp.glob(f"{DISTRIBUTION}-*.whl")
        for version in pythons:  # the dependencies as each host's Python resolves them
            wanted = [str(client)]
            while wanted:
                subprocess.run([*pip, "download", "--only-binary=:all:", "--python-version", version, "--dest",
                                str(tmp), *wanted], check=True, env=env, stdout=sys.stderr)  # fmt: skip
                wanted = unmet(tmp, version)
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
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    try:
        import pip  # noqa: F401 # the controller's Python builds with it
    except ImportError:
        sys.exit(
            f"{sys.executable} has no pip, which builds the client's wheelhouse: install it (python3-pip), or "
            "set cortex_env_wheelhouse to a wheelhouse built elsewhere (playbooks/airgap_bundle.yml)"
        )
    versions = tuple(sorted(set(sys.argv[3:]))) or HOST_PYTHONS
    print(json.dumps(build(Path(sys.argv[1]).resolve(), Path(sys.argv[2]).expanduser(), versions)))
