#!/usr/bin/env python3
"""Build an offline apt repository of TEST DOUBLE driver packages: small .debs named like NVIDIA's CUDA repository
packages, for role nvidia_driver's `local` source on air-gapped test hosts. No real driver is in them.

  OUT/nvidia-open-<branch>_<version>_<arch>.deb    depends on the two below; ships /usr/bin/nvidia-smi (a double
                                                   that answers like a working driver of <version>)
  OUT/nvidia-modprobe_<version>_<arch>.deb         /usr/bin/nvidia-modprobe (a double: logs its arguments)
  OUT/nvidia-persistenced_<version>_<arch>.deb     /usr/bin/nvidia-persistenced and its systemd unit
  OUT/linux-headers-<kernel>_1_<arch>.deb          empty; named for the kernel the test hosts run (uname -r)

Only the .debs: the role writes the index on the host. Existing files are kept, so reruns are free.
Usage (from the repository root): python -m tests.harness.build_driver_repo --out DIR [--version 580.95.05]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import tempfile
from pathlib import Path

ARCH = {"x86_64": "amd64", "aarch64": "arm64"}[platform.machine()]

SMI = """#!/bin/sh
# TEST DOUBLE of nvidia-smi: the answer of a working driver {version} with one GPU.
echo "{version}, NVIDIA TEST DOUBLE GPU"
"""
MODPROBE = """#!/bin/sh
# TEST DOUBLE of nvidia-modprobe: records how it was called.
echo "$*" >> /run/nvidia-modprobe-double.log
"""
PERSISTENCED = """#!/bin/sh
# TEST DOUBLE of nvidia-persistenced.
exit 0
"""
PERSISTENCED_UNIT = """[Unit]
Description=NVIDIA Persistence Daemon (TEST DOUBLE)

[Service]
Type=oneshot
ExecStart=/usr/bin/nvidia-persistenced

[Install]
WantedBy=multi-user.target
"""


def build(out: Path, name: str, version: str, files: dict[str, str], depends: str = "") -> Path:
    deb = out / f"{name}_{version}_{ARCH}.deb"
    if deb.exists():
        return deb
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "DEBIAN").mkdir()
        control = [
            f"Package: {name}",
            f"Version: {version}",
            f"Architecture: {ARCH}",
            "Maintainer: Cortex tests <tests@invalid>",
            *([f"Depends: {depends}"] if depends else []),
            f"Description: TEST DOUBLE of {name} for role nvidia_driver's offline tests",
        ]
        (root / "DEBIAN" / "control").write_text("\n".join(control) + "\n")
        for path, text in files.items():
            target = root / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            target.chmod(0o755 if "/bin/" in path else 0o644)
        subprocess.run(
            ["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(deb)],
            check=True,
            capture_output=True,
        )
    print(f"built: {deb.name}")
    return deb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--version", default="580.95.05")
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    version = f"{args.version}-1"
    branch = args.version.split(".")[0]
    build(out, "nvidia-modprobe", version, {"/usr/bin/nvidia-modprobe": MODPROBE})
    build(
        out,
        "nvidia-persistenced",
        version,
        {
            "/usr/bin/nvidia-persistenced": PERSISTENCED,
            "/usr/lib/systemd/system/nvidia-persistenced.service": PERSISTENCED_UNIT,
        },
    )
    build(
        out,
        f"nvidia-open-{branch}",
        version,
        {"/usr/bin/nvidia-smi": SMI.format(version=args.version)},
        depends=f"nvidia-modprobe (= {version}), nvidia-persistenced (= {version})",
    )
    build(out, f"linux-headers-{os.uname().release}", "1", {})


if __name__ == "__main__":
    main()
