#!/usr/bin/env python3
"""One-command local setup: a project venv with ansible-core, then playbooks/ollama.yml against this host.

A thin wrapper: everything it does is the playbook's work, so `ansible-playbook playbooks/ollama.yml` with the
same variables gives the same result. It asks which model to use (the original integration's list; llama3.2 by
default), and the playbook installs Ollama, pulls that model, sends it a test prompt (the batch gate), writes
/etc/cortex/.env for it and installs cortex_client from this checkout into /opt/cortex/venv, then runs
`cortex-llm doctor`. The roles' preflight stops before any change where this host cannot serve (no systemd as
PID 1, no route to the release URL, unsupported OS) and says what to do.

    python3 scripts/setup_ollama.py                         # asks for the model; online: pinned, verified release
    python3 scripts/setup_ollama.py --model llama3.2:1b --non-interactive   # CI: no questions
    python3 scripts/setup_ollama.py --archive ./ollama-linux-amd64.tar.zst --checksums ./sha256sum.txt
    python3 scripts/setup_ollama.py --check                 # dry run: what would change
    python3 scripts/setup_ollama.py --print-command         # show the ansible-playbook command, run nothing
    python3 scripts/setup_ollama.py -- -e ollama_keep_alive=30m   # anything after -- goes to ansible-playbook
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
PLAYBOOK = ROOT / "playbooks" / "ollama.yml"

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
    """Create .venv with the `provision` dependency group unless ansible-playbook is already there."""
    playbook_bin = VENV / "bin" / "ansible-playbook"
    if playbook_bin.exists():
        return playbook_bin
    print(f"setup_ollama: creating {VENV.relative_to(ROOT)} with ansible-core (one-time, about a minute)")
    try:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "-q"]
        # `--group` needs pip >= 25.1; distributions ship older ones.
        subprocess.run([*pip, "-U", "pip"], check=True)
        subprocess.run([*pip, "--group", f"{ROOT / 'pyproject.toml'}:provision"], check=True)
    except subprocess.CalledProcessError as err:
        sys.exit(
            f"setup_ollama: could not set up the venv ({err}). Without access to PyPI, install ansible-core "
            "from a local wheelhouse: .venv/bin/pip install --no-index --find-links DIR ansible-core; "
            "on Debian/Ubuntu, `python3 -m venv` also needs the python3-venv package."
        )
    return playbook_bin


def build_command(args: argparse.Namespace, playbook_bin: Path) -> list[str]:
    extra_vars: dict[str, object] = {}
    if args.model:
        extra_vars["ollama_models"] = [args.model]
        extra_vars["cortex_env_provider"] = "ollama"
        extra_vars["cortex_env_ollama_model"] = args.model
    if not args.inventory:  # this host: the client from this checkout, readable by whoever ran the setup
        extra_vars["cortex_env_install_client"] = True
        extra_vars["cortex_env_client_spec"] = str(ROOT)
        if invoking_user():
            extra_vars["cortex_env_users"] = [invoking_user()]
    if args.version:
        extra_vars["ollama_version"] = args.version
    if args.archive:
        extra_vars["ollama_archive_src"] = str(Path(args.archive).resolve())
    if args.checksums:
        extra_vars["ollama_checksums_file"] = str(Path(args.checksums).resolve())
    cmd = [str(playbook_bin), str(PLAYBOOK)]
    if args.inventory:
        cmd += ["-i", args.inventory]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    if args.check:
        cmd += ["--check", "--diff"]
    if os.geteuid() != 0 and not args.inventory:
        # The local play uses become; ask for the sudo password unless sudo works without one.
        no_password = subprocess.run(["sudo", "-n", "true"], check=False, capture_output=True).returncode == 0
        if not no_password:
            cmd.append("--ask-become-pass")
    return cmd + args.ansible_args


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", help="Ollama version to install (default: the role's pinned version)")
    parser.add_argument("--archive", help="air-gapped: local ollama-linux-<arch> archive (.tgz or .tar.zst)")
    parser.add_argument("--checksums", help="air-gapped: the release's sha256sum.txt next to --archive")
    parser.add_argument("--inventory", help="inventory instead of this host (default: inventory/localhost.yml)")
    parser.add_argument("--check", action="store_true", help="dry run: report what would change")
    parser.add_argument("--model", help=f"model to pull and configure (default: ask, or {DEFAULT_MODEL})")
    parser.add_argument("--non-interactive", action="store_true", help="ask nothing (CI); the model defaults")
    parser.add_argument("--print-command", action="store_true", help="print the ansible-playbook command and exit")
    parser.add_argument("ansible_args", nargs="*", help="after --: passed to ansible-playbook unchanged")
    args = parser.parse_args(argv)
    if bool(args.archive) != bool(args.checksums):
        parser.error("--archive and --checksums go together (the archive is verified before anything changes)")
    if os.geteuid() != 0 and not shutil.which("sudo") and not args.inventory:
        parser.error("run as root, or install sudo: the playbook installs a system service")
    if not args.model:
        interactive = not args.non_interactive and sys.stdin.isatty()
        args.model = choose_model() if interactive else DEFAULT_MODEL
    cmd = build_command(args, ensure_venv())
    print("setup_ollama:", shlex.join(cmd), flush=True)
    if args.print_command:
        return 0
    rc = subprocess.run(cmd, check=False, cwd=ROOT).returncode
    if rc == 0 and not args.check and not args.inventory:
        print(
            f"setup_ollama: Ollama runs {args.model}; Cortex is configured in /etc/cortex/.env.\n"
            f"  try:  /opt/cortex/venv/bin/cortex-llm ask 'Hello'"
            + (f"   (as {invoking_user()}: log in again first, for group cortex)" if invoking_user() else "")
        )
    return rc


if __name__ == "__main__":
    sys.exit(main())
