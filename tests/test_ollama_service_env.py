"""Role ollama's effective-environment module: systemd's environment-file syntax, the order in which Environment=,
EnvironmentFile= and UnsetEnvironment= apply, and the verdicts the role's guard is built on. The scenario `ollama`
shows the same against a real systemd (test_an_override_that_breaks_a_guarantee_fails_the_run)."""

from __future__ import annotations

import pytest

from tests.support.filters import role_module

M = role_module("ollama", "ollama_service_env")

SHOW = (
    "NeedDaemonReload=no\n"
    'Environment="OLLAMA_HOST=127.0.0.1:11434" OLLAMA_MODELS=/var/lib/ollama/models HOME=/var/lib/ollama\n'
    "EnvironmentFiles=/etc/ollama/secrets.env (ignore_errors=no)\n"
    "EnvironmentFiles=/etc/default/ollama (ignore_errors=yes)\n"
    "UnsetEnvironment=\n"
    "ReadWritePaths=/var/lib/ollama -/tmp/extra\n"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A=1\nB = 2 \n", {"A": "1", "B": "2"}),
        ("# comment\n; also a comment\nnot an assignment\n\nA=1", {"A": "1"}),
        ("A='single # kept\nacross lines'\n", {"A": "single # kept\nacross lines"}),
        ('A="dq \\"x\\" \\$HOME \\n"\n', {"A": 'dq "x" $HOME \\n'}),
        ("A=one\\\ntwo\n", {"A": "onetwo"}),
        ("A=a\\ b\\\\c\n", {"A": "a b\\c"}),
        ("A=inner  space kept  \r\n", {"A": "inner  space kept"}),
        ("A=1\nA=2\n", {"A": "2"}),
        ("1BAD=x\nGOOD=y\n", {"GOOD": "y"}),
    ],
    ids=[
        "plain",
        "comments",
        "single-quotes",
        "double-quotes",
        "continuation",
        "escapes",
        "whitespace",
        "last-wins",
        "bad-name",
    ],
)
def test_environment_files_parse_as_systemd_reads_them(text: str, expected: dict[str, str]) -> None:
    assert M.parse_env_file(text) == expected


def test_an_environment_file_wins_over_environment_lines_and_is_named() -> None:
    files = {"/etc/ollama/secrets.env": "REGISTRY_TOKEN=t0k\n", "/etc/default/ollama": "OLLAMA_HOST=0.0.0.0\n"}
    seen = M.assess(M.parse_show(SHOW), files.__getitem__)
    assert seen["env"]["OLLAMA_HOST"] == "0.0.0.0"
    assert seen["origin"]["OLLAMA_HOST"] == "/etc/default/ollama"
    assert seen["origin"]["OLLAMA_MODELS"] == "Environment="
    assert (seen["bind"], seen["loopback"]) == ("0.0.0.0", False)
    assert seen["models_writable"] and seen["writable"] == ["/var/lib/ollama", "/tmp/extra"]
    # Values beyond the four the guarantees need are never returned: they may be secrets.
    assert "t0k" not in repr(seen)


def test_a_missing_optional_file_is_skipped_and_a_required_one_reported() -> None:
    def read(path: str) -> str:
        raise FileNotFoundError(path)

    seen = M.assess(M.parse_show(SHOW), read)
    assert seen["unreadable_files"] == ["/etc/ollama/secrets.env"]
    assert seen["loopback"]


def test_unset_environment_applies_last() -> None:
    show = SHOW.replace("UnsetEnvironment=\n", "UnsetEnvironment=OLLAMA_HOST OLLAMA_MODELS=/elsewhere\n")
    seen = M.assess(M.parse_show(show), {"/etc/ollama/secrets.env": "", "/etc/default/ollama": ""}.__getitem__)
    assert "OLLAMA_HOST" not in seen["env"] and seen["loopback"]  # the server's default bind
    assert seen["env"]["OLLAMA_MODELS"] == "/var/lib/ollama/models"  # only that exact assignment is unset


@pytest.mark.parametrize(
    ("value", "bind", "loopback"),
    [
        ("127.0.0.1:11434", "127.0.0.1", True),
        ("http://[::]:11434", "::", False),
        ("[::1]:11434", "::1", True),
        ("0.0.0.0", "0.0.0.0", False),
        ("localhost:8080", "localhost", True),
        ("ollama.example.com", "ollama.example.com", False),
    ],
)
def test_bind_address_as_ollama_reads_ollama_host(value: str, bind: str, loopback: bool) -> None:
    assert M.bind_address(value) == (bind, loopback)


def test_a_store_outside_the_writable_paths_is_reported() -> None:
    seen = M.assess(M.parse_show(SHOW.replace("/var/lib/ollama/models", "/srv/models")), lambda path: "")
    assert (seen["models"], seen["models_writable"]) == ("/srv/models", False)
