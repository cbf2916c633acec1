"""Role cortex_env's module cortex_env_venv_support: whether apt could fetch python3.X-venv is judged by the mirrors
it would download from, or by apt's proxy when one is set (a proxied host reaches no mirror directly)."""

from __future__ import annotations

import socket
import subprocess

from tests.support.filters import role_module

M = role_module("cortex_env", "cortex_env_venv_support")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_mirrors_are_judged_directly_or_through_apt_s_proxy() -> None:
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        up = f"http://127.0.0.1:{listening.getsockname()[1]}"
        down = f"http://127.0.0.1:{closed_port()}"
        assert M.unreachable([f"{up}/debian/pool/x.deb", "file:/srv/repo/y.deb"]) == []
        assert M.unreachable([f"{down}/debian/pool/x.deb"]) == [down.removeprefix("http://")]
        # Through a proxy that answers, a mirror the host cannot reach itself is no problem; a dead proxy is.
        assert M.unreachable([f"{down}/debian/pool/x.deb"], proxy=up + "/") == []
        assert M.unreachable([f"{up}/debian/pool/x.deb"], proxy=down) == [down.removeprefix("http://")]


def test_a_python_that_makes_venvs_needs_nothing() -> None:
    probe = subprocess.CompletedProcess(["python3"], 0, stdout="3.11\n", stderr="")
    assert M.support(probe) == {
        "python": "3.11",
        "venv": True,
        "package": "python3.11-venv",
        "installable": True,
        "problem": "",
    }
