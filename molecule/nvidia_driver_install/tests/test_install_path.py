"""The install path on hosts without a GPU (nvidia_driver_state present): see molecule.yml for what is real here."""

from __future__ import annotations

import base64
import email.utils
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.archives import REPO
from tests.support.filters import role_filters
from tests.support.instances import Instance, RoleRun, apply_role, instance_names
from tests.support.nvidia import MODULES_LOAD, SOURCE, UNATTENDED, snapshot

HOSTS = {name.rsplit("-", 1)[1]: Instance(name) for name in instance_names()}
BOOKWORM, TRIXIE, JAMMY, NOBLE = (HOSTS[distro] for distro in ("bookworm", "trixie", "jammy", "noble"))

# A throw-away apt state on the host that sees its own archive (URI from its sources.list), to ask which kernel
# the archive currently has modules or headers for. The role is not involved.
ARCHIVE_KERNEL = r"""
set -e
. /etc/os-release
uri=$(awk '$1 == "deb" { print $2; exit }' /etc/apt/sources.list)
d=$(mktemp -d); mkdir -p "$d/lists/partial" "$d/cache/archives/partial"
printf 'deb %s %s %s\ndeb %s %s-updates %s\n' "$uri" "$VERSION_CODENAME" "$2" "$uri" "$VERSION_CODENAME" "$2" > "$d/src"
o="-o Dir::State::Lists=$d/lists -o Dir::Cache=$d/cache -o Dir::Etc::sourcelist=$d/src -o Dir::Etc::sourceparts=-"
apt-get $o update -qq >/dev/null
apt-cache $o depends "$1" | sed -n "s/^ *Depends: $3//p" | sort -V | tail -n 1
rm -rf "$d"
"""


def archive_kernel(host: Instance, meta: str, components: str, dependency_prefix: str) -> str:
    kernel = host.sh(f"bash -s {meta} '{components}' {dependency_prefix} <<'EOF'\n{ARCHIVE_KERNEL}\nEOF").strip()
    assert kernel, f"{meta} names no kernel in {host.name}'s archive"
    return kernel


def check_run(host: Instance, **role_vars: Any) -> RoleRun:
    """The role in check mode; it must succeed and leave the host exactly as it was."""
    before = snapshot(host)
    run = apply_role(host.name, role="nvidia_driver", check=True, nvidia_driver_state="present", **role_vars)
    assert run.rc == 0, f"{run}\n{run.output[-3000:]}"
    assert snapshot(host) == before, "check mode changed the host"
    return run


def simulated(run: RoleRun) -> set[str]:
    """Packages apt-get --simulate would install ("Inst <name> ..." lines)."""
    return {line.split()[1] for line in run.output.replace("\\n", "\n").splitlines() if line.startswith("Inst ")}


@pytest.fixture
def secure_boot(request: pytest.FixtureRequest) -> Any:
    host: Instance = request.param
    host.sh(
        "printf '#!/bin/sh\\necho SecureBoot enabled\\n' > /usr/local/bin/mokutil && chmod 755 /usr/local/bin/mokutil"
    )
    yield host
    host.sh("rm -f /usr/local/bin/mokutil")


# --- Ubuntu: the archive's signed prebuilt modules ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "modules", "flavour"),
    [(JAMMY, "open", "580-server-open"), (NOBLE, "proprietary", "580-server")],
    ids=["jammy-open", "noble-proprietary"],
)
def test_ubuntu_resolves_userspace_and_signed_prebuilt_modules(host: Instance, modules: str, flavour: str) -> None:
    kernel = archive_kernel(
        host, f"linux-modules-nvidia-{flavour}-generic", "main restricted", f"linux-modules-nvidia-{flavour}-"
    )
    run = check_run(host, nvidia_driver_kernel_modules=modules, nvidia_driver_kernel_release=kernel)
    wanted = {
        f"nvidia-headless-no-dkms-{flavour}",
        "nvidia-utils-580-server",
        "nvidia-modprobe",
        f"linux-modules-nvidia-{flavour}-{kernel}",
        f"linux-modules-nvidia-{flavour}-generic",
    }
    assert wanted <= simulated(run), simulated(run)
    assert not any(p.startswith("nvidia-dkms") for p in simulated(run)), "DKMS although prebuilt modules exist"


@pytest.mark.parametrize("secure_boot", [NOBLE], indirect=True)
def test_ubuntu_prebuilt_modules_are_a_signing_path_under_secure_boot(secure_boot: Instance) -> None:
    kernel = archive_kernel(
        NOBLE,
        "linux-modules-nvidia-580-server-open-generic",
        "main restricted",
        "linux-modules-nvidia-580-server-open-",
    )
    check_run(NOBLE, nvidia_driver_kernel_release=kernel)


def test_ubuntu_kernel_without_prebuilt_modules_falls_back_to_dkms_and_is_refused_under_secure_boot() -> None:
    # The containers run the controller's (Debian) kernel: Ubuntu has no modules for it, so DKMS it would be.
    NOBLE.sh(
        "printf '#!/bin/sh\\necho SecureBoot enabled\\n' > /usr/local/bin/mokutil && chmod 755 /usr/local/bin/mokutil"
    )
    try:
        run = apply_role(NOBLE.name, role="nvidia_driver", check=True, nvidia_driver_state="present")
    finally:
        NOBLE.sh("rm -f /usr/local/bin/mokutil")
    assert run.rc != 0
    message = " ".join(run.failures)
    assert "no signed prebuilt modules for kernel " + os.uname().release in message, message
    assert "Nothing was installed" in message


def test_ubuntu_source_and_package_lists_for_real() -> None:
    # Only the source step, for real: the file, and apt now knows the driver from the archive.
    run = apply_role(JAMMY.name, role="nvidia_driver", tags="nvidia_driver_repository", nvidia_driver_state="present")
    assert run.rc == 0, run
    source = JAMMY.sh(f"cat {SOURCE}")
    uri = JAMMY.sh("awk '$1 == \"deb\" { print $2; exit }' /etc/apt/sources.list").strip()
    assert f"URIs: {uri}" in source
    assert "Suites: jammy jammy-updates jammy-security" in source
    assert "Components: main restricted multiverse" in source
    assert "Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg" in source
    policy = JAMMY.sh("apt-cache policy nvidia-headless-no-dkms-580-server-open")
    assert "Candidate: 580." in policy, policy


# --- Debian 13: the archive's 550 with DKMS -------------------------------------------------------------------


def test_debian_13_resolves_its_own_550_with_dkms_and_headers() -> None:
    kernel = archive_kernel(TRIXIE, "linux-image-amd64", "main", "linux-image-")
    run = check_run(TRIXIE, nvidia_driver_branch="550", nvidia_driver_kernel_release=kernel)
    wanted = {
        "nvidia-smi",
        "libcuda1",
        "nvidia-persistenced",
        "nvidia-modprobe",
        "nvidia-open-kernel-dkms",
        "firmware-nvidia-gsp",
        f"linux-headers-{kernel}",
    }
    assert wanted <= simulated(run), simulated(run)


@pytest.mark.parametrize("secure_boot", [TRIXIE], indirect=True)
def test_debian_dkms_under_secure_boot_fails_before_any_change(secure_boot: Instance) -> None:
    before = snapshot(TRIXIE)
    run = apply_role(TRIXIE.name, role="nvidia_driver", nvidia_driver_state="present", nvidia_driver_branch="550")
    assert run.rc != 0 and "Secure Boot is enabled" in " ".join(run.failures), run
    assert snapshot(TRIXIE) == before


def test_boot_setup_on_ubuntu() -> None:
    # Only the boot set-up, for real (the offline scenario checks it after a real install on Debian 12).
    # No packages here, so no nvidia-persistenced unit to enable.
    setup = {
        "nvidia_driver_module_options": ["NVreg_PreserveVideoMemoryAllocations=1"],
        "nvidia_driver_persistence_mode": False,
        "nvidia_driver_state": "present",
    }
    run = apply_role(NOBLE.name, role="nvidia_driver", tags="nvidia_driver_configure", **setup)
    assert run.rc == 0, run
    assert NOBLE.sh(f"grep -v '^#' {MODULES_LOAD}").split() == ["nvidia", "nvidia-uvm"]
    assert "options nvidia NVreg_PreserveVideoMemoryAllocations=1" in NOBLE.sh("cat /etc/modprobe.d/cortex-nvidia.conf")
    assert '"nvidia-";' in NOBLE.sh("apt-config dump Unattended-Upgrade::Package-Blacklist")
    assert NOBLE.host.file(UNATTENDED).contains("Package-Blacklist")
    assert "ollama.service" in NOBLE.sh("systemctl show -p Before nvidia-device-nodes.service")
    assert NOBLE.sh("systemctl is-enabled nvidia-device-nodes.service").strip() == "enabled"
    again = apply_role(NOBLE.name, role="nvidia_driver", tags="nvidia_driver_configure", **setup)
    assert again.stats["changed"] == 0, again


# --- Debian 12: NVIDIA's CUDA repository layout, signed --------------------------------------------------------


def _sign_mirror(root: Path, gnupg: Path, *build_args: str) -> Path:
    """Lay out <root>/debian12/<arch>/ like NVIDIA's repository, index and sign it; return the public keyring.
    Again with more packages (build_args for tests.harness.build_driver_repo): the same key signs the new index."""
    arch_dir = {"x86_64": "x86_64", "aarch64": "sbsa"}[os.uname().machine]
    repo = root / "debian12" / arch_dir
    subprocess.run(
        [sys.executable, "-m", "tests.harness.build_driver_repo", "--out", str(repo), *build_args],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    packages = subprocess.run(
        ["dpkg-scanpackages", "--multiversion", "."], cwd=repo, check=True, capture_output=True, text=True
    ).stdout
    (repo / "Packages").write_text(packages)
    digest = subprocess.run(["sha256sum", "Packages"], cwd=repo, check=True, capture_output=True, text=True)
    (repo / "Release").write_text(
        "Origin: cortex-tests\nLabel: TEST DOUBLE of NVIDIA's CUDA repository\nSuite: /\n"
        f"Date: {email.utils.formatdate(usegmt=True)}\n"
        f"SHA256:\n {digest.stdout.split()[0]} {len(packages.encode())} Packages\n"
    )
    gpg = ["gpg", "--homedir", str(gnupg), "--batch", "--pinentry-mode", "loopback", "--passphrase", ""]
    if not gnupg.exists():
        gnupg.mkdir(mode=0o700)
        subprocess.run(
            [*gpg, "--quick-gen-key", "cortex-tests@invalid", "ed25519", "sign", "never"],
            check=True,
            capture_output=True,
        )
    (repo / "InRelease").unlink(missing_ok=True)
    subprocess.run(
        [*gpg, "--clearsign", "-o", str(repo / "InRelease"), str(repo / "Release")], check=True, capture_output=True
    )
    keyring = gnupg / "cuda-archive-keyring.gpg"
    if not keyring.exists():
        subprocess.run([*gpg, "--output", str(keyring), "--export"], check=True, capture_output=True)
    return keyring


def _copy_to(host: Instance, root: Path, dest: str) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(root, arcname=".")
    host.sh(f"mkdir -p {dest} && base64 -d | tar -xz -C {dest}", stdin=base64.b64encode(buffer.getvalue()).decode())


@pytest.fixture(scope="module")
def cuda_mirror(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("cuda")
    keyring = _sign_mirror(tmp / "mirror", tmp / "gnupg")
    other = _sign_mirror(tmp / "other", tmp / "gnupg-other")  # a key that did not sign the mirror
    _copy_to(BOOKWORM, tmp / "mirror", "/srv/cuda")
    return {
        "keyring": str(keyring),
        "wrong_keyring": str(other),
        "url": "file:///srv/cuda",
        "root": str(tmp / "mirror"),
        "gnupg": str(tmp / "gnupg"),
    }


def install_from_cuda(mirror: dict[str, str], keyring: str, state: str = "present") -> RoleRun:
    return apply_role(
        BOOKWORM.name,
        role="nvidia_driver",
        nvidia_driver_state=state,
        nvidia_driver_source="cuda",
        nvidia_driver_cuda_repo_url=mirror["url"],
        nvidia_driver_cuda_keyring_src=mirror[keyring],
    )


def test_cuda_repository_signed_by_another_key_installs_nothing(cuda_mirror: dict[str, str]) -> None:
    # From a host without the driver (a rerun of the scenario on kept hosts has it from the next test).
    assert install_from_cuda(cuda_mirror, "keyring", state="absent").rc == 0
    run = install_from_cuda(cuda_mirror, "wrong_keyring")
    assert run.rc != 0
    assert "NO_PUBKEY" in run.output or "not signed" in run.output, run.output[-2000:]
    status = BOOKWORM.sh("dpkg-query --show --showformat='${db:Status-Abbrev}' nvidia-open-580 2>/dev/null || true")
    assert status in ("", "un ")


def test_cuda_repository_keyring_signed_by_install_and_holds(cuda_mirror: dict[str, str]) -> None:
    run = install_from_cuda(cuda_mirror, "keyring")
    assert run.rc == 0, f"{run}\n{run.output[-3000:]}"
    keyring = "/etc/apt/keyrings/cortex-nvidia-cuda.gpg"
    assert BOOKWORM.sh(f"stat -c '%U %G %a' {keyring}").strip() == "root root 644"
    expected = hashlib.sha256(Path(cuda_mirror["keyring"]).read_bytes()).hexdigest()
    assert BOOKWORM.sh(f"sha256sum < {keyring}").split()[0] == expected
    source = BOOKWORM.sh(f"cat {SOURCE}")
    arch_dir = {"x86_64": "x86_64", "aarch64": "sbsa"}[os.uname().machine]
    assert f"URIs: file:///srv/cuda/debian12/{arch_dir}/" in source and f"Signed-By: {keyring}" in source
    assert "nvidia-open-580" in BOOKWORM.sh("apt-mark showhold").split()
    again = install_from_cuda(cuda_mirror, "keyring")
    assert again.rc == 0 and again.stats["changed"] == 0, again


# Another apt holding dpkg's and apt's locks, as apt-daily does at boot on a fresh cloud host: fcntl locks, as apt
# takes them, on the dpkg frontend lock and the package lists' lock, for 20 seconds.
HOLD_LOCKS = """
import fcntl, os, time
fds = [os.open(p, os.O_RDWR | os.O_CREAT) for p in ("/var/lib/dpkg/lock-frontend", "/var/lib/apt/lists/lock")]
for fd in fds:
    fcntl.lockf(fd, fcntl.LOCK_EX)
open("/run/locks-held", "w").close()
time.sleep(20)
"""


def test_package_operations_wait_for_another_apt(cuda_mirror: dict[str, str]) -> None:
    assert install_from_cuda(cuda_mirror, "keyring", state="absent").rc == 0
    BOOKWORM.sh("rm -f /run/locks-held; cat > /run/hold-locks.py", stdin=HOLD_LOCKS)
    BOOKWORM.sh(
        "setsid python3 /run/hold-locks.py >/dev/null 2>&1 < /dev/null & "
        "for i in $(seq 50); do [ -e /run/locks-held ] && break; sleep 0.1; done; [ -e /run/locks-held ]"
    )
    started = time.monotonic()
    run = install_from_cuda(cuda_mirror, "keyring")
    waited = time.monotonic() - started
    assert run.rc == 0, f"{run}\n{run.output[-3000:]}"
    assert waited > 15, f"the run took {waited:.0f} s: it cannot have waited for the locks"
    assert "nvidia-open-580" in BOOKWORM.sh("apt-mark showhold").split()


def test_a_kernel_update_keeps_the_module(cuda_mirror: dict[str, str]) -> None:
    """unattended-upgrades brings a newer kernel (its headers through the flavour's meta package, which the role
    installed and did not hold); DKMS can build for it, and the next run has the module built before the reboot."""
    assert install_from_cuda(cuda_mirror, "keyring").rc == 0
    flavour = role_filters("nvidia_driver").nvidia_driver_kernel_flavour(os.uname().release)
    assert BOOKWORM.sh(f"dpkg-query --show --showformat='${{db:Status-Abbrev}}' linux-headers-{flavour}") == "ii "
    newer = f"99.0.0-{flavour}"
    _sign_mirror(
        Path(cuda_mirror["root"]), Path(cuda_mirror["gnupg"]), "--kernel", newer, "--meta-version", "2", "--image"
    )
    _copy_to(BOOKWORM, Path(cuda_mirror["root"]), "/srv/cuda")
    try:
        # What unattended-upgrades does with the role's source (the driver's userspace is held and blacklisted).
        only_ours = f"-o Dir::Etc::sourcelist={SOURCE} -o Dir::Etc::sourceparts=-"
        BOOKWORM.sh(
            f"apt-get {only_ours} update -qq && DEBIAN_FRONTEND=noninteractive apt-get {only_ours} "
            f"upgrade --yes --with-new-pkgs && apt-get {only_ours} install --yes linux-image-{newer}"
        )
        assert BOOKWORM.host.file(f"/lib/modules/{newer}/build/Makefile").exists, "no headers came with the kernel"
        run = install_from_cuda(cuda_mirror, "keyring")
        assert run.rc == 0, f"{run}\n{run.output[-3000:]}"
        assert BOOKWORM.sh(f"ls /lib/modules/{newer}/updates/dkms/").split() == ["nvidia.ko"]
        assert run.stats["changed"] > 0
        again = install_from_cuda(cuda_mirror, "keyring")
        assert again.rc == 0 and again.stats["changed"] == 0, again
        # A newest kernel without headers anywhere: the run says so, naming the kernel.
        BOOKWORM.sh("touch /boot/vmlinuz-99.1.0-orphan")
        orphan = install_from_cuda(cuda_mirror, "keyring")
        assert orphan.rc == 0, orphan
        assert "NVIDIA MODULE MISSING" in orphan.output and "99.1.0-orphan: no headers for it" in orphan.output
    finally:
        BOOKWORM.sh(
            f"rm -f /boot/vmlinuz-99.1.0-orphan; apt-get purge --yes linux-image-{newer} "
            f"linux-headers-{newer} >/dev/null 2>&1; rm -rf /lib/modules/{newer}; true"
        )
