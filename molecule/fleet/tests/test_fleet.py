"""Three hosts (Debian 12, Ubuntu 22.04, Ubuntu 24.04) through the site playbook: a rolling upgrade one host at a
time while a cortex_client pool of all three keeps answering (no failed request, never more than one host down),
and a host that fails mid-run: reported, the others converged, converged itself by the next run."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from cortex_client import LLMRouter, TaskType
from tests.support.archives import RELEASES, archive_path
from tests.support.instances import Instance, ansible_env, http_mirror, instance_names

HOSTS = [Instance(name) for name in instance_names()]
PROJECT = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
VERSIONS = ("0.34.2", "0.34.3")


def url(host: Instance) -> str:
    return f"http://{host.sh('hostname -I').split()[0]}:11434"


def version(host: Instance) -> str:
    return str(host.api("/api/version")["version"])


def site(more_hosts: str = "", **extra_vars: Any) -> dict[str, Any]:
    """The site playbook on the fleet (json callback; Molecule's inventory, plus `more_hosts`); the report."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(extra_vars, f)
    env = ansible_env(PROJECT, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    cmd = [
        str(Path(sys.executable).with_name("ansible-playbook")),
        "-i", os.environ["MOLECULE_INVENTORY_FILE"], *(["-i", more_hosts] if more_hosts else []),
        "-e", f"@{f.name}", str(PROJECT / "playbooks" / "ollama.yml"),
    ]  # fmt: skip
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, timeout=1200)
    finally:
        os.unlink(f.name)
    report: dict[str, Any] = json.loads(run.stdout)
    report["rc"] = run.returncode
    return report


def failed_hosts(report: dict[str, Any]) -> set[str]:
    return {h for h, s in report["stats"].items() if s["failures"] or s["unreachable"]}


def failures(report: dict[str, Any]) -> list[str]:
    """host: task: message, for every failed or unreachable result (assertion messages)."""
    return [
        f"{host}: {task['task']['name']}: {str(result.get('msg', ''))[:400]}"
        for play in report["plays"]
        for task in play["tasks"]
        for host, result in task["hosts"].items()
        if result.get("failed") or result.get("unreachable")
    ]


def other_version() -> str:
    current = {version(h) for h in HOSTS}
    assert len(current) == 1, current
    return VERSIONS[0] if current == {VERSIONS[1]} else VERSIONS[1]


@contextmanager
def traffic(urls: list[str]) -> Iterator[dict[str, Any]]:
    """A client sending requests to the pool, and a probe of every host, until the block ends."""
    seen: dict[str, Any] = {"ok": 0, "failed": [], "max_down": 0, "down_at": []}
    stop = threading.Event()

    def client() -> None:
        router = LLMRouter(ollama_base_url=",".join(urls), ollama_model="tinyllama-double", local_only=True)
        with router:
            while not stop.is_set():
                try:
                    reply = router.complete([{"role": "user", "content": "ping"}], task_type=TaskType.USER_CHAT)
                    assert reply.content
                    seen["ok"] += 1
                except Exception as exc:  # every failure is recorded; the test asserts there are none
                    seen["failed"].append(repr(exc))

    def probe() -> None:
        with httpx.Client(timeout=0.5) as http:
            while not stop.is_set():
                down = []
                for u in urls:
                    try:
                        http.get(f"{u}/api/version").raise_for_status()
                    except httpx.HTTPError:
                        down.append(u)
                seen["max_down"] = max(seen["max_down"], len(down))
                if down:
                    seen["down_at"].append(down)
                time.sleep(0.1)

    threads = [threading.Thread(target=client), threading.Thread(target=probe)]
    for t in threads:
        t.start()
    try:
        yield seen
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)


def test_a_rolling_upgrade_one_host_at_a_time_drops_no_request(tmp_path: Path) -> None:
    target = other_version()
    urls = [url(h) for h in HOSTS]
    remote = f"/{target}/{archive_path(target).name}"
    # From a mirror into an empty controller cache: the first batch downloads, the others reuse the download.
    with http_mirror(RELEASES) as mirror, traffic(urls) as seen:
        time.sleep(2)
        report = site(
            ollama_version=target,
            ollama_serial=1,
            ollama_max_fail_percentage=0,
            ollama_archive_src=mirror.url + remote,
            ollama_controller_cache_dir=str(tmp_path / "controller-cache"),
        )
        time.sleep(2)
    assert report["rc"] == 0 and not failed_hosts(report), report["stats"]
    assert [r for r in mirror.requests if r.startswith("GET ")] == [f"GET {remote}"], mirror.requests
    assert [version(h) for h in HOSTS] == [target] * 3
    assert len(report["plays"]) == 3, "one batch per host"
    assert seen["failed"] == [], seen["failed"][:5]
    assert seen["ok"] > 20, seen
    assert seen["down_at"], "the probe saw each host restart"
    assert seen["max_down"] <= 1, seen["down_at"]


BLOCK_PORT = "systemctl stop ollama; systemd-run --unit=port-blocker python3 -m http.server 11434"


def test_a_host_that_fails_mid_run_is_reported_the_others_converge_and_a_rerun_converges_it() -> None:
    target = other_version()
    broken = HOSTS[-1]
    broken.sh(BLOCK_PORT)  # the new release cannot bind: its readiness wait fails on this host only
    try:
        report = site(ollama_version=target, ollama_ready_timeout=10)
        assert report["rc"] != 0
        assert failed_hosts(report) == {broken.name}, report["stats"]
        assert [version(h) for h in HOSTS[:-1]] == [target] * 2
    finally:
        broken.sh("systemctl stop port-blocker; systemctl reset-failed port-blocker; true")
    report = site(ollama_version=target)
    assert report["rc"] == 0 and not failed_hosts(report), report["stats"]
    assert [version(h) for h in HOSTS] == [target] * 3


def test_an_unreachable_host_is_reported_and_the_others_still_run(tmp_path: Path) -> None:
    """A fourth host in the inventory that does not answer (nothing listens where it should be)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    ghost = {"all": {"hosts": {"fleet-ghost": {"ansible_host": "127.0.0.1", "ansible_port": closed_port}}}}
    path = tmp_path / "ghost.yml"  # a second inventory: Molecule's group_vars still apply to every host
    path.write_text(yaml.safe_dump(ghost))
    before = [h.unit("InvocationID") for h in HOSTS]

    report = site(more_hosts=str(path))

    assert report["stats"]["fleet-ghost"]["unreachable"] > 0
    assert failed_hosts(report) == {"fleet-ghost"}, failures(report)
    for host in HOSTS:
        stats = report["stats"][host.name]
        assert stats["ok"] > 20 and stats["changed"] == 0, (host.name, stats)
    assert [h.unit("InvocationID") for h in HOSTS] == before, "the others ran to the end, and restarted nothing"
