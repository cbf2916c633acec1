"""A variable given a value it does not take is refused first, in a few lines naming the variable, the value and the
values it takes: `-e ollama_state=removed` used to print some 200 lines of argument-spec data (Ansible's own
validation of `choices`) before the reason. So the argument specs carry no `choices`: roles ollama and nvidia_driver
check their `__<role>_choices` (vars/main.yml) as their first task, cortex_env its one such variable in preflight;
the specs' descriptions still name every value."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.archives import REPO
from tests.support.docs import flat
from tests.support.instances import ansible_env

ROLES = ["ollama", "nvidia_driver", "cortex_env"]
BAD = {
    "ollama": ("ollama_state", "removed", "ollama_state 'removed' is refused: it must be one of present, absent"),
    "nvidia_driver": (
        "nvidia_driver_source",
        "nvidia",
        "'nvidia' is refused: it must be one of auto, distribution, cuda, local",
    ),
    "cortex_env": ("cortex_env_provider", "gpt", "cortex_env_provider must be one of claude, kimi_k2, openai, ollama"),
}


def _options(role: str) -> dict[str, dict[str, object]]:
    spec = yaml.safe_load((REPO / "roles" / role / "meta" / "argument_specs.yml").read_text())
    options: dict[str, dict[str, object]] = spec["argument_specs"]["main"]["options"]
    return options


@pytest.mark.parametrize("role", [p.parent.parent.name for p in sorted(REPO.glob("roles/*/meta/argument_specs.yml"))])
def test_no_argument_spec_has_choices_and_the_role_checks_them_itself(role: str) -> None:
    options = _options(role)
    assert not [n for n, o in options.items() if "choices" in o], f"{role}: choices in the argument spec"
    choices = yaml.safe_load((REPO / "roles" / role / "vars" / "main.yml").read_text()).get(f"__{role}_choices", {})
    for name, values in choices.items():
        description = str(options[name]["description"])
        assert all(str(v) in description for v in values if v), f"{role}: {name}'s description lacks one of {values}"


@pytest.mark.parametrize("role", ROLES)
def test_a_value_a_variable_does_not_take_is_refused_in_a_few_lines(role: str, tmp_path: Path) -> None:
    name, value, expected = BAD[role]
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "roles": [role]}]))
    run = subprocess.run(
        [str(Path(sys.executable).with_name("ansible-playbook")), "--check", "-e", f"{name}={value}", str(playbook)],
        cwd=REPO,
        env=ansible_env(ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode != 0
    assert expected in flat(run.stdout) and value in run.stdout, run.stdout[-3000:]
    assert "nothing was changed" in flat(run.stdout)
    assert "argument_spec_data" not in run.stdout
    assert len(run.stdout.splitlines()) < 60, run.stdout
