#!/usr/bin/env python3
"""Test hosts: systemd containers reached over SSH, the one place that knows how they are made.

Every consumer (Molecule's create/destroy, the converge benchmark, tests/harness/try_in_container.sh) starts
hosts here. A host is a podman container from localhost/cortex-systemd:<distro> (tests/harness/build_images.sh)
with systemd as PID 1 and SYS_ADMIN, so systemd can build the unit's namespaces and the sandbox really applies.
Ansible reaches it the way fleets are reached: SSH with pipelining and a persistent connection (ControlPersist),
a fraction of the cost of the podman connection's several `podman exec` calls per task.

Networks:
  default   bridge with egress (apt works inside); sshd published on a free port of 127.0.0.1
  internal  a podman network with no route out: a real air-gapped host; reached at its address on the bridge
  plain     no systemd: sshd itself is PID 1 (a host the roles must refuse)

CLI (used by molecule/shared/create.yml and destroy.yml):
  python -m tests.support.hosts start < platforms.json   # [{name, distro, network?, systemd?}] -> instance configs
  python -m tests.support.hosts stop NAME...
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KEY = REPO / ".cache" / "ssh" / "id_ed25519"
LABEL = "cortex-test-host"
INTERNAL_NETWORK = "cortex_internal"
DISTROS = ("bookworm", "trixie", "jammy", "noble")
# SSH client options for every consumer; molecule adds the same ones (ControlMaster/ControlPersist) itself.
SSH_ARGS = (
    "-o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no -o LogLevel=ERROR -o IdentitiesOnly=yes "
    f"-o ControlMaster=auto -o ControlPersist=120s -o ControlPath={KEY.parent}/cm-%C"
)


@dataclass
class Host:
    """How Ansible reaches a test host; the keys are Molecule's instance-config keys."""

    instance: str
    address: str
    port: int
    user: str = "root"
    identity_file: str = str(KEY)

    def inventory_vars(self) -> dict[str, object]:
        return {
            "ansible_host": self.address,
            "ansible_port": self.port,
            "ansible_user": self.user,
            "ansible_private_key_file": self.identity_file,
            "ansible_ssh_common_args": SSH_ARGS,
            "ansible_ssh_pipelining": True,
        }


def _podman(*args: str, check: bool = True) -> str:
    proc = subprocess.run(["podman", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout.strip()


def ensure_key() -> Path:
    """The harness's SSH key pair (controller side, made once)."""
    if not KEY.exists():
        KEY.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", LABEL, "-f", str(KEY)], check=True)
    return KEY


def ensure_internal_network() -> None:
    if subprocess.run(["podman", "network", "exists", INTERNAL_NETWORK], check=False).returncode != 0:
        _podman("network", "create", "--internal", INTERNAL_NETWORK)


def start(name: str, distro: str, *, network: str = "default", systemd: bool = True) -> Host:
    """A fresh host (an existing container of that name is replaced), ready for SSH."""
    if distro not in DISTROS:
        raise ValueError(f"{name}: distro must be one of {', '.join(DISTROS)}, not {distro!r}")
    if network not in ("default", "internal"):
        raise ValueError(f"{name}: network must be default or internal, not {network!r}")
    key = ensure_key()
    _podman("rm", "-f", "-t", "0", name, check=False)
    args = [
        "run",
        "-d",
        "--name",
        name,
        "--hostname",
        name.replace("_", "-"),
        "--label",
        f"{LABEL}=1",
        "--cap-add",
        "SYS_ADMIN",
    ]
    # sshd's StrictModes accepts a root-owned 0644 file; the key pair itself never enters the host.
    args += ["-v", f"{key}.pub:/root/.ssh/authorized_keys:ro"]
    if network == "internal":
        ensure_internal_network()
        args += ["--network", INTERNAL_NETWORK]
    else:
        args += ["-p", "127.0.0.1::22"]
    if systemd:
        args += ["--systemd=always", f"localhost/cortex-systemd:{distro}", "/sbin/init"]
    else:
        args += [f"localhost/cortex-systemd:{distro}", "sh", "-c", "mkdir -p /run/sshd && exec /usr/sbin/sshd -D -e"]
    _podman(*args)
    if network == "internal":
        address = _podman("inspect", "-f", f"{{{{.NetworkSettings.Networks.{INTERNAL_NETWORK}.IPAddress}}}}", name)
        port = 22
    else:
        address, _, published = _podman("port", name, "22/tcp").splitlines()[0].rpartition(":")
        port = int(published)
    host = Host(name, address, port)
    _wait_ready(host, systemd=systemd)
    return host


def _wait_ready(host: Host, *, systemd: bool, timeout: float = 90.0) -> None:
    """Until SSH answers and systemd has finished booting (running or degraded)."""
    deadline = time.monotonic() + timeout
    probe = "systemctl is-system-running --wait" if systemd else "true"
    last = ""
    while time.monotonic() < deadline:
        proc = subprocess.run(
            ["ssh", *SSH_ARGS.replace("ControlMaster=auto", "ControlMaster=no").split(), "-o", "ConnectTimeout=3",
             "-i", host.identity_file, "-p", str(host.port), f"{host.user}@{host.address}", probe],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        last = (proc.stdout + proc.stderr).strip()
        if proc.returncode == 0 or last in ("running", "degraded"):
            return
        time.sleep(0.3)
    raise RuntimeError(f"{host.instance}: not ready over SSH within {timeout:.0f}s: {last}")


def stop(*names: str) -> None:
    if names:
        _podman("rm", "-f", "-t", "0", *names, check=False)


def start_many(platforms: list[dict[str, object]]) -> list[Host]:
    """Start hosts side by side (each mostly waits for its systemd to boot)."""
    ensure_key()
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(platforms))) as pool:
        futures = [
            pool.submit(
                start,
                str(p["name"]),
                str(p["distro"]),
                network=str(p.get("network", "default")),
                systemd=bool(p.get("systemd", True)),
            )
            for p in platforms
        ]
        return [f.result() for f in futures]


def main(argv: list[str]) -> int:
    if argv[:1] == ["start"]:
        hosts = start_many(json.load(sys.stdin))
        json.dump([asdict(h) for h in hosts], sys.stdout)
        return 0
    if argv[:1] == ["stop"]:
        stop(*argv[1:])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    os.umask(0o022)  # the bind-mounted authorized_keys must not be group/world writable
    raise SystemExit(main(sys.argv[1:]))
