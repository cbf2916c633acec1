"""Role cortex_env on a host run by roles ollama and ollama_models: the file the client reads (owner, mode,
values), who can read it, the client installed offline answering through the router, and a dummy API key that
shows up nowhere but in that file: not at -vvv --diff, not in the ollama unit, not in any world-readable file."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import yaml

from tests.support.archives import archive_path
from tests.support.docs import blocks_run_by
from tests.support.instances import Instance, ansible_env, apply_role, instance_names

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
    env = ansible_env(project, ANSIBLE_STDOUT_CALLBACK="default")
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
# wheels the controller fetched, the test double's release and registry instead of the internet. 0.34.3 is not in
# the role's pinned table: its sha256sum.txt is kept apart from the archive (a copy in /srv/sums), as an operator
# keeps the one fetched separately, so it vouches for the archive.
# The commands are docs/setup.md's (tests.support.docs), with these options added.
DOC_SETUP, DOC_ASK, DOC_PYTHON = blocks_run_by("docs/setup.md", "molecule/cortex_env/tests/test_cortex_env.py")
SETUP = (
    f"cd /srv/cortex && PIP_NO_INDEX=1 PIP_FIND_LINKS=/srv/wheels {DOC_SETUP.split('#')[0].strip()} "
    "--version 0.34.3 --archive /srv/release/{archive} --checksums /srv/sums/sha256sum.txt {options} "
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
    HOST.sh("mkdir -p /srv/sums && cp /srv/release/sha256sum.txt /srv/sums/")
    archive = archive_path("0.34.3").name  # the host's arch (the release holds every arch and add-on)

    # A developer's .env in the checkout, naming a dead endpoint: the play's doctor must read /etc/cortex/.env.
    HOST.sh("printf 'OLLAMA_BASE_URL=http://127.0.0.1:9\\nOLLAMA_MODEL=nothing-here\\n' > /srv/cortex/.env")
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
    assert HOST.sh(DOC_ASK).strip(), "the doc's question got no answer"
    # The doc's Python example, as root (it reads /etc/cortex/.env): the local model answered, at no cost.
    assert HOST.sh("/opt/cortex/venv/bin/python -", stdin=DOC_PYTHON).split()[-2:] == ["ollama", "0.0"]

    command = SETUP.format(archive=archive, options="")
    out = HOST.sh(f"python3 -c '{ON_A_TERMINAL}' '{command}' tinyllama-double 2>&1")
    assert "1. llama3.2        2.0 GB   4 GB RAM  recommended  [default]" in out, out[-3000:]
    assert "Ollama runs tinyllama-double" in out, out[-3000:]


def test_the_setup_script_refuses_a_host_whose_key_changed_and_keeps_no_secret(tmp_path: Path) -> None:
    """ansible-runner turns host-key checking off unless told; the wizard keeps Ansible's own setting, so a host that
    presents another key than the one known for it is never sent the become password or an API key. The secrets in
    the operator's environment and in -e stay out of the printed command and of the run's artifacts."""
    project = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
    with open(os.environ["MOLECULE_INVENTORY_FILE"]) as f:
        connection = yaml.safe_load(f)["all"]["hosts"][HOST.name]
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    known_hosts = tmp_path / "known_hosts"
    key = stranger.with_suffix(".pub").read_text().split()[:2]
    known_hosts.write_text(f"[{connection['ansible_host']}]:{connection['ansible_port']} {' '.join(key)}\n")
    ssh_args = f"-o UserKnownHostsFile={known_hosts} -o ControlMaster=no -o IdentitiesOnly=yes"
    host_vars = {k: v for k, v in connection.items() if k != "ansible_ssh_common_args"} | {
        "ansible_ssh_common_args": ssh_args
    }
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"changed-key-host": host_vars}}}))
    env_secret, cli_secret = "sk-ant-from-the-environment-5d1e", "sk-ant-given-with-e-8a2c"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "MOLECULE_"))}
    run = subprocess.run(
        [sys.executable, "scripts/setup_ollama.py", "--inventory", str(inventory), "--non-interactive",
         "--model", "tinyllama-double", "--", "-e", f"cortex_env_anthropic_api_key={cli_secret}"],
        cwd=project, capture_output=True, text=True, env={**env, "ANTHROPIC_API_KEY": env_secret}, check=False,
        timeout=600,
    )  # fmt: skip
    out = run.stdout + run.stderr
    assert run.returncode != 0, out[-3000:]
    assert "UNREACHABLE" in out and "Host key verification failed" in out, out[-3000:]
    assert cli_secret not in out and env_secret not in out
    artifacts = project / out.split("setup_ollama: full output in ")[1].split()[0].removesuffix("/stdout")
    for path in artifacts.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert cli_secret not in text and env_secret not in text, path


def foreign_wheel(path: Path) -> None:
    """A wheel of `cortex-client` 9.9.9, the name another vendor owns on PyPI: what the role must never install."""
    dist = "cortex_client-9.9.9.dist-info"
    files = {
        "cortex_foreign_marker.py": "FOREIGN = True\n",
        f"{dist}/METADATA": "Metadata-Version: 2.1\nName: cortex-client\nVersion: 9.9.9\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{name},,\n" for name in files) + f"{dist}/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in {**files, f"{dist}/RECORD": record}.items():
            wheel.writestr(name, text)


def test_the_client_never_comes_from_a_name_someone_else_owns(tmp_path: Path) -> None:
    """The host's pip points at an index that offers cortex-client (the old default name, another vendor's package on
    PyPI). The role's default source is a wheelhouse the controller builds from this checkout, checked by sha256 and
    installed with --no-index: the index is never asked for anything."""
    wheel = tmp_path / "cortex_client-9.9.9-py3-none-any.whl"
    foreign_wheel(wheel)
    HOST.sh("mkdir -p /srv/foreign-index/simple/cortex-client")
    subprocess.run(
        ["podman", "cp", str(wheel), f"{HOST.name}:/srv/foreign-index/simple/cortex-client/{wheel.name}"], check=True
    )
    HOST.sh(
        f"echo '<a href=\"{wheel.name}\">{wheel.name}</a>' > /srv/foreign-index/simple/cortex-client/index.html; "
        "printf '[global]\\nindex-url = http://127.0.0.1:8799/simple\\n' > /etc/pip.conf; "
        "setsid python3 -m http.server 8799 --directory /srv/foreign-index > /srv/foreign-index.log 2>&1 < /dev/null &"
        " sleep 1"
    )
    try:
        assert "cortex-client" in HOST.sh("/opt/cortex/venv/bin/pip index versions cortex-client 2>&1 || true")
        HOST.sh(": > /srv/foreign-index.log")  # the check above asked it; the role must not
        run = apply_role(HOST.name, role="cortex_env", cortex_env_wheelhouse="")
        assert run.rc == 0, run
        assert "GET" not in HOST.sh("cat /srv/foreign-index.log"), "the role asked the index"
        installed = HOST.sh("/opt/cortex/venv/bin/pip list --format=freeze")
        assert "cortexlinux-router==" in installed and "cortex-client" not in installed, installed
        assert HOST.sh("/opt/cortex/venv/bin/python -c 'import cortex_foreign_marker' 2>&1; true").strip()
        again = apply_role(HOST.name, role="cortex_env", cortex_env_wheelhouse="")
        assert again.rc == 0 and again.stats["changed"] == 0, again
        old = apply_role(HOST.name, role="cortex_env", cortex_env_client_spec="cortex-client")
        assert old.rc != 0 and "cortex_env_client_spec is gone" in " ".join(old.failures), old
    finally:
        HOST.sh("rm -f /etc/pip.conf; pkill -f '[h]ttp.server 8799'; true")
