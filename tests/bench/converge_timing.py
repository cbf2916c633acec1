#!/usr/bin/env python3
"""Converge timing of the site playbook (role ollama) on fresh systemd containers, one per distro.

For each distro: a fresh container from localhost/cortex-systemd:<distro>, then `playbooks/ollama.yml` twice
(air-gapped install of the TEST DOUBLE's release archive): the fresh converge and the idempotent re-run,
which must report changed=0. Then one more re-run against all hosts at once (Ansible forks), side by side
with the single-host re-runs. Prints a table and rewrites the "Provisioning" section of docs/benchmarks.md.

Usage: .venv/bin/python tests/bench/converge_timing.py [--distros bookworm ...] [--version X.Y.Z] [--no-docs]
Exit status 1 if a run fails or a re-run changes anything.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs" / "benchmarks.md"
SECTION = "## Provisioning: converge time of role ollama"
DISTROS = ["bookworm", "trixie", "jammy", "noble"]
LABEL = "cortex-bench"


def sh(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=REPO).stdout


def start_container(distro: str) -> str:
    name = f"{LABEL}-{distro}"
    subprocess.run(["podman", "rm", "-f", name], check=True, capture_output=True)
    sh(
        "podman",
        "run",
        "-d",
        "--name",
        name,
        "--hostname",
        name,
        "--label",
        f"{LABEL}=1",
        "--systemd=always",
        f"localhost/cortex-systemd:{distro}",
        "/sbin/init",
    )
    for _ in range(120):
        state = subprocess.run(
            ["podman", "exec", name, "systemctl", "is-system-running"], capture_output=True, text=True, check=False
        ).stdout.strip()
        if state in ("running", "degraded"):
            return name
        time.sleep(0.5)
    raise SystemExit(f"{name}: systemd did not come up")


def converge(inventory: Path, limit: str, extra: Path) -> tuple[float, dict[str, dict[str, int]]]:
    """One ansible-playbook run; returns its wall time and the per-host recap."""
    env = {**os.environ, "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"}
    cmd = [
        str(Path(sys.executable).with_name("ansible-playbook")),
        "-i",
        str(inventory),
        "--limit",
        limit,
        "-e",
        f"@{extra}",
        "playbooks/ollama.yml",
    ]
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env, check=False)
    seconds = time.monotonic() - start
    try:
        stats: dict[str, dict[str, int]] = json.loads(proc.stdout)["stats"]
    except (json.JSONDecodeError, KeyError):
        raise SystemExit(f"ansible-playbook --limit {limit} failed (rc={proc.returncode}):\n{proc.stderr}") from None
    return seconds, stats


def failed(stats: dict[str, dict[str, int]]) -> bool:
    return any(s["failures"] or s["unreachable"] for s in stats.values())


def write_docs(command: str, table: str, output: str) -> None:
    body = f"""{SECTION}

Command (from the repository root; 6 to 10 minutes on the 2-core build machine):

```bash
{command}
```

How it measures: one fresh systemd container per distro (`localhost/cortex-systemd:<distro>`, podman), then
`playbooks/ollama.yml` over the podman connection, as an air-gapped install of the Ollama test double's
release archive (`ollama_archive_src` + `ollama_checksums_file`, `ollama_no_cloud: true`). Each host gets a
fresh converge and an idempotent re-run (which must report `changed=0`), one host at a time; then one re-run
of all hosts together, side by side with the single-host re-runs. Wall time of `ansible-playbook` includes its
start-up (~2 s). Most of the time is the podman connection: every task costs a few `podman exec` calls
(no pipelining), about 1 s per task here. On 2 cores the all-hosts re-run is bound by CPU, not by Ansible's
forks: 4 hosts take 2-3x one host rather than 1x.

{table}

Run of {datetime.date.today().isoformat()} on the build machine ({platform.system()} {platform.machine()}, \
{os.cpu_count()} CPUs, shared with other jobs), output:

```text
{output}
```
"""
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: body + "\n", text).rstrip("\n") + "\n"
    elif (first := re.search(r"^## ", text, re.M)) is not None:
        text = text[: first.start()] + body + "\n" + text[first.start() :]
    else:
        text = text.rstrip("\n") + "\n\n" + body
    DOCS.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--distros", nargs="+", default=DISTROS, choices=DISTROS)
    parser.add_argument("--version", default="0.34.2", help="double release to install (default 0.34.2)")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    parser.add_argument("--keep", action="store_true", help="keep the containers (default: remove them)")
    args = parser.parse_args()
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine())
    if arch is None:
        parser.error(f"Ollama ships amd64 and arm64 only, this machine is {platform.machine()}")

    sh("tests/harness/build_images.sh", *args.distros)
    sh(
        sys.executable,
        "tests/harness/build_double_releases.py",
        "--out",
        ".cache/double-releases",
        "--versions",
        args.version,
        "--arch",
        arch,
    )
    releases = REPO / ".cache" / "double-releases" / args.version
    archive = next(releases.glob(f"ollama-linux-{arch}.t*"))
    names = [start_container(d) for d in args.distros]

    lines = [f"load average at start: {os.getloadavg()[0]:.1f}"]
    print(lines[0], flush=True)
    rows: list[tuple[str, float, float, int]] = []
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        inventory = Path(tmp, "inventory.yml")
        hosts = {n: {"ansible_connection": "containers.podman.podman"} for n in names}
        inventory.write_text(json.dumps({"all": {"hosts": hosts}}))
        extra = Path(tmp, "vars.json")
        extra.write_text(
            json.dumps(
                {
                    "ollama_version": args.version,
                    "ollama_archive_src": str(archive),
                    "ollama_checksums_file": str(releases / "sha256sum.txt"),
                    "ollama_no_cloud": True,
                    "ollama_controller_cache_dir": str(Path(tmp, "controller-cache")),
                }
            )
        )
        for name in names:
            fresh, fresh_stats = converge(inventory, name, extra)
            rerun, rerun_stats = converge(inventory, name, extra)
            changed = rerun_stats[name]["changed"]
            ok = ok and not failed(fresh_stats) and not failed(rerun_stats) and changed == 0
            rows.append((name.removeprefix(f"{LABEL}-"), fresh, rerun, changed))
            line = f"{name}: fresh converge {fresh:.1f} s (changed={fresh_stats[name]['changed']}), "
            lines.append(line + f"idempotent re-run {rerun:.1f} s (changed={changed}) = {rerun / fresh:.2f}x")
            print(lines[-1], flush=True)
        fleet, fleet_stats = converge(inventory, ",".join(names), extra)
        fleet_changed = sum(s["changed"] for s in fleet_stats.values())
        ok = ok and not failed(fleet_stats) and fleet_changed == 0
        single = sum(r[2] for r in rows) / len(rows)
        lines.append(
            f"all {len(names)} hosts in one re-run: {fleet:.1f} s (changed={fleet_changed}) "
            f"= {fleet / single:.2f}x one host's re-run (mean {single:.1f} s)"
        )
        lines.append(f"load average at end: {os.getloadavg()[0]:.1f}")
        print("\n".join(lines[-2:]))
    if not args.keep:
        for name in names:
            subprocess.run(["podman", "rm", "-f", name], check=True, capture_output=True)

    table = "\n".join(
        ["| host | fresh converge | idempotent re-run | re-run / fresh | changed on re-run |", "|---|---|---|---|---|"]
        + [f"| {d} | {f:.1f} s | {r:.1f} s | {r / f:.2f}x | {c} |" for d, f, r, c in rows]
        + [
            f"| all {len(names)} in one run | | {fleet:.1f} s | {fleet / single:.2f}x one host's re-run "
            f"| {fleet_changed} |"
        ]
    )
    print("\n" + table)
    print("\n" + ("all runs succeeded, every re-run changed nothing" if ok else "FAILED: see above"))
    if not args.no_docs and ok:
        command = " ".join([".venv/bin/python tests/bench/converge_timing.py", *map(shlex.quote, sys.argv[1:])])
        write_docs(command.strip(), table, "\n".join(lines))
        print(f"rewrote the section '{SECTION}' of {DOCS.relative_to(REPO)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
