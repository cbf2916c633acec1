"""The client on the air-gapped host, from the bundle's wheelhouse, as docs/airgap.md says. Without the package
that gives python3 its venv (python3.X-venv), preflight names it and changes nothing, where the install used to
write the configuration and then fail on apt's raw errors ("does not have a Release file"); a local setup with no
model for the client is refused there too (cortex-llm doctor, the last check, would fail on it); with both in
place the client installs offline and doctor's report is printed line by line."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.support.instances import Instance, RoleRun, apply_role, instance_names

(HOST,) = (Instance(name) for name in instance_names())
PROJECT = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
BUNDLE = PROJECT / ".cache" / "airgap-bundle"
ENV_FILE = "/etc/cortex/.env"


def client_role(**extra: object) -> RoleRun:
    settings: dict[str, object] = {
        "cortex_env_install_client": "true",  # as `-e cortex_env_install_client=true` gives it: a string
        "cortex_env_wheelhouse": str(BUNDLE / "wheels"),
        "cortex_env_provider": "ollama",
        "ollama_models": ["tinyllama-double"],
    }
    return apply_role(HOST.name, role="cortex_env", **(settings | extra))


def env_file_state() -> str:
    return HOST.sh(f"sha256sum {ENV_FILE} 2>/dev/null || echo missing")


def test_a_missing_venv_package_is_named_before_any_change() -> None:
    # The jammy image has no python3.10-venv (Debian and Ubuntu ship ensurepip in it), and this host no route out.
    assert "No module named 'ensurepip'" in HOST.sh("python3 -c 'import ensurepip' 2>&1 || true")
    before = env_file_state()

    run = client_role()

    assert run.rc != 0
    (failure,) = run.failures
    assert "python3.10-venv is missing on this host" in failure, failure
    assert "docs/airgap.md" in failure and "nothing was changed" in failure, failure
    assert "Release file" not in run.output
    assert run.stats["changed"] == 0, run
    assert env_file_state() == before
    assert HOST.sh("test -e /opt/cortex/venv && echo venv || echo none").strip() == "none"


def test_a_local_client_without_a_model_is_refused_before_any_change() -> None:
    before = env_file_state()

    run = client_role(ollama_models=[])

    assert run.rc != 0
    (failure,) = run.failures
    assert "no model is named for the client (OLLAMA_MODEL)" in failure and "list one in ollama_models" in failure
    assert run.stats["changed"] == 0, run
    assert env_file_state() == before


def test_the_client_installs_offline_and_doctor_reports_line_by_line() -> None:
    # The packages carried across as docs/airgap.md says (downloaded by prepare.yml), installed with apt offline.
    debs = PROJECT / ".cache" / "venv-debs" / "jammy"
    pack = subprocess.run(["tar", "-C", str(debs), "-cf", "-", "."], capture_output=True, check=True)
    subprocess.run(HOST.ssh_command("mkdir -p /root/debs && tar -xf - -C /root/debs"), input=pack.stdout, check=True)
    HOST.sh("cd /root/debs && apt-get install -y -q ./*.deb >/dev/null")

    run = client_role()

    assert run.rc == 0, run
    assert HOST.sh(f"grep -c '^OLLAMA_MODEL=tinyllama-double$' {ENV_FILE}").strip() == "1"
    report = next(
        result["msg"]
        for play in run.report["plays"]
        for task in play["tasks"]
        if task["task"]["name"].endswith("Report what doctor found")
        for result in task["hosts"].values()
    )
    assert isinstance(report, list) and any("model tinyllama-double" in line for line in report), report
    assert all(isinstance(line, str) and not line.startswith("[") for line in report), report
