"""The Ollama test double's release archives (tests/harness/build_double_releases.py): where they are and
what they hold, read the way the role reads them."""

from __future__ import annotations

import hashlib
import io
import os
import platform
import subprocess
import tarfile
from pathlib import Path

import yaml

from tests.harness.build_double_releases import archive_name

REPO = Path(__file__).resolve().parents[2]
RELEASES = REPO / ".cache" / "double-releases"
# Ollama's release names for machine architectures: the role's own map, so tests expect what the role does.
ARCH_NAMES: dict[str, str] = yaml.safe_load((REPO / "roles/ollama/vars/main.yml").read_text())["__ollama_arch_map"]
ARCH = ARCH_NAMES[platform.machine()]  # this machine's, in Ollama's spelling


def archive_path(version: str, arch: str = ARCH, addon: str = "") -> Path:
    """The double's release archive for a version (or its GPU add-on): .tgz below 0.14.0, .tar.zst from it."""
    return RELEASES / version / archive_name(version, arch, addon)


def read_archive(archive: Path) -> tarfile.TarFile:
    if archive.name.endswith(".tar.zst"):
        data = subprocess.run(["zstd", "-dc", str(archive)], check=True, capture_output=True).stdout
        return tarfile.open(fileobj=io.BytesIO(data))
    return tarfile.open(archive, "r:gz")


def archive_members(archive: Path) -> set[str]:
    """Paths an archive holds (files, links and every directory they imply), without a leading './'."""
    members: set[str] = set()
    with read_archive(archive) as tar:
        for name in tar.getnames():
            path = name.removeprefix("./").rstrip("/")
            while path and path != ".":
                members.add(path)
                path = os.path.dirname(path)
    return members


def archive_file_hashes(archive: Path, prefix: str) -> dict[str, str]:
    """sha256 of each regular file in an archive, keyed by its path under prefix (e.g. /usr/local)."""
    hashes = {}
    with read_archive(archive) as tar:
        for member in tar.getmembers():
            data = tar.extractfile(member) if member.isfile() else None
            if data is not None:
                path = member.name.removeprefix("./")
                hashes[f"{prefix}/{path}"] = hashlib.sha256(data.read()).hexdigest()
    return hashes


def extract(archive: Path, dest: Path) -> Path:
    """Unpack a release under dest (as /usr/local would hold it); returns the path of bin/ollama."""
    dest.mkdir(parents=True)
    with read_archive(archive) as tar:
        tar.extractall(dest, filter="tar")
    return dest / "bin" / "ollama"
