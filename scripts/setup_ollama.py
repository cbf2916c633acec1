#!/usr/bin/env python3
"""One-command local setup: a project venv with ansible-core and ansible-runner, then playbooks/ollama.yml
against this host through ansible-runner, with a progress line for each change, failure and message.

A thin wrapper: everything it does is the playbook's work, so `ansible-playbook playbooks/ollama.yml` with the same
variables gives the same result (--print-command shows that command). It asks which model to use (the original
integration's list; llama3.2 by default), and the playbook installs Ollama, pulls that model, sends it a test prompt
(the batch gate), writes /etc/cortex/.env for it and installs cortex_client from this checkout into
/opt/cortex/venv, then runs `cortex-llm doctor`. The roles' preflight stops before any change where this host cannot
serve (no systemd as PID 1, no route to the release URL, unsupported OS) and says what to do.

    python3 scripts/setup_ollama.py                         # asks for the model; online: pinned, verified release
    python3 scripts/setup_ollama.py --model llama3.2:1b --non-interactive   # CI: no questions
    python3 scripts/setup_ollama.py --archive ./ollama-linux-amd64.tar.zst --checksums ./sha256sum.txt
    python3 scripts/setup_ollama.py --check                 # dry run: what would change
    python3 scripts/setup_ollama.py --print-command         # show the ansible-playbook command, run nothing
    python3 scripts/setup_ollama.py -- -e ollama_keep_alive=30m   # anything after -- goes to ansible-playbook

The full output of each run is kept in .cache/setup_ollama/ (the last five runs), without secrets: values of settings
named like credentials (in the environment and in -e) and URL passwords are replaced there and in the printed command.
SSH host keys are checked as Ansible's configuration says (on, unless ANSIBLE_HOST_KEY_CHECKING or ansible.cfg turns
it off): a host whose key changed is refused before it is sent the become password or any key.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
PLAYBOOK = ROOT / "playbooks" / "ollama.yml"
RUNS = ROOT / ".cache" / "setup_ollama"  # ansible-runner's artifacts: each run's events and full output

# The original integration's curated models: name, download size, memory it needs, what it is for.
MODELS = [
    ("llama3.2", "2.0 GB", "4 GB", "recommended"),
    ("llama3.2:1b", "1.3 GB", "2 GB", "smallest, fastest"),
    ("llama3.1:8b", "4.7 GB", "8 GB", "more capable"),
    ("mistral", "4.1 GB", "8 GB", "alternative"),
    ("codellama:7b", "3.8 GB", "8 GB", "code"),
    ("phi3", "2.3 GB", "4 GB", "Microsoft, small"),
]
DEFAULT_MODEL = MODELS[0][0]

# Names of settings whose values are secrets (ANTHROPIC_API_KEY, cortex_env_openai_api_key, VAULT_PASS, *_PWD,
# *_CREDS, ...), and a URL's user and password: never printed, never kept in the run's artifacts.
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASS|PWD|CRED|PRIVATE|AUTH|KEY", re.IGNORECASE)
URL_USERINFO = re.compile(r"(://)[^/@\s]+@")
REDACTED = "<redacted>"


def redacted_value(name: str, value: object) -> object:
    """A setting's value as it may be shown: secrets by name replaced, URL passwords cut out, nested ones too."""
    if SECRET_NAME.search(name):
        return REDACTED
    if isinstance(value, dict):
        return {k: redacted_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list):
        return [redacted_value(name, v) for v in value]
    return URL_USERINFO.sub(r"\1" + REDACTED + "@", value) if isinstance(value, str) else value


def parsed_extra_vars(value: str) -> object:
    """An -e value as ansible-playbook reads it: JSON or YAML ({key: value}), else key=value pairs."""
    import yaml  # noqa: PLC0415 # the venv's (this runs after the re-exec); the system python3 may lack it

    if value.lstrip().startswith(("{", "[")):
        try:
            return yaml.safe_load(value)  # JSON is YAML
        except yaml.YAMLError:
            pass
    return {k: v for k, eq, v in (pair.partition("=") for pair in shlex.split(value)) if eq}


def redacted_extra_vars(value: str) -> str:
    """An -e value as it may be shown: JSON or YAML redacted by key, key=value pairs by name; @file is a path."""
    if value.startswith("@"):
        return value
    if value.lstrip().startswith(("{", "[")):
        return json.dumps(redacted_value("", parsed_extra_vars(value)))
    pairs = [pair.partition("=") for pair in shlex.split(value)]
    return " ".join(f"{k}{eq}{redacted_value(k, v) if eq else ''}" for k, eq, v in pairs)  # quoted once, by the caller


def redacted_args(args: list[str]) -> list[str]:
    """ansible-playbook options as they may be printed or stored: every -e/--extra-vars value redacted."""
    out: list[str] = []
    pending = False
    for arg in args:
        if pending:
            out.append(redacted_extra_vars(arg))
            pending = False
        elif arg in ("-e", "--extra-vars"):
            out.append(arg)
            pending = True
        elif arg.startswith("--extra-vars="):
            out.append("--extra-vars=" + redacted_extra_vars(arg.split("=", 1)[1]))
        elif arg.startswith("-e") and not arg.startswith("--"):
            out.append("-e" + redacted_extra_vars(arg[2:]))
        else:
            out.append(arg)
    return out


# Names that look like secrets' and are not: the working directories, Ansible's own settings.
NOT_SECRET = re.compile(r"^(PWD|OLDPWD|ANSIBLE_.*)$")


def secrets_in(name: str, value: object) -> set[str]:
    """The secret strings in a setting: its whole value when the name is a secret's (not a yes/no or a number,
    which would blank every such word in the logs), URL passwords in it."""
    if isinstance(value, dict):
        return {s for k, v in value.items() for s in secrets_in(str(k), v)}
    if isinstance(value, list):
        return {s for v in value for s in secrets_in(name, v)}
    text = "" if value is None or isinstance(value, bool) else str(value)
    plain = text.lower() in ("true", "false", "yes", "no") or text.isdigit()
    found = {text} if SECRET_NAME.search(name) and not NOT_SECRET.match(name) and text and not plain else set()
    return found | {m.group(0)[3:-1] for m in URL_USERINFO.finditer(text)}


def secret_values(args: list[str], env: dict[str, str]) -> set[str]:
    """The values the run's artifacts must not keep: secret settings from the environment and from -e."""
    found = {s for k, v in env.items() for s in secrets_in(k, v)}
    values = [a for prev, a in zip(["", *args], args, strict=False) if prev in ("-e", "--extra-vars")]
    values += [a.split("=", 1)[1] for a in args if a.startswith("--extra-vars=")]
    values += [a[2:] for a in args if a.startswith("-e") and not a.startswith("--") and len(a) > 2]
    for value in values:
        if value.startswith("@"):
            continue
        found |= secrets_in("", parsed_extra_vars(value))
    return {s for s in found if len(s) >= 4}  # a short value would replace ordinary text


def scrub_artifacts(artifact_dir: Path, secrets: set[str]) -> None:
    """ansible-runner keeps the process environment and the command line under the artifact directory: replace the
    secrets there (and anywhere else in the run's files) before they stay on disk."""
    if not secrets or not artifact_dir.is_dir():
        return
    for path in artifact_dir.rglob("*"):
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
        cleaned = text
        for secret in sorted(secrets, key=len, reverse=True):
            cleaned = cleaned.replace(secret, REDACTED).replace(json.dumps(secret)[1:-1], REDACTED)
        if cleaned != text:
            path.write_text(cleaned, encoding="utf-8", errors="surrogateescape")


def host_key_checking() -> str:
    """Ansible's own setting, as the playbook run would read it (the operator's ANSIBLE_HOST_KEY_CHECKING, else the
    ansible.cfg it uses, else on). ansible-runner turns checking off unless it is given explicitly."""
    from ansible.config.manager import ConfigManager  # noqa: PLC0415 # only in the venv

    config = os.environ.get("ANSIBLE_CONFIG") or str(ROOT / "ansible.cfg")
    return str(bool(ConfigManager(conf_file=config).get_config_value("HOST_KEY_CHECKING")))


def choose_model() -> str:
    """Ask on the terminal: a number from the list, a model name, or Enter for the default."""
    print("Models (download size, memory needed):")
    for i, (name, size, memory, note) in enumerate(MODELS, 1):
        default = "  [default]" if name == DEFAULT_MODEL else ""
        print(f"  {i}. {name:<14} {size:>7}  {memory:>5} RAM  {note}{default}")
    for _ in range(3):
        answer = input(f"Model [1-{len(MODELS)}, a name, or Enter for {DEFAULT_MODEL}]: ").strip()
        if not answer:
            return DEFAULT_MODEL
        if answer.isdigit():
            if 1 <= int(answer) <= len(MODELS):
                return MODELS[int(answer) - 1][0]
            print(f"  {answer} is not in the list (1-{len(MODELS)})")
            continue
        return answer
    sys.exit("setup_ollama: no model chosen")


def invoking_user() -> str:
    """Who ran the setup (through sudo too): that user may read /etc/cortex/.env afterwards."""
    user = os.environ.get("SUDO_USER") or (getpass.getuser() if os.geteuid() != 0 else "")
    return "" if user == "root" else user


def ensure_venv() -> Path:
    """Give .venv the `provision` dependency group (ansible-core, ansible-runner) unless it has it; its python."""
    python = VENV / "bin" / "python"
    probe = [str(python), "-c", "import ansible, ansible_runner"]
    if python.exists() and subprocess.run(probe, check=False, capture_output=True).returncode == 0:
        return python
    print(f"setup_ollama: setting up {VENV.relative_to(ROOT)} with ansible-core and ansible-runner (one-time)")
    try:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "-q"]
        # `--group` needs pip >= 25.1; distributions ship older ones.
        subprocess.run([*pip, "-U", "pip"], check=True)
        subprocess.run([*pip, "--group", f"{ROOT / 'pyproject.toml'}:provision"], check=True)
    except subprocess.CalledProcessError as err:
        sys.exit(
            f"setup_ollama: could not set up the venv ({err}). Without access to PyPI, install ansible-core "
            "from a local wheelhouse: .venv/bin/pip install --no-index --find-links DIR ansible-core "
            "ansible-runner; on Debian/Ubuntu, `python3 -m venv` also needs the python3-venv package."
        )
    return python


def playbook_vars(args: argparse.Namespace) -> dict[str, object]:
    extra_vars: dict[str, object] = {}
    if args.model:
        extra_vars["ollama_models"] = [args.model]
        extra_vars["cortex_env_provider"] = "ollama"
        extra_vars["cortex_env_ollama_model"] = args.model
    if not args.inventory:  # this host: the client (built from this checkout), readable by whoever ran the setup
        extra_vars["cortex_env_install_client"] = True
        if invoking_user():
            extra_vars["cortex_env_users"] = [invoking_user()]
    if args.version:
        extra_vars["ollama_version"] = args.version
    if args.archive:
        extra_vars["ollama_archive_src"] = str(Path(args.archive).resolve())
    if args.checksums:
        extra_vars["ollama_checksums_file"] = str(Path(args.checksums).resolve())
    return extra_vars


def playbook_options(args: argparse.Namespace) -> list[str]:
    """ansible-playbook's options besides the playbook, inventory and variables."""
    options = ["--check", "--diff"] if args.check else []
    if os.geteuid() != 0 and not args.inventory:
        # The local play uses become; ask for the sudo password unless sudo works without one.
        no_password = subprocess.run(["sudo", "-n", "true"], check=False, capture_output=True).returncode == 0
        if not no_password:
            options.append("--ask-become-pass")
    return options + args.ansible_args


class Progress:
    """ansible-runner's events as the run goes: each task that changed something or failed, with the time since the
    start; the roles' messages (doctor's report, what was found); a task still running after SLOW_S seconds (a
    download, a model pull) named while it runs; Ansible's recap at the end. The full output is in the artifacts."""

    SLOW_S = 10.0

    def __init__(self, show_hosts: bool) -> None:
        self.show_hosts = show_hosts
        self.started = time.monotonic()
        self.slow: threading.Timer | None = None

    def say(self, what: str, task: str, host: str = "") -> None:
        where = f"  [{host}]" if self.show_hosts and host else ""
        print(f"  [{time.monotonic() - self.started:5.0f}s] {what:<9} {task}{where}", flush=True)

    def __call__(self, event: dict[str, Any]) -> bool:
        kind, data = event.get("event", ""), event.get("event_data", {})
        task = f"{data['role']} : {data.get('task', '')}" if data.get("role") else data.get("task", "")
        host, shown = data.get("host", ""), event.get("stdout", "").strip()
        if kind in ("playbook_on_task_start", "playbook_on_stats") and self.slow:
            self.slow.cancel()
        if kind == "playbook_on_play_start":
            print(f"setup_ollama: play {data.get('play', '')!r}", flush=True)
        elif kind == "playbook_on_task_start":
            self.slow = threading.Timer(self.SLOW_S, self.say, ("running", task))
            self.slow.daemon = True
            self.slow.start()
        elif kind in ("runner_on_failed", "runner_on_unreachable") and not data.get("ignore_errors"):
            self.say("FAILED" if kind == "runner_on_failed" else "UNREACHABLE", task, host)
            print(indent(shown), flush=True)
        elif kind == "runner_on_ok":
            result = data.get("res", {})
            if result.get("changed"):
                self.say("changed", task, host)
            message = result.get("msg")
            reports = data.get("task_action", "").endswith(("debug", "assert"))
            if reports and message not in (None, "All assertions passed", "All items completed"):
                self.say("says", task, host)  # what a role means the operator to read
                print(indent("\n".join(message) if isinstance(message, list) else str(message)), flush=True)
        elif kind == "playbook_on_stats":
            print(shown, flush=True)
        return True  # keep every event in the run's artifacts


def indent(text: str) -> str:
    return "\n".join(f"            {line}" for line in text.splitlines())


def run_playbook(args: argparse.Namespace, extra_vars: dict[str, object], options: list[str]) -> int:
    """The site playbook through ansible-runner (the venv's: main() re-executes this script there first)."""
    import ansible_runner  # noqa: PLC0415 # only in the venv

    passwords = {}
    if "--ask-become-pass" in options:
        passwords[r"^BECOME password.*:\s*?$"] = getpass.getpass("sudo password: ")
    env = {
        "PATH": f"{VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', os.defpath)}",  # not on PATH after the re-exec
        "ANSIBLE_HOST_KEY_CHECKING": host_key_checking(),
    }
    if env["ANSIBLE_HOST_KEY_CHECKING"] == "True" and "ANSIBLE_SSH_EXTRA_ARGS" not in os.environ:
        # ssh would ask about a host it has never seen, in ansible-runner's terminal where nobody answers: record
        # a new host's key on first contact, and still refuse one whose key changed.
        env["ANSIBLE_SSH_EXTRA_ARGS"] = "-o StrictHostKeyChecking=accept-new"
    if not sys.stdout.isatty():
        env["ANSIBLE_NOCOLOR"] = "1"  # ansible-runner gives ansible a terminal of its own
    # A fresh private data dir per run: ansible-runner would reuse a previous run's env/cmdline when this one has
    # no options. Only the artifacts (events, full output) are kept.
    # Scrubbed however the run ends (Ctrl-C included): every kept run, not only this one's.
    secrets = secret_values(options, {**os.environ, **env}) | set(passwords.values())
    try:
        with tempfile.TemporaryDirectory(prefix="setup_ollama-") as private:
            runner = ansible_runner.run(
                private_data_dir=private,
                artifact_dir=str(RUNS),
                rotate_artifacts=5,
                project_dir=str(ROOT),
                playbook=str(PLAYBOOK),
                inventory=args.inventory,
                extravars=extra_vars,
                cmdline=shlex.join(options),
                passwords=passwords,
                envvars=env,
                event_handler=Progress(show_hosts=bool(args.inventory)),
                quiet=True,
            )
    finally:
        scrub_artifacts(RUNS, secrets)
    print(f"setup_ollama: full output in {Path(runner.config.artifact_dir, 'stdout').relative_to(ROOT)}")
    rc: int = runner.rc
    return rc


def equivalent_command(args: argparse.Namespace, extra_vars: dict[str, object], options: list[str]) -> str:
    """What ansible-runner runs, as one shell line that works from any directory (ansible.cfg is the checkout's),
    secrets given after -- redacted."""
    cmd = [".venv/bin/ansible-playbook", "playbooks/ollama.yml", *(["-i", args.inventory] if args.inventory else [])]
    line = shlex.join([*cmd, "-e", json.dumps(extra_vars), *redacted_args(options)])
    return f"cd {shlex.quote(str(ROOT))} && {line}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", help="Ollama version to install (default: the role's pinned version)")
    parser.add_argument("--archive", help="air-gapped: local ollama-linux-<arch> archive (.tgz or .tar.zst)")
    parser.add_argument(
        "--checksums",
        help="air-gapped: the release's sha256sum.txt for --archive (for an unpinned version, a copy kept outside "
        "the archive's directory)",
    )
    parser.add_argument("--inventory", help="inventory instead of this host (default: inventory/localhost.yml)")
    parser.add_argument("--check", action="store_true", help="dry run: report what would change")
    parser.add_argument("--model", help=f"model to pull and configure (default: ask, or {DEFAULT_MODEL})")
    parser.add_argument("--non-interactive", action="store_true", help="ask nothing (CI); the model defaults")
    parser.add_argument("--print-command", action="store_true", help="print the ansible-playbook command and exit")
    parser.add_argument("ansible_args", nargs="*", help="after --: passed to ansible-playbook unchanged")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if bool(args.archive) != bool(args.checksums):
        parser.error("--archive and --checksums go together (the archive is verified before anything changes)")
    if os.geteuid() != 0 and not shutil.which("sudo") and not args.inventory:
        parser.error("run as root, or install sudo: the playbook installs a system service")
    python = ensure_venv()
    if Path(sys.prefix).resolve() != VENV.resolve():  # ansible-runner is the venv's: go on there
        os.execv(python, [str(python), __file__, *(sys.argv[1:] if argv is None else argv)])  # noqa: S606
    if not args.model:
        interactive = not args.non_interactive and not args.print_command and sys.stdin.isatty()
        args.model = choose_model() if interactive else DEFAULT_MODEL
    if args.inventory:
        args.inventory = str(Path(args.inventory).resolve())
    extra_vars, options = playbook_vars(args), playbook_options(args)
    if args.print_command:  # the line alone, on stdout, to paste anywhere
        print(equivalent_command(args, extra_vars, options))
        return 0
    print(f"setup_ollama: running {equivalent_command(args, extra_vars, options)}", flush=True)
    rc = run_playbook(args, extra_vars, options)
    if rc == 0 and not args.check and not args.inventory:
        print(
            f"setup_ollama: Ollama runs {args.model}; Cortex is configured in /etc/cortex/.env.\n"
            f"  try:  /opt/cortex/venv/bin/cortex-llm ask 'Hello'"
            + (f"   (as {invoking_user()}: log in again first, for group cortex)" if invoking_user() else "")
        )
    return rc


if __name__ == "__main__":
    sys.exit(main())
