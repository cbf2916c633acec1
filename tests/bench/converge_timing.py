#!/usr/bin/env python3
"""Converge timing of the site playbook, before and after, side by side in one run.

  before  the role and playbook as of --baseline (a git ref), over the podman connection (`podman exec`),
          which is how the harness reached test hosts until then
  after   the working tree's role and playbook over SSH with pipelining and ControlPersist (tests/support/hosts.py),
          which is how the harness and fleets reach hosts now

For each distro, two fresh test hosts (one per side) get a fresh converge and an idempotent re-run, interleaved
(before, after, before, after) so machine load hits both alike; every re-run must report changed=0. Then one
re-run of all "after" hosts together (forks), and the cost of one connection call on each transport (a no-op
command, median of 20). Where the time goes: mean seconds per task and the slowest tasks of a fresh converge,
from the json callback's per-task timestamps. Prints a table and rewrites its section of docs/benchmarks.md.

Usage: .venv/bin/python -m tests.bench.converge_timing [--distros bookworm ...] [--baseline REF] [--no-docs]
Exit status 1 if a run fails or a re-run changes anything.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime as dt
from pathlib import Path
from typing import Any

from tests.harness.build_double_releases import archive_name
from tests.support import hosts
from tests.support.archives import ARCH, RELEASES

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs" / "benchmarks.md"
SECTION = "## Provisioning: converge time of role ollama"
BASELINE = "b7c7801"  # the last commit whose harness reached hosts with `podman exec`


class Run:
    """One ansible-playbook run: wall time, recap and per-task durations (json callback)."""

    def __init__(self, seconds: float, report: dict[str, Any]) -> None:
        self.seconds = seconds
        self.stats: dict[str, dict[str, int]] = report["stats"]
        self.tasks: list[tuple[str, float]] = []
        for play in report["plays"]:
            for task in play["tasks"]:
                d = task["task"]["duration"]
                seconds = (_ts(d["end"]) - _ts(d["start"])) if "end" in d else 0.0
                self.tasks.append((task["task"]["name"], seconds))

    @property
    def ok(self) -> bool:
        return not any(s["failures"] or s["unreachable"] for s in self.stats.values())

    @property
    def changed(self) -> int:
        return sum(s["changed"] for s in self.stats.values())

    def per_task(self) -> float:
        return self.seconds / max(1, len(self.tasks))


def _ts(text: str) -> float:
    return dt.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def playbook(root: Path, inventory: Path, limit: str, extra: Path) -> Run:
    # Bytecode cached, as on a controller in the field: where the environment forbids it (some CI images), every
    # ansible-playbook start would compile ansible anew, about a second of CPU on each side.
    env = {
        **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
        "ANSIBLE_CONFIG": str(root / "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": str(root / "roles"),
        "ANSIBLE_ACTION_PLUGINS": str(root / "plugins" / "action"),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
    }
    cmd = [str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(inventory), "--limit", limit]
    cmd += ["-e", f"@{extra}", str(root / "playbooks" / "ollama.yml")]
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=root, env=env, check=False)
    seconds = time.monotonic() - start
    try:
        return Run(seconds, json.loads(proc.stdout))
    except (json.JSONDecodeError, KeyError):
        raise SystemExit(f"ansible-playbook --limit {limit} failed (rc={proc.returncode}):\n{proc.stderr}") from None


def call_cost(name: str, ssh_host: hosts.Host | None) -> float:
    """Median seconds of one no-op command on a host: `podman exec`, or SSH over the persistent connection."""
    if ssh_host is None:
        cmd = ["podman", "exec", name, "true"]
    else:
        cmd = ["ssh", *hosts.SSH_ARGS.split(), "-i", ssh_host.identity_file, "-p", str(ssh_host.port)]
        cmd += [f"root@{ssh_host.address}", "true"]
    times = []
    for _ in range(20):
        start = time.monotonic()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.monotonic() - start)
    return statistics.median(times)


def write_docs(command: str, body_text: str) -> None:
    body = f"""{SECTION}

Command (from the repository root; about 10 minutes on the 2-core build machine):

```bash
{command}
```

How it measures: two fresh test hosts per distro (`tests/support/hosts.py`: systemd containers with SYS_ADMIN and
sshd), one per side. **Before** is the role and playbook as of the baseline commit over the podman connection (the
harness until then: every task pays several `podman exec` calls, no pipelining). **After** is the current role
over SSH with pipelining and ControlPersist, as fleets are reached. Both install the Ollama test double's release
archive air-gapped (`ollama_archive_src` + `ollama_checksums_file`); each gets a fresh converge and an
idempotent re-run (which must report `changed=0`), interleaved so load hits both alike. Wall time of
`ansible-playbook` includes its start-up (~2 s).

{body_text}
"""
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: body + "\n", text).rstrip("\n") + "\n"
    else:
        text = text.rstrip("\n") + "\n\n" + body
    DOCS.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--distros", nargs="+", default=list(hosts.DISTROS), choices=hosts.DISTROS)
    parser.add_argument("--version", default="0.34.3", help="double release to install (default 0.34.3)")
    parser.add_argument("--baseline", default=BASELINE, help=f"git ref of the 'before' side (default {BASELINE})")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    parser.add_argument(
        "--before-over-ssh", action="store_true", help="reach the 'before' hosts over SSH too: compares the roles alone"
    )
    args = parser.parse_args()

    subprocess.run(["tests/harness/build_images.sh", *args.distros], check=True, cwd=REPO, capture_output=True)
    build = ["-m", "tests.harness.build_double_releases", "--out", str(RELEASES), "--versions", args.version]
    subprocess.run(
        [sys.executable, *build, "--arch", ARCH],
        check=True,
        cwd=REPO,
        capture_output=True,
    )
    release = RELEASES / args.version
    transport = "SSH" if args.before_over_ssh else "podman exec"
    lines = [f"load average at start: {os.getloadavg()[0]:.1f}; baseline {args.baseline} over {transport}"]
    print(lines[0], flush=True)
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        baseline = Path(tmp, "baseline")
        baseline.mkdir()
        paths = ["roles", "playbooks", "ansible.cfg"]
        archive = subprocess.run(["git", "archive", args.baseline, *paths], cwd=REPO, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(baseline)], input=archive.stdout, check=True)
        extra = Path(tmp, "vars.json")
        extra.write_text(
            json.dumps(
                {
                    "ollama_version": args.version,
                    "ollama_archive_src": str(release / archive_name(args.version, ARCH)),
                    "ollama_checksums_file": str(release / "sha256sum.txt"),
                    "ollama_no_cloud": True,
                    "ollama_controller_cache_dir": str(Path(tmp, "controller-cache")),
                }
            )
        )
        before_names = [f"bench-before-{d}" for d in args.distros]
        after_names = [f"bench-after-{d}" for d in args.distros]
        started = hosts.start_many(
            [{"name": n, "distro": d} for n, d in zip(before_names + after_names, args.distros * 2, strict=True)]
        )
        ssh_hosts = {h.instance: h for h in started}
        inventory = Path(tmp, "inventory.json")
        inventory.write_text(
            json.dumps(
                {
                    "all": {
                        "hosts": {
                            n: ssh_hosts[n].inventory_vars()
                            if args.before_over_ssh
                            else {"ansible_connection": "containers.podman.podman"}
                            for n in before_names
                        }
                        | {n: ssh_hosts[n].inventory_vars() for n in after_names}
                    }
                }
            )
        )
        rows = []
        for distro, before, after in zip(args.distros, before_names, after_names, strict=True):
            b_fresh = playbook(baseline, inventory, before, extra)
            a_fresh = playbook(REPO, inventory, after, extra)
            b_rerun = playbook(baseline, inventory, before, extra)
            a_rerun = playbook(REPO, inventory, after, extra)
            runs = (b_fresh, a_fresh, b_rerun, a_rerun)
            ok = ok and all(r.ok for r in runs) and b_rerun.changed == 0 and a_rerun.changed == 0
            rows.append((distro, *runs))
            lines.append(
                f"{distro}: fresh {b_fresh.seconds:.1f} s -> {a_fresh.seconds:.1f} s "
                f"({a_fresh.seconds / b_fresh.seconds:.2f}x), idempotent re-run {b_rerun.seconds:.1f} s -> "
                f"{a_rerun.seconds:.1f} s ({a_rerun.seconds / b_rerun.seconds:.2f}x, changed={a_rerun.changed}); "
                f"per task {b_rerun.per_task():.2f} s -> {a_rerun.per_task():.2f} s"
            )
            print(lines[-1], flush=True)
        fleet = playbook(REPO, inventory, ",".join(after_names), extra)
        ok = ok and fleet.ok and fleet.changed == 0
        single = statistics.mean(r[4].seconds for r in rows)
        lines.append(
            f"all {len(after_names)} 'after' hosts in one re-run: {fleet.seconds:.1f} s (changed={fleet.changed}) "
            f"= {fleet.seconds / single:.2f}x one host's re-run (mean {single:.1f} s)"
        )
        podman_call = call_cost(after_names[0], None)
        ssh_call = call_cost(after_names[0], ssh_hosts[after_names[0]])
        lines.append(
            f"one no-op command: podman exec {podman_call * 1000:.0f} ms, SSH (persistent) {ssh_call * 1000:.0f} ms"
        )
        lines.append(f"load average at end: {os.getloadavg()[0]:.1f}")
        print("\n".join(lines[-3:]))
        hosts.stop(*before_names, *after_names)

    table = "\n".join(
        [
            "| host | fresh: before | fresh: after | after / before | re-run: before | re-run: after | after / before "
            "| changed on re-run |",
            "|---|---|---|---|---|---|---|---|",
        ]
        + [
            f"| {d} | {bf.seconds:.1f} s | {af.seconds:.1f} s | {af.seconds / bf.seconds:.2f}x | {br.seconds:.1f} s "
            f"| {ar.seconds:.1f} s | {ar.seconds / br.seconds:.2f}x | {br.changed} / {ar.changed} |"
            for d, bf, af, br, ar in rows
        ]
        + [f"| all {len(rows)} 'after' hosts in one re-run | | | | | {fleet.seconds:.1f} s | | {fleet.changed} |"]
    )
    slowest = sorted(rows[0][2].tasks, key=lambda task: -task[1])[:5]
    where = "\n".join(f"- {name}: {seconds:.1f} s" for name, seconds in slowest)
    body_text = f"""{table}

Where the time goes (the "after" side): one no-op command costs {podman_call * 1000:.0f} ms through `podman exec`
and {ssh_call * 1000:.0f} ms over the persistent SSH connection; a re-run's mean cost per task fell from
{statistics.mean(r[3].per_task() for r in rows):.2f} s to {statistics.mean(r[4].per_task() for r in rows):.2f} s.
The slowest tasks of a fresh converge ({rows[0][0]}, after):

{where}

Run of {datetime.date.today().isoformat()} on the build machine ({platform.system()} {platform.machine()}, \
{os.cpu_count()} CPUs, shared with other jobs), output:

```text
{chr(10).join(lines)}
```"""
    print("\n" + body_text)
    print("\n" + ("all runs succeeded, every re-run changed nothing" if ok else "FAILED: see above"))
    if not args.no_docs and ok:
        write_docs(" ".join([".venv/bin/python -m tests.bench.converge_timing", *sys.argv[1:]]).strip(), body_text)
        print(f"rewrote the section '{SECTION}' of {DOCS.relative_to(REPO)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
