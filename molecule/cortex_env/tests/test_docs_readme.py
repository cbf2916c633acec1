"""The README's try-out, run as written (tests.support.docs): a throwaway container converged as an air-gapped
host from a bundle of the test double, with the model, /etc/cortex/.env and the client; a second run changes
nothing; --rm removes it. Before, it stopped in preflight (the double's archive against the role's pins of the real
release) and, where it ran, left a host without a model, Cortex configuration or client."""

from __future__ import annotations

import subprocess

from tests.support.docs import blocks_run_by, recap_changed, run_here

TRY, DOCTOR = blocks_run_by("README.md", "molecule/cortex_env/tests/test_docs_readme.py")
CONVERGE, REMOVE = (line.split("#")[0].strip() for line in TRY.strip().splitlines())
NAME = "cortex-try-bookworm"  # the script's container for its default distribution


def in_container(command: str) -> str:
    return subprocess.run(
        ["podman", "exec", NAME, "sh", "-c", command], capture_output=True, text=True, check=False
    ).stdout


def test_the_try_out_converges_a_container_fully_and_a_rerun_changes_nothing() -> None:
    try:
        first = run_here(CONVERGE)
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr
        assert f"runs as a systemd service in {NAME}" in first.stdout
        assert "tinyllama-double" in in_container("ollama list")
        env = in_container("cat /etc/cortex/.env")
        assert "CORTEX_PROVIDER=ollama" in env and "OLLAMA_MODEL=tinyllama-double" in env, env
        assert "0 problem(s)" in in_container(DOCTOR)

        again = run_here(CONVERGE)
        assert again.returncode == 0, again.stdout[-3000:]
        assert recap_changed(again.stdout, NAME) == 0, again.stdout[-3000:]
    finally:
        removed = run_here(REMOVE)
    assert removed.returncode == 0 and f"removed {NAME}" in removed.stdout, removed.stdout
    assert NAME not in subprocess.run(["podman", "ps", "-a"], capture_output=True, text=True, check=False).stdout


def test_help_prints_the_usage_and_nothing_else() -> None:
    run = run_here("tests/harness/try_in_container.sh --help")
    assert run.returncode == 0
    assert run.stdout.splitlines()[0].startswith("Try the site playbook without touching this machine")
    assert "Usage: tests/harness/try_in_container.sh" in run.stdout
    assert "set -euo" not in run.stdout and not run.stdout.splitlines()[-1].startswith("#")
