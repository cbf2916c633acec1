"""Helpers for the Molecule verifiers (pytest): look inside an instance, re-run a role against it.

Instances are Molecule's test hosts (tests/support/hosts.py), reached through testinfra's backend for the
scenario's inventory: SSH over a persistent connection, the same way Ansible reaches them.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import http.server
import json
import os
import shlex
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import testinfra
import yaml

REPO = Path(__file__).resolve().parents[2]
APPLY_PLAYBOOK = REPO / "molecule" / "shared" / "apply_role.yml"
# systemd's "unit started" journal message (SD_MESSAGE_UNIT_STARTED), one per start of a unit.
UNIT_STARTED = "39f53479d3a045ac8e11786248231fbf"
API = "http://127.0.0.1:11434"
_GET = "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())"
_WAIT = (
    "import sys, time, urllib.request\n"
    "for _ in range(150):\n"
    "    try: print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode()); break\n"
    "    except OSError: time.sleep(0.2)\n"
    'else: sys.exit(sys.argv[1] + " did not answer within 30 s")'
)


@dataclass
class Mirror:
    """A plain HTTP server on the controller's loopback, standing in for an internal release mirror."""

    url: str
    requests: list[str] = field(default_factory=list)
    denied: list[str] = field(default_factory=list)  # requests ("GET /path") refused for want of credentials


@contextlib.contextmanager
def http_mirror(root: Path, *, basic_auth: str = "") -> Iterator[Mirror]:
    """Serve root over HTTP on a free loopback port, recording the paths requested (role downloads run
    on the controller, so the mirror only has to be reachable from here). basic_auth "user:password": requests
    without them get 401 with a Basic challenge, as a protected mirror answers."""
    mirror = Mirror("")
    expected = "Basic " + base64.b64encode(basic_auth.encode()).decode()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            mirror.requests.append(f"{self.command} {self.path}")

        def send_head(self) -> Any:
            if basic_auth and self.headers.get("Authorization") != expected:
                mirror.denied.append(f"{self.command} {self.path}")
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="mirror"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            return super().send_head()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    mirror.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield mirror
    finally:
        server.shutdown()
        server.server_close()


def instance_names() -> list[str]:
    """The scenario's instances, in platform order (from Molecule's inventory)."""
    with open(os.environ["MOLECULE_INVENTORY_FILE"]) as f:
        return list(yaml.safe_load(f)["all"]["hosts"])


@dataclass
class Instance:
    """One Molecule instance, addressed by its name."""

    name: str

    @functools.cached_property
    def host(self) -> testinfra.host.Host:
        return testinfra.get_host(f"ansible://{self.name}", ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"])

    def sh(self, script: str, *, check: bool = True, stdin: str | None = None) -> str:
        if stdin is not None:  # the backend has no stdin: carry it inside the command
            data = base64.b64encode(stdin.encode()).decode()
            script = f"echo {data} | base64 -d | sh -c {shlex.quote(script)}"
        result = self.host.run(f"sh -c {shlex.quote(script)}")
        if check and result.rc != 0:
            raise AssertionError(f"{self.name}: `{script}` exited {result.rc}: {result.stderr}")
        return str(result.stdout)

    def api(self, path: str) -> Any:
        """GET an Ollama API path from inside the instance (the server binds loopback only)."""
        return json.loads(self.sh(f"python3 -c '{_GET}' {API}{path}"))

    def restart(self) -> str:
        """Restart ollama.service as an operator would; the version it answers with once ready (30 s at most)."""
        self.sh("systemctl reset-failed ollama.service; systemctl restart ollama.service")
        return json.loads(self.sh(f"python3 -c '{_WAIT}' {API}/api/version"))["version"]

    def unit(self, prop: str, unit: str = "ollama.service") -> str:
        return self.sh(f"systemctl show -p {prop} --value {unit}").strip()

    def starts(self, unit: str = "ollama.service") -> int:
        """How many times systemd has started the unit since the container booted."""
        out = self.sh(f"journalctl -q -o cat MESSAGE_ID={UNIT_STARTED} UNIT={unit}", check=False)
        return len(out.splitlines())

    @contextlib.contextmanager
    def small_filesystem(self, path: str, *, spare_mib: int, spare_inodes: int) -> Iterator[None]:
        """`path` (ollama's model store, say) moved onto a tmpfs with room for what it holds plus `spare_mib` MiB
        and `spare_inodes` inodes, ollama.service restarted on it; afterwards the original directory is back,
        unchanged, and the service too."""
        used_kib = int(self.sh(f"du -sk {path}").split()[0])  # page-rounded, as tmpfs counts
        used_inodes = int(self.sh(f"find {path} | wc -l"))
        size_kib = used_kib + spare_mib * 1024
        self.sh(
            f"set -e; systemctl stop ollama; rm -rf /root/small-fs-copy; cp -a {path} /root/small-fs-copy; "
            f"mount -t tmpfs -o size={size_kib}k,nr_inodes={used_inodes + spare_inodes},mode=0755 tmpfs {path}; "
            f"cp -a /root/small-fs-copy/. {path}/; chown --reference=/root/small-fs-copy {path}"
        )
        try:
            self.restart()
            yield
        finally:
            self.sh(f"systemctl stop ollama; umount {path}; rm -rf /root/small-fs-copy")
            self.restart()

    def ssh_command(self, remote: str) -> list[str]:
        """ssh to the instance as Ansible reaches it (its inventory: address, port, key, options with the shared
        control socket), running `remote`: for streams of bytes the backend's run() cannot carry."""
        host = self.connection()
        return [
            "ssh", "-p", str(host["ansible_port"]), "-i", host["ansible_private_key_file"],
            *shlex.split(host["ansible_ssh_common_args"]), f"{host['ansible_user']}@{host['ansible_host']}", remote,
        ]  # fmt: skip

    def connection(self) -> dict[str, Any]:
        """The instance's connection variables, from the scenario's inventory."""
        with open(os.environ["MOLECULE_INVENTORY_FILE"]) as f:
            return dict(yaml.safe_load(f)["all"]["hosts"][self.name])

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
    report: dict[str, Any]  # the json callback's whole report (per-task results and timestamps)

    def __str__(self) -> str:
        return f"rc={self.rc} stats={self.stats} failures={self.failures}"

    __repr__ = __str__  # assertion messages show the failures, not the whole output


def apply_role(
    instance: str,
    *,
    role: str = "ollama",
    tasks: str = "main",
    check: bool = False,
    diff: bool = False,
    tags: str = "",
    verbose: bool = False,
    then: str = "",
    **role_vars: Any,
) -> RoleRun:
    """Run molecule/shared/apply_role.yml (one role's tasks/<tasks>.yml; --check, --diff, --tags if asked) against
    one instance, role variables as extra vars; `then`: one more of the role's task files after it (the gate).
    verbose: at -vvv with the default output (what an operator sees
    when debugging; the run then has no per-task report, only its rc and output)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(role_vars, f)
    args = ["--limit", instance, "-e", f"@{f.name}", "-e", f"apply_role={role}", "-e", f"apply_role_tasks={tasks}"]
    args += [*(["--check"] if check else []), *(["--diff"] if diff else []), *(["--tags", tags] if tags else [])]
    args += ["-e", f"apply_role_then={then}"] if then else []
    try:
        if verbose:
            proc = _run_playbook([*args, "-vvv"], callback="ansible.builtin.default")
            return RoleRun(proc.returncode, {}, [], proc.stdout + proc.stderr, {})
        proc, report = _apply_playbook(args)
    finally:
        os.unlink(f.name)
    return _outcome(instance, proc.returncode, proc, report)


def apply_role_cases(
    instance: str,
    cases: dict[str, dict[str, Any]],
    *,
    role: str = "ollama",
    playbook: Path = APPLY_PLAYBOOK,
    extra_vars: dict[str, Any] | None = None,
) -> dict[str, RoleRun]:
    """The role applied to one instance once per case, side by side in one ansible-playbook run, as a fleet run
    applies it to many hosts: each case is an inventory alias of the instance (its address and credentials) whose
    host variables are the case's, overriding the scenario's group variables as apply_role's extra vars do. One
    playbook start for all cases; a case's rc is 2 where it failed or was unreachable, else 0. The aliases share the
    instance's SSH connection, and sshd allows 10 sessions on one: hence the forks. `playbook`: another playbook of
    the same shape as apply_role.yml (one that sets play keywords a test needs); `extra_vars` for every case (they
    beat the role's own set_fact, as host variables do not)."""
    connection = Instance(instance).connection()
    aliases = {case: f"{instance}.{case}" for case in cases}
    inventory = {"all": {"hosts": {aliases[case]: {**connection, **cases[case]} for case in cases}}}
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        yaml.safe_dump(inventory, f)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as e:
        json.dump(extra_vars or {}, e)
    try:
        args = ["-i", f.name, "--limit", ",".join(aliases.values()), "--forks", "8", "-e", f"apply_role={role}"]
        proc, report = _apply_playbook([*args, "-e", f"@{e.name}"], playbook)
        if proc.returncode not in (0, 2, 4):  # 2: some host failed, 4: some host was unreachable
            raise AssertionError(f"the run itself failed (rc={proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr}")
    finally:
        os.unlink(e.name)
        os.unlink(f.name)
    runs = {}
    for case, alias in aliases.items():
        stats = report["stats"].get(alias, {})
        runs[case] = _outcome(alias, 2 if stats.get("failures") or stats.get("unreachable") else 0, proc, report)
    return runs


def ansible_env(root: Path = REPO, **more: str) -> dict[str, str]:
    """The environment of an ansible-playbook run of a checkout's roles and the plugins they share."""
    paths = {"ANSIBLE_ROLES_PATH": str(root / "roles"), "ANSIBLE_ACTION_PLUGINS": str(root / "plugins" / "action")}
    return {**os.environ, **paths, **more}


def _run_playbook(args: list[str], callback: str, playbook: Path = APPLY_PLAYBOOK) -> subprocess.CompletedProcess[str]:
    """ansible-playbook molecule/shared/apply_role.yml (or `playbook`) on the scenario's inventory."""
    env = ansible_env(ANSIBLE_STDOUT_CALLBACK=callback, ANSIBLE_RETRY_FILES_ENABLED="false")
    playbook_bin = Path(sys.executable).with_name("ansible-playbook")
    cmd = [str(playbook_bin), "-i", os.environ["MOLECULE_INVENTORY_FILE"], *args, str(playbook)]
    return subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, timeout=900)


def _apply_playbook(
    args: list[str], playbook: Path = APPLY_PLAYBOOK
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """The playbook with the json callback, and its report."""
    proc = _run_playbook(args, "ansible.builtin.json", playbook)
    try:
        return proc, json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"ansible-playbook printed no JSON (rc={proc.returncode}):\n{proc.stderr}") from None


def _outcome(host: str, rc: int, proc: subprocess.CompletedProcess[str], report: dict[str, Any]) -> RoleRun:
    """One host's part of a run: its failed tasks' messages and its stats."""
    failures = [
        f"{task['task']['name']}: {message}"
        for play in report["plays"]
        for task in play["tasks"]
        for name, result in task["hosts"].items()
        if name == host and (result.get("failed") or result.get("unreachable")) and not result.get("ignored")
        for message in _messages(result)
    ]
    return RoleRun(rc, report["stats"].get(host, {}), failures, proc.stdout + proc.stderr, report)


def _messages(result: dict[str, Any]) -> list[str]:
    """A failed result's message, or those of its failed loop items."""

    def message(r: dict[str, Any]) -> str:
        return " ".join(str(part) for part in (r.get("msg", ""), r.get("stderr", "")) if part) or str(r)

    items = [item for item in result.get("results", []) if item.get("failed")]
    return [message(item) for item in items] or [message(result)]
