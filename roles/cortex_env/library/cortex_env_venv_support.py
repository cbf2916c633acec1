#!/usr/bin/python
"""Ansible module of role cortex_env: can the host's python3 make the client's venv, and if not, can apt install
what it lacks? Debian and Ubuntu ship venv's ensurepip in a package of its own (python3.X-venv); on an air-gapped
host apt cannot fetch it, and the install would fail with apt's raw errors ("does not have a Release file") after
the configuration was written. Read-only, so preflight can refuse first."""

from __future__ import annotations

import re
import socket
import subprocess
from urllib.parse import urlsplit

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: cortex_env_venv_support
short_description: Whether python3 can make a venv, and whether apt can add the package it lacks (role cortex_env)
description:
  - Runs C(python3) to import C(ensurepip) and C(venv); where that fails, asks apt for the download URIs of
    C(python<X.Y>-venv) and tries to connect to each mirror.
  - Changes nothing; supports check mode.
options: {}
"""

RETURN = r"""
python: {description: Version of the host's python3 (X.Y)., type: str, returned: always}
venv: {description: Whether python3 can make a venv now., type: bool, returned: always}
package: {description: The package that adds venv support to this python3., type: str, returned: always}
installable: {description: Whether apt can install that package now., type: bool, returned: always}
problem: {description: Why apt cannot, or empty., type: str, returned: always}
"""

PROBE = "import sys; print('%d.%d' % sys.version_info[:2]); import ensurepip, venv"
CONNECT_TIMEOUT_S = 5.0
NO_APT = "this host has no apt-get"


def apt_uris(*args: str) -> tuple[list[str], str]:
    """The URIs `apt-get <args> --print-uris` names (downloads it would make), or apt's complaint."""
    try:
        proc = subprocess.run(
            ["apt-get", "-o", "Debug::NoLocking=1", *args, "--print-uris", "-q"],
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        return [], NO_APT
    if proc.returncode != 0:
        return [], (proc.stderr.strip().splitlines() or ["apt-get failed"])[-1]
    return [line.split()[0].strip("'") for line in proc.stdout.splitlines() if line.startswith("'")], ""


def apt_proxy() -> str:
    """The HTTP proxy apt goes through (Acquire::http::Proxy, e.g. apt-cacher-ng), or ""."""
    try:
        proc = subprocess.run(
            ["apt-config", "shell", "PROXY", "Acquire::http::Proxy"], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        return ""
    m = re.match(r"PROXY='(.*)'", proc.stdout.strip())
    return m.group(1) if m and m.group(1) not in ("", "DIRECT") else ""


def unreachable(uris: list[str], proxy: str = "") -> list[str]:
    """The mirrors among `uris` this host cannot open a connection to (local file: and copy: URIs need none); with
    an apt proxy, whether that proxy answers instead."""
    hosts = set()
    for uri in [proxy] if proxy and uris else uris:
        parts = urlsplit(uri)
        if parts.scheme in ("http", "https") and parts.hostname:
            hosts.add((parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)))
    failed = []
    for host, port in sorted(hosts):
        try:
            socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
        except OSError:
            failed.append(f"{host}:{port}")
    return failed


def support(python_probe: subprocess.CompletedProcess[str]) -> dict[str, object]:
    version = python_probe.stdout.strip().splitlines()[0] if python_probe.stdout.strip() else "3"
    package = f"python{version}-venv"
    result: dict[str, object] = {"python": version, "venv": python_probe.returncode == 0, "package": package}
    if result["venv"]:
        return {**result, "installable": True, "problem": ""}
    uris, complaint = apt_uris("install", "--reinstall", package)
    if complaint == NO_APT:
        problem = f"this host has no apt-get to install {package} with"
    elif complaint:  # not in the lists apt has: `apt-get update` must reach the sources first
        uris, _ = apt_uris("update")
        failed = unreachable(uris, apt_proxy()) if uris else ["(no apt sources)"]
        problem = f"apt has no {package} ({complaint}) and cannot reach {', '.join(failed)} to update" if failed else ""
    else:
        failed = unreachable(uris, apt_proxy())
        problem = f"apt would download it from {', '.join(failed)}, which this host cannot reach" if failed else ""
    return {**result, "installable": not problem, "problem": problem}


def main() -> None:
    module = AnsibleModule(argument_spec={}, supports_check_mode=True)
    probe = subprocess.run(["python3", "-c", PROBE], capture_output=True, text=True, check=False)
    if not probe.stdout.strip():
        module.fail_json(msg=f"python3 does not run on this host: {probe.stderr.strip() or 'not found'}")
    module.exit_json(changed=False, **support(probe))


if __name__ == "__main__":
    main()
