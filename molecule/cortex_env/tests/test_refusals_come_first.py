"""A refusal of a later role comes before an earlier role changes anything: the site playbook runs the checks of
roles ollama and cortex_env first. Before, `-e ollama_keep_alive=30m -e cortex_env_provider=gpt` rewrote Ollama's
drop-in and restarted it (changed=4), then cortex_env refused the provider and said "nothing was changed"."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.archives import REPO
from tests.support.instances import Instance, ansible_env, instance_names

(HOST,) = (Instance(name) for name in instance_names())
DROPIN = "/etc/systemd/system/ollama.service.d/10-cortex.conf"


def test_a_bad_cortex_env_setting_is_refused_before_ollama_changes() -> None:
    before, invocation = HOST.sh(f"sha256sum {DROPIN}"), HOST.unit("InvocationID")
    run = subprocess.run(
        [
            str(Path(sys.executable).with_name("ansible-playbook")),
            "-i", os.environ["MOLECULE_INVENTORY_FILE"],
            "-e", "ollama_keep_alive=31m", "-e", "cortex_env_provider=gpt",
            str(REPO / "playbooks" / "ollama.yml"),
        ],
        env=ansible_env(ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json"),
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    report = json.loads(run.stdout)
    stats = report["stats"][HOST.name]
    assert run.returncode != 0 and stats["failures"] == 1, stats
    assert stats["changed"] == 0, stats
    assert "cortex_env_provider must be one of" in run.stdout
    assert HOST.sh(f"sha256sum {DROPIN}") == before
    assert HOST.unit("InvocationID") == invocation
