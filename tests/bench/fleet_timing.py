#!/usr/bin/env python3
"""Fleet timing of the site playbook: one host against three, side by side in one run.

Four fresh test hosts (`tests/support/hosts.py`, reached over SSH as fleets are): one Debian 12 host alone, then a
fleet of Debian 12, Ubuntu 22.04 and Ubuntu 24.04 together (Ansible's forks, no serial), each converged fresh and
then re-run (which must report changed=0), single and fleet interleaved so load hits both alike. All four roles
run (ollama installs the test double's release air-gapped, cortex_env writes its file; no models, so the timing is
the provisioning's own). Prints a table and rewrites its section of docs/benchmarks.md.

Usage: .venv/bin/python -m tests.bench.fleet_timing [--no-docs]
Exit status 1 if a run fails or a re-run changes anything.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from tests.bench.converge_timing import DOCS, REPO, Run, playbook
from tests.harness.build_double_releases import archive_name
from tests.support import hosts
from tests.support.archives import ARCH, RELEASES

SECTION = "## Fleet: converge of one host and of three"
VERSION = "0.34.3"
SINGLE = ["fleetbench-one-bookworm"]
FLEET = ["fleetbench-bookworm", "fleetbench-jammy", "fleetbench-noble"]


def host_cpu_seconds(names: list[str]) -> float:
    """CPU time the test hosts' containers have used so far (cgroup v1 cpuacct, or v2 cpu.stat)."""
    total = 0.0
    for name in names:
        inspect = ["podman", "inspect", "-f", "{{.State.CgroupPath}}", name]
        cgroup = subprocess.run(inspect, capture_output=True, text=True, check=True).stdout.strip().lstrip("/")
        v1 = Path("/sys/fs/cgroup/cpuacct", cgroup, "cpuacct.usage")
        if v1.exists():
            total += int(v1.read_text()) / 1e9
        else:
            stat = Path("/sys/fs/cgroup", cgroup, "cpu.stat").read_text()
            total += int(re.search(r"^usage_usec (\d+)", stat, re.M).group(1)) / 1e6  # type: ignore[union-attr]
    return total


def with_cpu(names: list[str], run: Callable[[], Run]) -> tuple[Run, float]:
    """The run and the CPU seconds it cost: the controller's (ansible-playbook and its ssh) plus the hosts'."""

    def controller() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    before = controller() + host_cpu_seconds(names)
    result = run()
    return result, controller() + host_cpu_seconds(names) - before


def write_docs(body_text: str) -> None:
    body = f"""{SECTION}

Command: `.venv/bin/python -m tests.bench.fleet_timing` (about 4 minutes on the 2-core build machine). Four fresh
test hosts over SSH: one Debian 12 host alone, and a fleet of Debian 12, Ubuntu 22.04 and Ubuntu 24.04 converged
together by one `ansible-playbook` (forks, no serial); each gets a fresh converge and a re-run that must report
`changed=0`, single and fleet interleaved. The whole site playbook runs (ollama from the test double's archive,
air-gapped; cortex_env; no models). Wall time of `ansible-playbook`, start-up included.

{body_text}

Here the controller and all three hosts share the build machine's two cores: the hosts' own work (unpacking the
archive, systemd, the server's start) runs on the cores the controller needs, so three hosts cost more than one
even though Ansible drives them in parallel (forks 5). On a real fleet each host brings its own CPU and only the
controller's share grows with the host count.
"""
    text = DOCS.read_text()
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: body + "\n", text).rstrip("\n") + "\n"
    else:
        marker = "## Whole test suite"
        text = text.replace(marker, body + "\n" + marker, 1)
    DOCS.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    args = parser.parse_args()
    subprocess.run(["tests/harness/build_images.sh", *hosts.DISTROS], check=True, cwd=REPO, capture_output=True)
    build = ["-m", "tests.harness.build_double_releases", "--out", str(RELEASES), "--versions", VERSION]
    subprocess.run([sys.executable, *build, "--arch", ARCH], check=True, cwd=REPO, capture_output=True)
    release = RELEASES / VERSION
    load = os.getloadavg()[0]
    print(f"load average at start: {load:.1f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        extra = Path(tmp, "vars.json")
        extra.write_text(
            json.dumps(
                {
                    "ollama_version": VERSION,
                    "ollama_archive_src": str(release / archive_name(VERSION, ARCH)),
                    "ollama_checksums_file": str(release / "sha256sum.txt"),
                    "ollama_no_cloud": True,
                    "ollama_controller_cache_dir": str(Path(tmp, "controller-cache")),
                }
            )
        )
        distros = ["bookworm", "bookworm", "jammy", "noble"]
        started = hosts.start_many([{"name": n, "distro": d} for n, d in zip(SINGLE + FLEET, distros, strict=True)])
        try:
            inventory = Path(tmp, "inventory.json")
            inventory.write_text(json.dumps({"all": {"hosts": {h.instance: h.inventory_vars() for h in started}}}))
            runs: dict[str, Run] = {}
            cpu: dict[str, float] = {}
            for kind in ("fresh", "re-run"):
                for label, names in (("one", SINGLE), ("three", FLEET)):
                    key = f"{label} {kind}"
                    runs[key], cpu[key] = with_cpu(names, lambda n=names: playbook(REPO, inventory, ",".join(n), extra))
        finally:
            hosts.stop(*SINGLE, *FLEET)
    ok = all(r.ok for r in runs.values()) and runs["one re-run"].changed == 0 and runs["three re-run"].changed == 0
    cores = os.cpu_count() or 1
    rows = [
        "| run | one host: wall (s) | CPU (s) | three hosts: wall (s) | CPU (s) | wall three / one | CPU three / one "
        f"| three hosts' floor on {cores} cores: CPU / {cores} (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for kind in ("fresh", "re-run"):
        one, three = runs[f"one {kind}"].seconds, runs[f"three {kind}"].seconds
        cpu_one, cpu_three = cpu[f"one {kind}"], cpu[f"three {kind}"]
        rows.append(
            f"| {kind} converge | {one:.1f} | {cpu_one:.1f} | {three:.1f} | {cpu_three:.1f} | {three / one:.2f}x "
            f"| {cpu_three / cpu_one:.2f}x | {cpu_three / cores:.1f} |"
        )
    rows.append("")
    rows.append(
        "CPU: the controller's (ansible-playbook, its workers and ssh) plus the test hosts' containers (their cgroups)."
    )
    rows.append(f"Re-runs changed: one host {runs['one re-run'].changed}, three hosts {runs['three re-run'].changed}.")
    one_fresh, cpu_fresh = runs["one fresh"], cpu["one fresh"]
    rows.append(
        f"One host alone keeps {cpu_fresh / one_fresh.seconds:.2f} cores busy in a fresh converge; three need "
        f"{cpu['three fresh'] / cpu_fresh:.2f} times its CPU, so on {cores} cores they cannot finish in less than "
        f"{cpu['three fresh'] / cores:.1f} s, {cpu['three fresh'] / cores / one_fresh.seconds:.2f}x one host's time."
    )
    fresh = runs["three fresh"].seconds / runs["one fresh"].seconds
    rows.append(
        f"Load average at the start: {load:.1f}. Goal for a fresh converge, three / one <= 1.5x: "
        f"{'met' if fresh <= 1.5 else '**missed**'} ({fresh:.2f}x)."
    )
    table = "\n".join(rows)
    print(table)
    if not args.no_docs:
        write_docs(table)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
