"""Role layout rules that review would otherwise have to catch: every task of the site playbook carries its
role's tag (the tasks of a dynamic include get it from the include's `apply`), and a role's preflight.yml (and
its preflight_*.yml parts) holds checks only (asserts and fails), so it can never change a host."""

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


def test_dynamic_includes_pass_their_role_tag_on() -> None:
    """--list-tasks does not see into include_tasks: the included tasks carry the role's tag only through `apply`
    (and the include itself must carry it, or --tags <role> would skip the include)."""
    includes = 0
    for path in sorted(REPO.glob("roles/*/tasks/*.yml")):
        role = path.parts[-3]
        for task in _tasks(yaml.safe_load(path.read_text()) or []):
            include = task.get("ansible.builtin.include_tasks")
            if include is None:
                continue
            includes += 1
            where = f"{path.relative_to(REPO)}: {task['name']}"
            assert isinstance(include, dict), f"{where}: give file and apply.tags"
            applied, tags = include.get("apply", {}).get("tags", []), task.get("tags", [])
            assert role in applied and role in tags, f"{where}: tags {tags}, apply.tags {applied}"
            # Facts and checks run on every --tags selection: their includes keep `always` inside too.
            assert ("always" in tags) == ("always" in applied), f"{where}: tags {tags}, apply.tags {applied}"
    assert includes >= 8


def test_preflight_holds_checks_only() -> None:
    preflights = sorted(REPO.glob("roles/*/tasks/preflight*.yml"))
    assert preflights
    for path in preflights:
        for task in _tasks(yaml.safe_load(path.read_text())):
            if path.name == "preflight.yml" and task.get("ansible.builtin.import_tasks", "").startswith("preflight_"):
                continue  # its parts are checked as files of their own
            modules = set(task) - TASK_KEYS
            assert modules <= CHECK_MODULES, f"{path.relative_to(REPO)}: {task['name']} uses {modules}"
