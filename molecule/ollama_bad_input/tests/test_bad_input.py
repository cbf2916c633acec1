"""Each bad input fails before any change, with a message that says what is wrong.

Converge installed 0.34.2 on the bookworm host, which keeps running throughout. Every run of the role is
framed by two snapshots of the host (paths, types, modes, owners, sizes, mtimes of everything the role could touch,
plus the service's invocation), which must be identical. The bad variables (CASES) go in one ansible-playbook run,
each case a host of its own (an alias of the bookworm host), as a fleet run with one bad host per case: each must be
refused with its own message, and none may change the host.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.archives import RELEASES, archive_path
from tests.support.instances import Instance, RoleRun, apply_role, apply_role_cases, http_mirror, instance_names

SYSTEMD_HOST, PLAIN_HOST = (Instance(name) for name in instance_names())  # molecule.yml's platform order
INSTALLED = "0.34.2"

SNAPSHOT = r"""
for p in /usr/local /etc/systemd /etc/cortex /var/lib/ollama /var/cache/cortex-ollama \
         /etc/passwd /etc/group /etc/shadow /etc/gshadow; do
  if [ -e "$p" ]; then find "$p" -xdev -printf '%p %y %m %u:%g %s %T@ %l\n'; else echo "absent $p"; fi
done | sort
sha256sum /etc/passwd /etc/group /etc/shadow /etc/gshadow
if [ -d /run/systemd/system ]; then systemctl show -p ActiveState -p InvocationID ollama.service; fi
"""

# The scenario derives the archive path from ollama_version; a malformed version needs it spelled out.
GOOD_ARCHIVE = {
    "ollama_archive_src": str(archive_path(INSTALLED)),
    "ollama_checksums_file": str(RELEASES / INSTALLED / "sha256sum.txt"),
}

# (case id, role variables, patterns the failure message must all match)
CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("version-string", {"ollama_version": "v0.34", **GOOD_ARCHIVE}, ["ollama_version", "v0.34", "must look like"]),
    ("version-below-floor", {"ollama_version": "0.13.5"}, ["0.13.5", "older than ollama_min_version 0.34.2"]),
    ("unknown-arch", {"ollama_arch": "sparc"}, ["ollama_arch", "sparc"]),
    (
        # For a pinned version the pin is the only hash trusted: another one is refused before any download or copy.
        "wrong-checksum",
        {"ollama_archive_sha256": "0" * 64, "ollama_version": "0.34.3"},
        ["ollama_archive_sha256 says " + "0" * 64, "the pinned table ollama_checksums says [0-9a-f]{64}"],
    ),
    ("relative-prefix", {"ollama_install_prefix": "usr/local"}, ["ollama_install_prefix", "absolute"]),
    ("relative-data-dir", {"ollama_data_dir": "models"}, ["ollama_data_dir", "absolute"]),
    ("relative-archive", {"ollama_archive_src": "ollama-linux-amd64.tar.zst"}, ["ollama_archive_src", "absolute"]),
    ("relative-checksums", {"ollama_checksums_file": "sha256sum.txt"}, ["ollama_checksums_file", "absolute"]),
    ("wildcard-origin", {"ollama_origins": ["https://app.example.com", "*"]}, [r"'\*'", "wildcard"]),
    # Entries that make the real server panic at start (gin-contrib/cors), and over-broad wildcards it would accept.
    ("origin-no-scheme", {"ollama_origins": ["app://cortex"]}, ["'app://cortex' would stop Ollama from starting"]),
    ("origin-null", {"ollama_origins": ["null"]}, ["'null' would stop Ollama from starting"]),
    ("origin-two-stars", {"ollama_origins": ["https://*.*.example.com"]}, ["more than one"]),
    ("origin-any-com", {"ollama_origins": ["*.com"]}, [r"'\*\.com' is refused", "any site"]),
    ("origin-https-any-com", {"ollama_origins": ["https://*.com"]}, [r"'https://\*\.com' is refused"]),
    ("keep-alive-missing-unit", {"ollama_keep_alive": "5m5"}, ["ollama_keep_alive", "unit on every number"]),
    ("models-under-tmp", {"ollama_data_dir": "/var/tmp/models"}, ["/var/tmp/models", "PrivateTmp"]),
    ("release-candidate-below-floor", {"ollama_version": "0.34.2-rc1"}, ["0.34.2-rc1", "older than"]),
    ("remote-bind", {"ollama_host": "0.0.0.0:11434"}, ["0.0.0.0:11434", "ollama_allow_remote_bind"]),
    ("addon-for-another-arch", {"ollama_gpu_addon": "jetpack6"}, ["ollama_gpu_addon=jetpack6 does not fit"]),
    (
        "egress-allow-everything",
        {"ollama_egress_lock": True, "ollama_egress_allow": ["0.0.0.0/0"]},
        ["'0.0.0.0/0'", "defeats the lock"],
    ),
    (
        "egress-lock-remote-clients",
        {"ollama_egress_lock": True, "ollama_host": "0.0.0.0:11434", "ollama_allow_remote_bind": True},
        ["no remote client could connect", "ollama_egress_allow"],
    ),
    ("untraversable-parent", {"ollama_data_dir": "/srv/locked/models"}, ["/srv/locked lacks the execute"]),
]


def snapshot(host: Instance) -> str:
    return host.sh(SNAPSHOT)


def assert_refused_with(run: RoleRun, patterns: list[str]) -> None:
    assert run.rc != 0, f"the role accepted the input: {run}"
    message = " ".join(run.failures)
    for pattern in patterns:
        assert re.search(pattern, message), f"failure message lacks {pattern!r}: {message}"


def assert_refused(host: Instance, patterns: list[str], **role_vars: Any) -> None:
    before = snapshot(host)
    assert_refused_with(apply_role(host.name, **role_vars), patterns)
    assert snapshot(host) == before, "the host changed although the input was refused"


@dataclass
class CaseRuns:
    runs: dict[str, RoleRun]
    host_unchanged: bool


@pytest.fixture(scope="module")
def case_runs() -> CaseRuns:
    SYSTEMD_HOST.sh("mkdir -p -m 0700 /srv/locked")  # root's own directory: user ollama cannot pass through it
    before = snapshot(SYSTEMD_HOST)
    runs = apply_role_cases(SYSTEMD_HOST.name, {case: role_vars for case, role_vars, _ in CASES})
    return CaseRuns(runs, snapshot(SYSTEMD_HOST) == before)


def test_good_install_is_running() -> None:
    assert SYSTEMD_HOST.api("/api/version")["version"] == INSTALLED


@pytest.mark.parametrize(("case", "patterns"), [(c[0], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_refused_before_any_change(case_runs: CaseRuns, case: str, patterns: list[str]) -> None:
    assert_refused_with(case_runs.runs[case], patterns)
    assert case_runs.host_unchanged, "the host changed although every input was refused"
    assert SYSTEMD_HOST.api("/api/version")["version"] == INSTALLED


def test_host_without_systemd_is_refused() -> None:
    assert PLAIN_HOST.sh("cat /proc/1/comm").strip() == "sshd"  # sshd is PID 1 (tests/support/hosts.py)
    assert_refused(PLAIN_HOST, ["does not run systemd"])


def test_unsupported_os_is_refused() -> None:
    # Simulated honestly at the source the role reads: the host's os-release claims Fedora 40 for this one run,
    # as on a real Fedora host. The original file is put back afterwards.
    SYSTEMD_HOST.sh(
        "mv /etc/os-release /etc/os-release.cortex-test"
        " && printf 'NAME=\"Fedora Linux\"\\nID=fedora\\nVERSION_ID=40\\n' > /etc/os-release"
    )
    try:
        assert_refused(SYSTEMD_HOST, ["unsupported OS fedora 40", "supports debian 12/13, ubuntu 22/24"])
    finally:
        SYSTEMD_HOST.sh("mv -f /etc/os-release.cortex-test /etc/os-release")


def tampered_copy(directory: Path) -> Path:
    """0.34.3's archive with one byte flipped, under its own name (so sha256sum.txt's line for it applies)."""
    good = archive_path("0.34.3")
    tampered = directory / good.name
    tampered.parent.mkdir(parents=True, exist_ok=True)
    data = bytearray(good.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tampered.write_bytes(data)
    return tampered


def assert_still_running(invocation: str) -> None:
    assert SYSTEMD_HOST.unit("InvocationID") == invocation
    assert SYSTEMD_HOST.unit("ActiveState") == "active"
    assert SYSTEMD_HOST.api("/api/version")["version"] == INSTALLED
    assert INSTALLED in SYSTEMD_HOST.sh("/usr/local/bin/ollama --version")


def test_tampered_archive_leaves_the_running_version(tmp_path: Path) -> None:
    tampered = tampered_copy(tmp_path)
    invocation = SYSTEMD_HOST.unit("InvocationID")

    assert_refused(
        SYSTEMD_HOST,
        ["sha256 mismatch", re.escape(str(tampered))],
        ollama_version="0.34.3",
        ollama_archive_src=str(tampered),
        ollama_checksums_file=str(RELEASES / "0.34.3" / "sha256sum.txt"),
    )
    assert_still_running(invocation)


def test_tampered_mirror_download_leaves_the_running_version(tmp_path: Path) -> None:
    tampered = tampered_copy(tmp_path / "mirror" / "0.34.3")
    invocation = SYSTEMD_HOST.unit("InvocationID")
    with http_mirror(tmp_path / "mirror") as mirror:
        assert_refused(
            SYSTEMD_HOST,
            ["checksum", "did not match"],
            ollama_version="0.34.3",
            ollama_archive_src=f"{mirror.url}/0.34.3/{tampered.name}",
            ollama_checksums_file=str(RELEASES / "0.34.3" / "sha256sum.txt"),
            ollama_controller_cache_dir=str(tmp_path / "controller-cache"),
        )
        assert f"GET /0.34.3/{tampered.name}" in mirror.requests
    assert_still_running(invocation)


def test_unreachable_mirror_is_refused() -> None:
    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert_refused(
        SYSTEMD_HOST,
        ["cannot download", f"127.0.0.1:{port}"],
        ollama_version="0.34.3",
        ollama_archive_src=f"http://127.0.0.1:{port}/0.34.3/{archive_path('0.34.3').name}",
    )
