#!/usr/bin/env python3
"""One-command local setup: a project venv with ansible-core, then playbooks/ollama.yml against this host.

A thin wrapper: everything it does is the playbook's work, so `ansible-playbook playbooks/ollama.yml` with the
same variables gives the same result. The role's preflight stops before any change where this host cannot
serve (no systemd as PID 1, no route to the release URL, unsupported OS) and says what to do.

    python3 scripts/setup_ollama.py                         # online: pinned release, verified sha256
    python3 scripts/setup_ollama.py --archive ./ollama-linux-amd64.tar.zst --checksums ./sha256sum.txt
    python3 scripts/setup_ollama.py --check                 # dry run: what would change
    python3 scripts/setup_ollama.py -- -e ollama_keep_alive=30m   # anything after -- goes to ansible-playbook
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
PLAYBOOK = ROOT / "playbooks" / "ollama.yml"


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
    extra_vars: dict[str, str] = {}
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
    parser.add_argument("ansible_args", nargs="*", help="after --: passed to ansible-playbook unchanged")
    args = parser.parse_args(argv)
    if bool(args.archive) != bool(args.checksums):
        parser.error("--archive and --checksums go together (the archive is verified before anything changes)")
    if os.geteuid() != 0 and not shutil.which("sudo") and not args.inventory:
        parser.error("run as root, or install sudo: the playbook installs a system service")
    cmd = build_command(args, ensure_venv())
    print("setup_ollama:", " ".join(cmd), flush=True)
    return subprocess.run(cmd, check=False, cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main())
