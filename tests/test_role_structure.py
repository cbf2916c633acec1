"""Role layout rules that review would otherwise have to catch: every task of the site playbook carries its
role's tag, and a role's preflight.yml holds checks only (asserts and fails), so it can never change a host."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from tests.support.archives import REPO

CHECK_MODULES = {"ansible.builtin.assert", "ansible.builtin.fail"}
TASK_KEYS = {
    "name",
    "when",
    "block",
    "vars",
    "loop",
    "loop_control",
    "tags",
    "run_once",
    "delegate_to",
    "become",
    "no_log",
}


def _tasks(tasks: list[dict[str, object]]) -> list[dict[str, object]]:
    out = []
    for task in tasks:
        block = task.get("block")
        if isinstance(block, list):
            out += _tasks(block)
        else:
            out.append(task)
    return out


def test_every_task_carries_its_role_tag() -> None:
    ansible_playbook = Path(sys.executable).with_name("ansible-playbook")
    listing = subprocess.run(
        [str(ansible_playbook), "--list-tasks", "playbooks/ollama.yml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    tasks = re.findall(r"^\s+(\w+) : (.+?)\tTAGS: \[(.*)\]$", listing, re.M)
    assert len(tasks) > 20, listing
    for role, name, tags in tasks:
        if name.startswith("Validating arguments against arg spec"):
            continue  # Ansible's own task
        assert role in tags.split(", "), f"{role} : {name} has tags [{tags}]"


def test_preflight_holds_checks_only() -> None:
    preflights = sorted(REPO.glob("roles/*/tasks/preflight.yml"))
    assert preflights
    for path in preflights:
        for task in _tasks(yaml.safe_load(path.read_text())):
            modules = set(task) - TASK_KEYS
            assert modules <= CHECK_MODULES, f"{path.relative_to(REPO)}: {task['name']} uses {modules}"
