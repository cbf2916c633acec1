"""The fleet commands of README.md and docs/fleet.md, run as written (tests.support.docs) against the three hosts:
an inventory in the checkout's inventory/ (so its group_vars apply) stands in for inventory/fleet.example.yml and
inventory/fleet.yml, its host variables for what this fleet's operator sets (a remote bind for the client pool,
the test double's archives and pins, its registry)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from test_fleet import HOSTS, traffic, url, version

from tests.support.docs import blocks_run_by, repo_inventory, run_here

PROJECT = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
DOUBLE = PROJECT / ".cache" / "double-releases"
(README,) = blocks_run_by("README.md", "molecule/fleet/tests/test_fleet_docs.py")
(ROLLING,) = blocks_run_by("docs/fleet.md", "molecule/fleet/tests/test_fleet_docs.py")


def run_doc(block: str, inventory_in_doc: str) -> subprocess.CompletedProcess[str]:
    settings = {
        "ollama_host": "0.0.0.0:11434",
        "ollama_allow_remote_bind": True,
        "ollama_extra_env": {"OLLAMA_DOUBLE_REGISTRY": "/srv/double-registry"},
        "ollama_models": ["tinyllama-double"],
        "ollama_archive_src": f"{DOUBLE}/{{{{ ollama_version }}}}/",
        "ollama_checksums": json.loads((DOUBLE / "checksums.json").read_text()),
        "cortex_env_install_client": False,  # the client's install is scenario cortex_env's
    }
    with repo_inventory({h.name: {**h.connection(), **settings} for h in HOSTS}) as inventory:
        return run_here(block, replace={inventory_in_doc: inventory})


def batches(output: str) -> int:
    return len(re.findall(r"^PLAY \[Provision Ollama\]", output, re.M))


def test_the_readme_fleet_command_rolls_out_the_pinned_release_host_by_host() -> None:
    run = run_doc(README, "inventory/fleet.example.yml")

    assert run.returncode == 0, run.stdout[-3000:] + run.stderr
    assert [version(h) for h in HOSTS] == ["0.34.2"] * 3
    assert batches(run.stdout) == 3, "10% of three hosts: one host per batch"


def test_the_rolling_upgrade_of_docs_fleet_md_drops_no_request() -> None:
    urls = [url(h) for h in HOSTS]
    with traffic(urls) as seen:
        run = run_doc(ROLLING, "inventory/fleet.yml")

    assert run.returncode == 0, run.stdout[-3000:] + run.stderr
    assert [version(h) for h in HOSTS] == ["0.34.3"] * 3
    assert batches(run.stdout) == 3
    assert seen["failed"] == [] and seen["ok"] > 0, (seen["ok"], len(seen["failed"]), seen["failed"][:3])
    assert seen["max_down"] <= 1, seen["down_at"]
