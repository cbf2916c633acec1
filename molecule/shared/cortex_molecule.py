"""Helpers for the Molecule verifiers (pytest): run the ollama role against an instance, look inside it.

Instances are reached with `podman exec` rather than testinfra's `host` fixture: testinfra has no backend
for the `containers.podman.podman` connection and would fall back to one Ansible run per command.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
APPLY_PLAYBOOK = Path(__file__).with_name("apply_ollama.yml")
RELEASES = REPO / ".cache" / "double-releases"
# systemd's "unit started" journal message (SD_MESSAGE_UNIT_STARTED), one per start of a unit.
UNIT_STARTED = "39f53479d3a045ac8e11786248231fbf"
API = "http://127.0.0.1:11434"
_GET = "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())"


def archive_path(version: str, arch: str = "amd64") -> Path:
    """The double's release archive for a version: .tgz below 0.14.0, .tar.zst from it (like Ollama's)."""
    major, minor = (int(part) for part in version.split(".")[:2])
    extension = "tgz" if (major, minor) < (0, 14) else "tar.zst"
    return RELEASES / version / f"ollama-linux-{arch}.{extension}"


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


@dataclass
class Mirror:
    """A plain HTTP server on the controller's loopback, standing in for an internal release mirror."""

    url: str
    requests: list[str] = field(default_factory=list)


@contextlib.contextmanager
def http_mirror(root: Path) -> Iterator[Mirror]:
    """Serve root over HTTP on a free loopback port, recording the paths requested (role downloads run
    on the controller, so the mirror only has to be reachable from here)."""
    mirror = Mirror("")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            mirror.requests.append(f"{self.command} {self.path}")

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    mirror.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield mirror
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Instance:
    """One Molecule instance (a podman container), addressed by its name."""

    name: str

    def sh(self, script: str, *, check: bool = True, stdin: str | None = None) -> str:
        proc = subprocess.run(
            ["podman", "exec", "-i", self.name, "sh", "-c", script],
            check=False,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"{self.name}: `{script}` exited {proc.returncode}: {proc.stderr}")
        return proc.stdout

    def api(self, path: str) -> Any:
        """GET an Ollama API path from inside the instance (the server binds loopback only)."""
        return json.loads(self.sh(f"python3 -c '{_GET}' {API}{path}"))

    def unit(self, prop: str, unit: str = "ollama.service") -> str:
        return self.sh(f"systemctl show -p {prop} --value {unit}").strip()

    def starts(self, unit: str = "ollama.service") -> int:
        """How many times systemd has started the unit since the container booted."""
        out = self.sh(f"journalctl -q -o cat MESSAGE_ID={UNIT_STARTED} UNIT={unit}", check=False)
        return len(out.splitlines())

    def file_hashes(self, root: str) -> dict[str, str]:
        """sha256 of every regular file under root, keyed by path."""
        out = self.sh(f"find {root} -type f -exec sha256sum {{}} +")
        return {path: digest for digest, path in (line.split(maxsplit=1) for line in out.splitlines())}


@dataclass
class RoleRun:
    """Outcome of one ansible-playbook run of the role, from the json stdout callback."""

    rc: int
    stats: dict[str, int]
    failures: list[str]
    output: str

    def __str__(self) -> str:
        return f"rc={self.rc} stats={self.stats} failures={self.failures}"


def apply_role(instance: str, **role_vars: Any) -> RoleRun:
    """Run molecule/shared/apply_ollama.yml against one instance, role variables given as extra vars."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(role_vars, f)
    env = {
        **os.environ,
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
        "ANSIBLE_ROLES_PATH": str(REPO / "roles"),
        "ANSIBLE_RETRY_FILES_ENABLED": "false",
    }
    playbook_bin = Path(sys.executable).with_name("ansible-playbook")
    cmd = [
        str(playbook_bin),
        "-i",
        os.environ["MOLECULE_INVENTORY_FILE"],
        "--limit",
        instance,
        "-e",
        f"@{f.name}",
        str(APPLY_PLAYBOOK),
    ]
    try:
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, timeout=900)
    finally:
        os.unlink(f.name)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"ansible-playbook printed no JSON (rc={proc.returncode}):\n{proc.stderr}") from None
    failures = [
        f"{task['task']['name']}: {message}"
        for play in report["plays"]
        for task in play["tasks"]
        for host, result in task["hosts"].items()
        if host == instance and (result.get("failed") or result.get("unreachable")) and not result.get("ignored")
        for message in _messages(result)
    ]
    stats = report["stats"].get(instance, {})
    return RoleRun(proc.returncode, stats, failures, proc.stdout + proc.stderr)


def _messages(result: dict[str, Any]) -> list[str]:
    """A failed result's message, or those of its failed loop items."""
    items = [item for item in result.get("results", []) if item.get("failed")]
    return [str(item.get("msg", item)) for item in items] or [str(result.get("msg", result))]
