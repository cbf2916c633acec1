"""The role-variables lint (tests/harness/check_role_docs.py) passes on the repository's roles and catches each
kind of disagreement between defaults/main.yml, meta/argument_specs.yml and the README table."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.harness import check_role_docs
from tests.support.archives import REPO


def test_the_repository_roles_agree() -> None:
    roles = sorted(p.parent.parent for p in (REPO / "roles").glob("*/defaults/main.yml"))
    assert roles
    for role in roles:
        assert check_role_docs.check(role) == []


@pytest.mark.parametrize(
    ("path", "old", "new", "expected"),
    [
        ("defaults/main.yml", "ollama_ready_timeout: 60", "ollama_ready_timeout: 60\nollama_new_knob: 1", "not in"),
        ("README.md", "| `ollama_ready_timeout` | `60` |", "| `ollama_ready_timeout` | `30` |", "README.md says"),
        ("README.md", "| `ollama_ready_timeout` | `60` |", "| `ollama_ready_timeoutx` | `60` |", "not in"),
    ],
)
def test_a_disagreement_is_reported(tmp_path: Path, path: str, old: str, new: str, expected: str) -> None:
    role = tmp_path / "ollama"
    shutil.copytree(REPO / "roles" / "ollama", role)
    text = (role / path).read_text()
    assert old in text
    (role / path).write_text(text.replace(old, new))
    problems = check_role_docs.check(role)
    assert problems and expected in problems[0]


def test_an_argument_spec_default_that_differs_is_reported(tmp_path: Path) -> None:
    role = tmp_path / "ollama"
    shutil.copytree(REPO / "roles" / "ollama", role)
    spec = role / "meta" / "argument_specs.yml"
    text = spec.read_text()
    assert "default: 60" in text
    spec.write_text(text.replace("default: 60", "default: 90"))
    assert any("ollama_ready_timeout defaults to 60" in p for p in check_role_docs.check(role))
