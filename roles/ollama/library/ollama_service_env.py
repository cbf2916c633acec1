#!/usr/bin/python
"""Ansible module of role ollama: the environment systemd really gives ollama.service, and what it means for the
role's guarantees (a loopback bind, a writable model store, safe CORS origins).

systemd builds a service's environment from `Environment=` lines and then `EnvironmentFile=` files, which win
(in the order listed), across the unit and every drop-in; `UnsetEnvironment=` removes names last. A user's
override.conf or an `/etc/default/ollama` named there can therefore undo what the role's drop-in sets, so the
role reads the result, not its own file. Only the four settings the guarantees depend on are returned: other
values may be secrets.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shlex
import subprocess
from collections.abc import Callable
from typing import Any

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: ollama_service_env
short_description: Read the effective environment of ollama.service (role ollama, internal)
description:
  - Reads C(Environment=), C(EnvironmentFile=) and C(UnsetEnvironment=) as systemd resolves them over the unit and
    its drop-ins, and reports the bind address, the model store and CORS origins the server will really get.
  - Runs C(systemctl daemon-reload) first when a unit file changed on disk, unless in check mode.
options:
  unit: {description: The service unit., type: str, default: ollama.service}
"""

SHOWN = ("OLLAMA_HOST", "OLLAMA_MODELS", "OLLAMA_ORIGINS", "HOME")
_PROPERTIES = ("NeedDaemonReload", "Environment", "EnvironmentFiles", "UnsetEnvironment", "ReadWritePaths")


def parse_env_file(text: str) -> dict[str, str]:
    """Assignments of a systemd environment file, as systemd reads them: `#`/`;` comments, lines without `=`
    ignored, unquoted values with shell backslash escapes and trailing-backslash continuation, single quotes
    verbatim, double quotes with shell escapes; both quote forms may span lines."""
    env: dict[str, str] = {}
    i, n = 0, len(text)
    while i < n:
        # Start of a line: skip leading whitespace, comments and lines without an assignment.
        while i < n and text[i] in " \t\r":
            i += 1
        if i >= n:
            break
        if text[i] in "#;\n":
            i = _line_end(text, i)
            continue
        eq = text.find("=", i)
        end = text.find("\n", i)
        if eq < 0 or (0 <= end < eq):
            i = _line_end(text, i)
            continue
        key = text[i:eq].strip()
        value, i = _value(text, eq + 1)
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            env[key] = value
    return env


def _line_end(text: str, i: int) -> int:
    end = text.find("\n", i)
    return len(text) if end < 0 else end + 1


def _value(text: str, i: int) -> tuple[str, int]:
    """The value starting at text[i] and where the next line starts."""
    n = len(text)
    while i < n and text[i] in " \t":
        i += 1
    out: list[str] = []
    if i < n and text[i] == "'":
        close = text.find("'", i + 1)
        close = n if close < 0 else close
        return text[i + 1 : close], _line_end(text, close)
    if i < n and text[i] == '"':
        i += 1
        while i < n and text[i] != '"':
            if text[i] == "\\" and i + 1 < n:
                nxt = text[i + 1]
                if nxt == "\n":
                    pass
                elif nxt in '"\\`$':
                    out.append(nxt)
                else:
                    out.append("\\" + nxt)
                i += 2
                continue
            out.append(text[i])
            i += 1
        return "".join(out), _line_end(text, i)
    while i < n and text[i] != "\n":
        if text[i] == "\\" and i + 1 < n:
            if text[i + 1] != "\n":
                out.append(text[i + 1])
            i += 2
            continue
        out.append(text[i])
        i += 1
    return "".join(out).rstrip(" \t\r"), i + 1


def parse_show(output: str) -> dict[str, list[str]]:
    """`systemctl show -p ...` output: each property's lines (EnvironmentFiles= repeats, one line per file)."""
    props: dict[str, list[str]] = {}
    for line in output.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            props.setdefault(key, []).append(value)
    return props


def environment_files(lines: list[str]) -> list[tuple[str, bool]]:
    """`EnvironmentFiles=` lines (`/path (ignore_errors=yes)`) -> (path, optional) in systemd's order."""
    files = []
    for line in lines:
        m = re.match(r"^(.*) \(ignore_errors=(yes|no)\)$", line)
        if m:
            files.append((m.group(1), m.group(2) == "yes"))
        elif line:
            files.append((line, False))
    return files


def read_file(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def effective_env(
    props: dict[str, list[str]], read: Callable[[str], str] = read_file
) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """The environment, where each name came from (`Environment=` or a file's path), and unreadable files."""
    env: dict[str, str] = {}
    origin: dict[str, str] = {}
    for line in props.get("Environment", []):
        for item in shlex.split(line):
            key, sep, value = item.partition("=")
            if sep:
                env[key], origin[key] = value, "Environment="
    unreadable = []
    for path, optional in environment_files(props.get("EnvironmentFiles", [])):
        try:
            assignments = parse_env_file(read(path))
        except OSError:
            if not optional:
                unreadable.append(path)
            continue
        for key, value in assignments.items():
            env[key], origin[key] = value, path
    for line in props.get("UnsetEnvironment", []):
        for item in shlex.split(line):
            # `NAME` removes the name, `NAME=value` only that exact assignment.
            key, sep, value = item.partition("=")
            if key in env and (not sep or env[key] == value):
                del env[key]
                origin.pop(key, None)
    return env, origin, unreadable


def bind_address(ollama_host: str) -> tuple[str, bool]:
    """OLLAMA_HOST as Ollama reads it (optional scheme, host, optional port): the address and whether it is loopback."""
    host = re.sub(r"^[A-Za-z]+://", "", ollama_host).split("/")[0]
    m = re.match(r"^\[(.*)\](:\d*)?$", host)
    bind = m.group(1) if m else host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    try:
        return bind, ipaddress.ip_address(bind).is_loopback
    except ValueError:
        return bind, bind == "localhost"


def assess(props: dict[str, list[str]], read: Callable[[str], str] = read_file) -> dict[str, Any]:
    env, origin, unreadable = effective_env(props, read)
    bind, loopback = bind_address(env.get("OLLAMA_HOST", "127.0.0.1:11434"))
    models = env.get("OLLAMA_MODELS") or os.path.join(env.get("HOME", "/"), ".ollama/models")
    writable = [w.lstrip("-+") for line in props.get("ReadWritePaths", []) for w in line.split()]
    inside = any(models == w or models.startswith(w.rstrip("/") + "/") for w in writable)
    return {
        "env": {k: env[k] for k in SHOWN if k in env},
        # Where each of them was set: "Environment=" or the EnvironmentFile's path (named in refusals).
        "origin": {k: origin[k] for k in SHOWN if k in origin},
        "unreadable_files": unreadable,
        "bind": bind,
        "loopback": loopback,
        "models": models,
        "models_writable": inside,
        "writable": writable,
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec={"unit": {"type": "str", "default": "ollama.service"}}, supports_check_mode=True
    )

    def show() -> dict[str, list[str]]:
        argv = ["systemctl", "show", module.params["unit"], *(f"--property={p}" for p in _PROPERTIES)]
        return parse_show(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)

    try:
        props = show()
        reloaded = props.get("NeedDaemonReload") == ["yes"] and not module.check_mode
        if reloaded:
            subprocess.run(["systemctl", "daemon-reload"], check=True, capture_output=True, text=True)
            props = show()
    except subprocess.CalledProcessError as e:
        module.fail_json(msg=f"{' '.join(e.cmd)} failed: {(e.stderr or e.stdout or '').strip()}")
    module.exit_json(changed=reloaded, reloaded=reloaded, **assess(props))


if __name__ == "__main__":
    main()
