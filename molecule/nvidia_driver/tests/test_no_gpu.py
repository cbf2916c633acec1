"""Without a GPU the role says so and changes nothing; bad input fails before any change.

The test hosts are containers on a machine without an NVIDIA GPU (their /sys shows its PCI devices), so
nvidia_driver_state auto finds none. The preflight cases force an install (state present) on the bookworm host.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.instances import Instance, apply_role, instance_names
from tests.support.nvidia import ROLE_FILES, snapshot

HOSTS = instance_names()
FIRST = Instance(HOSTS[0])  # bookworm


@pytest.mark.parametrize("name", HOSTS)
def test_no_gpu_found_and_nothing_written(name: str) -> None:
    host = Instance(name)
    before = snapshot(host)
    run = apply_role(name, role="nvidia_driver")
    assert run.rc == 0, run
    assert run.stats["changed"] == 0, run
    assert "No NVIDIA GPU on this host (PCI vendor 10de); nothing to do." in run.output
    for path in ROLE_FILES:
        assert not host.host.file(path).exists, path
    assert snapshot(host) == before


@pytest.fixture
def keyring(tmp_path: Path) -> str:
    """A file where the CUDA keyring would be: preflight only checks that it is there."""
    path = tmp_path / "cuda-archive-keyring.gpg"
    path.write_bytes(b"\x99\x01\x0d")
    return str(path)


@pytest.fixture
def secure_boot() -> Any:
    """mokutil as on a host booted with Secure Boot on (first on PATH, removed afterwards)."""
    FIRST.sh(
        "printf '#!/bin/sh\\necho SecureBoot enabled\\n' > /usr/local/bin/mokutil && chmod 755 /usr/local/bin/mokutil"
    )
    yield
    FIRST.sh("rm -f /usr/local/bin/mokutil")


def assert_refused(patterns: list[str], **role_vars: Any) -> None:
    before = snapshot(FIRST)
    run = apply_role(FIRST.name, role="nvidia_driver", nvidia_driver_state="present", **role_vars)
    assert run.rc != 0, f"the role accepted {role_vars}: {run}"
    message = " ".join(run.failures)
    assert all(re.search(p, message) for p in patterns), message
    assert any("preflight" in line or "Check " in line for line in run.failures), run.failures
    assert snapshot(FIRST) == before, "the host changed although the input was refused"


def test_secure_boot_without_a_signing_path_fails_before_any_change(secure_boot: None, keyring: str) -> None:
    assert_refused(
        ["Secure Boot is enabled", "SecureBoot enabled", "Nothing was changed", "mokutil --import"],
        nvidia_driver_cuda_keyring_src=keyring,
    )


def test_secure_boot_with_an_enrolled_key_passes_preflight(secure_boot: None, keyring: str) -> None:
    # Stopped right after the checks (--tags always runs only facts and preflight): nothing is installed.
    run = apply_role(
        FIRST.name,
        role="nvidia_driver",
        tags="always",
        nvidia_driver_state="present",
        nvidia_driver_mok_enrolled=True,
        nvidia_driver_cuda_keyring_src=keyring,
    )
    assert run.rc == 0, run


@pytest.mark.parametrize(
    ("branch", "patterns"),
    [
        ("999", ['"999" is not a branch', "known are 550, 570, 580"]),
        ("535", ['"535" is not a branch', "needs 550 or newer"]),
        ("latest", ['"latest" is not a branch']),
    ],
)
def test_unknown_branch_fails_before_any_change(branch: str, patterns: list[str], keyring: str) -> None:
    assert_refused(patterns, nvidia_driver_branch=branch, nvidia_driver_cuda_keyring_src=keyring)


def test_debian_12_archive_is_refused_even_for_550() -> None:
    # Debian 13's archive has 550; Debian 12's does not.
    assert_refused(
        ['"550" is not a branch', "known are none"],
        nvidia_driver_source="distribution",
        nvidia_driver_branch="550",
    )


def test_debian_12_archive_is_refused_for_the_branch() -> None:
    assert_refused(
        ["distribution source offers", "Debian 12's own", "archive stops at 535"], nvidia_driver_source="distribution"
    )


def test_cuda_without_a_keyring_is_refused() -> None:
    assert_refused(["nvidia_driver_cuda_keyring_src", "absolute path"])
