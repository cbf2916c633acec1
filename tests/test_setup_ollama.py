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
from tests.support.filters import load_file
from tests.support.terminal import on_a_terminal

SCRIPT = REPO / "scripts" / "setup_ollama.py"


def in_pty(*args: str, answers: str = "", env: dict[str, str] | None = None) -> tuple[int, str]:
    return on_a_terminal([sys.executable, str(SCRIPT), *args], answers=answers, env={**os.environ, **(env or {})})


def playbook_vars(output: str) -> dict[str, object]:
    """The extra vars of the ansible-playbook command the script printed (alone with --print-command, in its progress
    line otherwise; on a terminal after the prompt's echoed answer)."""
    line = next(line for line in output.splitlines() if "&& .venv/bin/ansible-playbook playbooks/ollama.yml" in line)
    argv = shlex.split(line[line.index("&& ") + 3 :])
    values: dict[str, object] = json.loads(argv[argv.index("-e") + 1])
    return values


def test_enter_takes_the_default_from_the_original_list() -> None:
    # A run that only lists the hosts: the question comes first, then the command runs (--print-command asks nothing).
    rc, out = in_pty("--", "--list-hosts", answers="\n")
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
    assert chosen["cortex_env_install_client"] is True
    assert "cortex_env_client_spec" not in chosen  # the role builds the client from this checkout by default


def test_a_number_or_a_name_picks_the_model_and_a_wrong_number_asks_again() -> None:
    rc, out = in_pty("--", "--list-hosts", answers="2\n")
    assert rc == 0 and playbook_vars(out)["ollama_models"] == ["llama3.2:1b"], out
    rc, out = in_pty("--", "--list-hosts", answers="9\nqwen2.5:0.5b\n")
    assert rc == 0, out
    assert "9 is not in the list (1-6)" in out
    assert playbook_vars(out)["ollama_models"] == ["qwen2.5:0.5b"]


def test_print_command_prints_one_line_that_runs_from_anywhere(tmp_path: Path) -> None:
    rc, out = in_pty("--print-command")  # on a terminal, yet no question: the line is all it prints
    assert rc == 0, out
    (line,) = out.strip().splitlines()
    assert line.startswith(f"cd {shlex.quote(str(REPO))} && .venv/bin/ansible-playbook playbooks/ollama.yml -e ")
    assert playbook_vars(out)["ollama_models"] == ["llama3.2"]
    pasted = subprocess.run(
        ["bash", "-c", f"{line} --list-hosts"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert pasted.returncode == 0, pasted.stdout + pasted.stderr
    assert "hosts (1):\n      localhost" in pasted.stdout


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


def test_the_printed_command_shows_no_secret_given_with_e() -> None:
    rc, out = in_pty(
        "--non-interactive", "--print-command", "--",
        "-e", "cortex_env_anthropic_api_key=sk-ant-typed-secret other=1",
        "--extra-vars", '{"cortex_env_openai_api_key": "sk-oa-typed", "ollama_archive_src": "https://u:pw99@m/x"}',
    )  # fmt: skip
    assert rc == 0, out
    for secret in ("sk-ant-typed-secret", "sk-oa-typed", "pw99"):
        assert secret not in out
    assert "cortex_env_anthropic_api_key=<redacted>" in out and "other=1" in out
    assert "https://<redacted>@m/x" in out


def test_the_run_s_artifacts_are_scrubbed_of_secrets(tmp_path: Path) -> None:
    """ansible-runner writes the whole process environment and the command line into the artifact directory."""
    wizard = load_file(SCRIPT, "setup_ollama")
    args = [
        "-e", "cortex_env_moonshot_api_key=sk-moon-1234",
        "-e", '{"db": {"admin_password": "hunter2-x"}}',
        "-e", "{cortex_env_openai_api_key: sk-yaml-91}",  # YAML, as ansible-playbook also reads it
    ]  # fmt: skip
    # The real environment (PWD, OLDPWD and ANSIBLE_* look like secrets' names and are not), less what this
    # machine's may hold under a secret's name.
    real = {k: v for k, v in os.environ.items() if not wizard.SECRET_NAME.search(k) or wizard.NOT_SECRET.match(k)}
    env = {
        **real,
        "PWD": str(REPO),
        "OLDPWD": "/tmp",
        "PATH": "/usr/bin",
        "OPENAI_API_KEY": "sk-env-5678",
        "HTTPS_PROXY": "http://ops:proxy-pw@proxy:3128",
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "VAULT_PASS_FILE_ENABLED": "true",
    }
    secrets = wizard.secret_values(args, env)
    assert secrets == {"sk-moon-1234", "hunter2-x", "sk-yaml-91", "sk-env-5678", "ops:proxy-pw"}
    command = tmp_path / "run" / "command"
    command.parent.mkdir()
    command.write_text(json.dumps({"command": ["ansible-playbook", *args], "env": env}))
    (tmp_path / "run" / "stdout").write_text("nothing secret here\n")
    wizard.scrub_artifacts(tmp_path / "run", secrets)
    text = command.read_text()
    for secret in secrets:
        assert secret not in text
    assert json.loads(text)["env"]["PATH"] == "/usr/bin"
    assert (tmp_path / "run" / "stdout").read_text() == "nothing secret here\n"


def test_host_key_checking_is_ansible_s_own_setting_not_ansible_runner_s(tmp_path: Path) -> None:
    """ansible-runner sets ANSIBLE_HOST_KEY_CHECKING=False unless given one; the wizard gives Ansible's own: on,
    unless the operator's environment or ansible.cfg says otherwise."""
    code = "import sys; sys.path.insert(0, 'scripts'); import setup_ollama; print(setup_ollama.host_key_checking())"
    base = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}

    def setting(**env: str) -> str:
        run = subprocess.run(
            [sys.executable, "-c", code], check=False, cwd=REPO, env={**base, **env}, capture_output=True, text=True
        )
        assert run.returncode == 0, run.stderr
        return run.stdout.strip()

    assert setting() == "True"
    assert setting(ANSIBLE_HOST_KEY_CHECKING="False") == "False"
    cfg = tmp_path / "ansible.cfg"
    cfg.write_text("[defaults]\nhost_key_checking = False\n")
    assert setting(ANSIBLE_CONFIG=str(cfg)) == "False"
