"""scripts/setup_ollama.py, the original integration's one-command setup: the model question on a real terminal
(a pty), the non-interactive path CI uses, and the ansible-playbook command each produces (--print-command runs
nothing else). The playbook run itself is what the Molecule scenarios test."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from tests.support.archives import REPO
from tests.support.terminal import on_a_terminal

SCRIPT = REPO / "scripts" / "setup_ollama.py"


def in_pty(*args: str, answers: str = "", env: dict[str, str] | None = None) -> tuple[int, str]:
    return on_a_terminal([sys.executable, str(SCRIPT), *args], answers=answers, env={**os.environ, **(env or {})})


def playbook_vars(output: str) -> dict[str, object]:
    # On a terminal the command follows the prompt on its line (the typed answer was echoed before it).
    line = next(line for line in output.splitlines() if "setup_ollama: /" in line)
    argv = shlex.split(line[line.index("setup_ollama: /") + len("setup_ollama: ") :])
    assert argv[0].endswith("ansible-playbook") and argv[1].endswith("playbooks/ollama.yml")
    values: dict[str, object] = json.loads(argv[argv.index("-e") + 1])
    return values


def test_enter_takes_the_default_from_the_original_list() -> None:
    rc, out = in_pty("--print-command", answers="\n")
    assert rc == 0, out
    for name, size, memory in (
        ("llama3.2", "2.0 GB", "4 GB"),
        ("llama3.2:1b", "1.3 GB", "2 GB"),
        ("phi3", "2.3 GB", "4 GB"),
    ):
        assert any(name in line and size in line and memory in line for line in out.splitlines()), out
    assert "llama3.2        2.0 GB   4 GB RAM  recommended  [default]" in out
    chosen = playbook_vars(out)
    assert chosen["ollama_models"] == ["llama3.2"]
    assert chosen["cortex_env_provider"] == "ollama" and chosen["cortex_env_ollama_model"] == "llama3.2"
    assert chosen["cortex_env_install_client"] is True and chosen["cortex_env_client_spec"] == str(REPO)


def test_a_number_or_a_name_picks_the_model_and_a_wrong_number_asks_again() -> None:
    rc, out = in_pty("--print-command", answers="2\n")
    assert rc == 0 and playbook_vars(out)["ollama_models"] == ["llama3.2:1b"], out
    rc, out = in_pty("--print-command", answers="9\nqwen2.5:0.5b\n")
    assert rc == 0, out
    assert "9 is not in the list (1-6)" in out
    assert playbook_vars(out)["ollama_models"] == ["qwen2.5:0.5b"]


def test_the_ci_recipe_asks_nothing() -> None:
    rc, out = in_pty("--model", "llama3.2:1b", "--non-interactive", "--print-command")
    assert rc == 0, out
    assert "Models (download size" not in out
    assert playbook_vars(out)["ollama_models"] == ["llama3.2:1b"]


def test_without_a_terminal_it_takes_the_default_and_the_sudo_user_may_read_the_config() -> None:
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--print-command"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, env={**os.environ, "SUDO_USER": "alice"}, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "Models (download size" not in run.stdout
    chosen = playbook_vars(run.stdout)
    assert chosen["ollama_models"] == ["llama3.2"] and chosen["cortex_env_users"] == ["alice"]


def test_a_fleet_inventory_gets_no_local_client_install() -> None:
    rc, out = in_pty("--non-interactive", "--inventory", "inventory/fleet.example.yml", "--print-command")
    assert rc == 0, out
    chosen = playbook_vars(out)
    assert "cortex_env_install_client" not in chosen and chosen["ollama_models"] == ["llama3.2"]
    assert Path(REPO / "inventory" / "fleet.example.yml").is_file()
