"""Role cortex_env on a host run by roles ollama and ollama_models: the file the client reads (owner, mode,
values), who can read it, the client installed offline answering through the router, and a dummy API key that
shows up nowhere but in that file: not at -vvv --diff, not in the ollama unit, not in any world-readable file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.instances import Instance, instance_names

(HOST,) = (Instance(name) for name in instance_names())
ENV = "/etc/cortex/.env"
KEY = "sk-ant-dummy-0c4f9e2b7d1a"
OTHER_KEY = "sk-ant-dummy-second-77e1c05a"
CLI = "/opt/cortex/venv/bin/cortex-llm"


def as_alice(command: str, check: bool = True) -> str:
    return HOST.sh(f"su - alice -c '{command}' 2>&1", check=check)


def test_the_file_holds_this_hosts_ollama_and_is_readable_by_group_cortex_only() -> None:
    assert HOST.sh(f"stat -c '%U:%G %a' {ENV} {os.path.dirname(ENV)}").split("\n")[:2] == [
        "root:cortex 640",
        "root:cortex 750",
    ]
    values = dict(line.split("=", 1) for line in HOST.sh(f"grep -v '^#' {ENV}").split())
    assert values == {
        "CORTEX_PROVIDER": "ollama",
        "CORTEX_LOCAL_ONLY": "true",
        "OLLAMA_BASE_URL": "http://127.0.0.1:11434",
        "OLLAMA_MODEL": "tinyllama-double",
        "ANTHROPIC_API_KEY": KEY,
    }
    assert "cortex" in HOST.sh("id -nG alice").split()
    assert KEY in as_alice(f"cat {ENV}")
    denied = HOST.sh(f"su -s /bin/sh nobody -c 'cat {ENV}' 2>&1; echo rc=$?", check=False)
    assert "Permission denied" in denied and KEY not in denied


def test_doctor_in_the_venv_reads_the_file_and_finds_ollama_healthy() -> None:
    out = as_alice(f"{CLI} doctor; echo rc=$?")
    assert out.rstrip().endswith("rc=0"), out
    assert "OLLAMA_BASE_URL=http://127.0.0.1:11434  (from /etc/cortex/.env)" in out
    assert "ANTHROPIC_API_KEY=<set>" in out and KEY not in out
    assert "0 problem(s)" in out


def test_ask_gets_an_answer_through_the_router() -> None:
    out = as_alice(f"{CLI} ask Say hello in one word; echo rc=$?")
    assert out.rstrip().endswith("rc=0"), out
    assert len(out.replace("rc=0", "").strip()) > 0


def test_a_new_key_at_vvv_and_diff_shows_nowhere_but_in_the_file() -> None:
    project = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
    env = {**os.environ, "ANSIBLE_ROLES_PATH": str(project / "roles"), "ANSIBLE_STDOUT_CALLBACK": "default"}
    cmd = [
        str(Path(sys.executable).with_name("ansible-playbook")),
        "-i", os.environ["MOLECULE_INVENTORY_FILE"],
        "--limit", HOST.name,
        "-vvv", "--diff", "--tags", "cortex_env",  # the other roles' checks (tagged always) run too
        "-e", f"cortex_env_anthropic_api_key={OTHER_KEY}",
        str(project / "playbooks" / "ollama.yml"),
    ]  # fmt: skip
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, timeout=900)
        output = run.stdout + run.stderr
        assert run.returncode == 0, output[-3000:]
        assert "Write the configuration" in output and "changed: [" in output
        assert OTHER_KEY not in output
        assert f"ANTHROPIC_API_KEY={OTHER_KEY}" in HOST.sh(f"cat {ENV}")
        unit = HOST.sh("systemctl cat ollama.service; systemctl show ollama.service -p Environment")
        assert OTHER_KEY not in unit
        world_readable = HOST.sh(
            f"grep -rlsF --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev {OTHER_KEY} / "
            "| xargs -r stat -c '%a %n' | awk '$1 ~ /[4567]$/'",
            check=False,
        )
        assert world_readable == "", world_readable
    finally:
        restore = subprocess.run([*cmd[:-3], cmd[-1]], capture_output=True, text=True, env=env, check=False)
        assert restore.returncode == 0, restore.stdout[-2000:]
    assert KEY in HOST.sh(f"cat {ENV}")


# scripts/setup_ollama.py run on the host itself, as on a CI runner: the checkout as committed, pip told to use the
# wheels the controller fetched, the test double's release and registry instead of the internet.
SETUP = (
    "cd /srv/cortex && PIP_NO_INDEX=1 PIP_FIND_LINKS=/srv/wheels python3 scripts/setup_ollama.py "
    "--version 0.34.3 --archive /srv/release/{archive} --checksums /srv/release/sha256sum.txt {options} "
    "-- -e @/srv/setup-vars.json"
)
# The same on a terminal: a pty, the answer typed at the model question.
ON_A_TERMINAL = """
import os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    os.execvp("sh", ["sh", "-c", sys.argv[1]])
os.write(fd, sys.argv[2].encode() + b"\\n")
while True:
    try:
        data = os.read(fd, 4096)
    except OSError:
        break
    if not data:
        break
    sys.stdout.write(data.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"""


def test_the_setup_script_sets_up_a_host_standing_in_for_a_ci_runner(tmp_path: Path) -> None:
    project = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
    release = project / ".cache" / "double-releases" / "0.34.3"
    checkout = tmp_path / "checkout.tar"
    subprocess.run(["git", "archive", "--prefix=cortex/", "-o", str(checkout), "HEAD"], cwd=project, check=True)
    subprocess.run(["podman", "cp", str(checkout), f"{HOST.name}:/srv/checkout.tar"], check=True)
    HOST.sh("tar -xf /srv/checkout.tar -C /srv && rm /srv/checkout.tar")
    for source, target in (
        (project / ".cache" / "setup-wheelhouse", "/srv/wheels"),
        (project / ".cache" / "cortex-wheelhouse", "/srv/wheels"),
        (release, "/srv/release"),
    ):
        HOST.sh(f"mkdir -p {target}")
        subprocess.run(["podman", "cp", f"{source}/.", f"{HOST.name}:{target}"], check=True)
    HOST.sh(
        "cat > /srv/setup-vars.json", stdin='{"ollama_extra_env": {"OLLAMA_DOUBLE_REGISTRY": "/srv/double-registry"}}'
    )
    archive = next(p.name for p in release.iterdir() if p.name.endswith(".tar.zst"))

    out = HOST.sh(SETUP.format(archive=archive, options="--model tinyllama-double --non-interactive") + " 2>&1")
    assert "Models (download size" not in out
    assert "Ollama runs tinyllama-double; Cortex is configured in /etc/cortex/.env" in out, out[-3000:]
    assert "0 problem(s)" in out, "doctor ran as the play's last check"
    # Through ansible-runner: progress lines (changes with their time), the recap, and the run's events kept.
    assert "changed   cortex_env : Install cortex_client into the venv" in out, out[-3000:]
    assert "PLAY RECAP" in out
    artifacts = out.split("setup_ollama: full output in ")[1].split()[0].removesuffix("/stdout")
    stats = HOST.sh(f'cd /srv/cortex && grep -l \'"event": "playbook_on_stats"\' {artifacts}/job_events/*.json')
    assert len(stats.split()) == 1, f"ansible-runner kept the run's events: {stats}"
    assert "OLLAMA_MODEL=tinyllama-double" in HOST.sh(f"cat {ENV}")
    assert "ok" in HOST.sh(f"{CLI} ask hello >/dev/null && echo ok")

    command = SETUP.format(archive=archive, options="")
    out = HOST.sh(f"python3 -c '{ON_A_TERMINAL}' '{command}' tinyllama-double 2>&1")
    assert "1. llama3.2        2.0 GB   4 GB RAM  recommended  [default]" in out, out[-3000:]
    assert "Ollama runs tinyllama-double" in out, out[-3000:]
