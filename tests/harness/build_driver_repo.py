#!/usr/bin/env python3
"""Build an offline apt repository of TEST DOUBLE driver packages: small .debs named like NVIDIA's CUDA repository
packages, for role nvidia_driver's `local` source on air-gapped test hosts. No real driver is in them.

  OUT/nvidia-open-<branch>_<version>_<arch>.deb    depends on the three below; ships /usr/bin/nvidia-smi (a double
                                                   that answers like a working driver of <version>)
  OUT/nvidia-modprobe_<version>_<arch>.deb         /usr/bin/nvidia-modprobe (a double: logs its arguments)
  OUT/nvidia-persistenced_<version>_<arch>.deb     /usr/bin/nvidia-persistenced and its systemd unit
  OUT/dkms_<version>_all.deb                       /usr/sbin/dkms (a double: `autoinstall -k K` "builds" nvidia.ko
                                                   for K when K's headers are installed, as the real one needs)
  OUT/linux-headers-<kernel>_1_<arch>.deb          /lib/modules/<kernel>/build/Makefile; the kernel the test hosts
                                                   run (uname -r) unless --kernel
  OUT/linux-headers-<flavour>_<N>_<arch>.deb       the flavour's meta package (as linux-headers-amd64): depends on
                                                   the headers of <kernel>; N from --meta-version
  OUT/linux-image-<kernel>_1_<arch>.deb            with --image: /boot/vmlinuz-<kernel> (empty), a kernel installed

A newer kernel arriving as unattended-upgrades brings it: --kernel <newer> --meta-version 2 --image.
Only the .debs: the role writes the index on the host. A .deb whose spec is unchanged is kept, so reruns are free.
Usage (from the repository root): python -m tests.harness.build_driver_repo --out DIR [--version 580.95.05]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
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
DKMS = """#!/bin/sh
# TEST DOUBLE of dkms: `dkms autoinstall [-k KERNEL]` builds the nvidia module if the kernel's headers are there.
kernel=$(uname -r)
while [ $# -gt 0 ]; do case $1 in -k) kernel=$2; shift ;; esac; shift; done
if [ ! -e "/lib/modules/$kernel/build/Makefile" ]; then
  echo "Error! Your kernel headers for kernel $kernel cannot be found." >&2; exit 1
fi
mkdir -p "/lib/modules/$kernel/updates/dkms"
echo "TEST DOUBLE of the nvidia module" > "/lib/modules/$kernel/updates/dkms/nvidia.ko"
echo "nvidia/{version}, $kernel: installed"
"""
PERSISTENCED_UNIT = """[Unit]
Description=NVIDIA Persistence Daemon (TEST DOUBLE)

[Service]
Type=oneshot
ExecStart=/usr/bin/nvidia-persistenced

[Install]
WantedBy=multi-user.target
"""


def build(out: Path, name: str, version: str, files: dict[str, str], *, depends: str = "", arch: str = ARCH) -> Path:
    deb = out / f"{name}_{version}_{arch}.deb"
    # The spec's digest rides in the control file: a .deb built from the same spec is kept, another is rebuilt.
    modes = {path: 0o755 if "bin/" in path else 0o644 for path in files}  # bin/ and sbin/ hold programs
    spec = json.dumps([name, version, arch, depends, files, modes], sort_keys=True)
    spec = hashlib.sha256(spec.encode()).hexdigest()[:16]
    if deb.exists():
        field = ["dpkg-deb", "--field", str(deb), "X-Cortex-Spec"]
        kept = subprocess.run(field, check=False, capture_output=True, text=True)
        if kept.stdout.strip() == spec:
            return deb
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "DEBIAN").mkdir()
        control = [
            f"Package: {name}",
            f"Version: {version}",
            f"Architecture: {arch}",
            "Maintainer: Cortex tests <tests@invalid>",
            *([f"Depends: {depends}"] if depends else []),
            f"X-Cortex-Spec: {spec}",
            f"Description: TEST DOUBLE of {name} for role nvidia_driver's tests",
        ]
        (root / "DEBIAN" / "control").write_text("\n".join(control) + "\n")
        for path, text in files.items():
            target = root / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            target.chmod(modes[path])
        subprocess.run(
            ["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(deb)],
            check=True,
            capture_output=True,
        )
    print(f"built: {deb.name}")
    return deb


def kernel_flavour(kernel: str) -> str:
    """What a kernel's meta packages are named after (role nvidia_driver reads it the same way)."""
    return re.sub(r"^[0-9][^-]*-([0-9]+-)?", "", kernel)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--version", default="580.95.05")
    parser.add_argument("--kernel", default=os.uname().release, help="the kernel to build headers for")
    parser.add_argument("--meta-version", type=int, default=1, help="version of the headers meta package")
    parser.add_argument("--image", action="store_true", help="also a linux-image package of --kernel")
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    version = f"{args.version}-1"
    branch = args.version.split(".")[0]
    build(out, "nvidia-modprobe", version, {"/usr/bin/nvidia-modprobe": MODPROBE})
    build(out, "dkms", version, {"/usr/sbin/dkms": DKMS.format(version=args.version)}, arch="all")
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
        depends=f"nvidia-modprobe (= {version}), nvidia-persistenced (= {version}), dkms",
    )
    kernel = args.kernel
    build(out, f"linux-headers-{kernel}", "1", {f"/lib/modules/{kernel}/build/Makefile": "# TEST DOUBLE headers\n"})
    build(out, f"linux-headers-{kernel_flavour(kernel)}", str(args.meta_version), {}, depends=f"linux-headers-{kernel}")
    if args.image:
        build(out, f"linux-image-{kernel}", "1", {f"/boot/vmlinuz-{kernel}": ""})


if __name__ == "__main__":
    main()
