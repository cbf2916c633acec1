"""`cortex-llm` end to end: the console script against real loopback servers (the Ollama test double and the
router's fakes of the cloud wire formats), in an isolated home so the developer's config is never read."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import build_double_releases
from tests.support.double import InProcessDouble as OllamaDouble
from tests.support.fakes import ConnectionRecorder, FakeAnthropic, FakeOllama, FakeOpenAI, Reply, closed_port_url
from tests.support.instances import http_mirror
from tests.support.keys import SECRETS
from tests.support.terminal import on_a_terminal

from .conftest import CLI, DOUBLE_MODEL, Home


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS.values():
            assert secret not in text
            assert secret[:12] not in text  # nor the truncated form servers like to echo


def imported_modules(*args: str) -> set[str]:
    """Modules the CLI imports for `args`, from `python -X importtime` (stderr)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "cortex_client.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "HOME": "/nonexistent"},
    )
    return {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line}


# --- startup -------------------------------------------------------------------------------------------------


def test_help_imports_no_http_stack_or_sdk() -> None:
    modules = imported_modules("--help")
    assert "cortex_client._router" in modules  # the probe itself works
    assert not {"httpx", "openai", "anthropic"} & modules


def test_models_command_needs_no_cloud_sdk(user: Home, ollama_ready: OllamaDouble) -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "cortex_client.cli", "--etc-dir", str(user.etc), "models"],
        capture_output=True,
        text=True,
        check=False,
        cwd=user.cwd,
        env={"PATH": os.environ["PATH"], "HOME": str(user.home), "OLLAMA_BASE_URL": ollama_ready.url},
    )
    assert proc.returncode == 0, proc.stderr
    modules = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert "httpx" in modules
    assert not {"openai", "anthropic"} & modules


def test_console_script_version(user: Home) -> None:
    proc = user.run("--version")
    assert proc.returncode == 0
    assert re.fullmatch(r"cortex-llm \d+\.\d+\.\d+\n", proc.stdout)


# --- doctor --------------------------------------------------------------------------------------------------


def test_doctor_local_only_healthy_and_never_contacts_the_cloud(user: Home, ollama_ready: OllamaDouble) -> None:
    recorder = ConnectionRecorder()
    try:
        env = {
            **SECRETS,
            "CORTEX_LOCAL_ONLY": "true",
            "OLLAMA_BASE_URL": ollama_ready.url,
            "OLLAMA_MODEL": DOUBLE_MODEL,
            "ANTHROPIC_BASE_URL": recorder.url,
            "KIMI_BASE_URL": recorder.url + "/v1",
            "OPENAI_BASE_URL": recorder.url + "/v1",
        }
        proc = user.run("doctor", env=env)
    finally:
        recorder.close()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "local-only: yes" in out
    models = len(build_double_releases.REGISTRY_MODELS)
    assert f"ok    ollama   {ollama_ready.url} version 0.0.0, {models} model(s)" in out
    assert f"model {DOUBLE_MODEL}:latest present" in out
    for provider in ("claude", "kimi_k2", "openai"):
        assert f"skip  {provider}" in out
    assert "ANTHROPIC_API_KEY=<set>  (from environment)" in out
    assert "0 problem(s)" in out
    assert recorder.connections == 0
    assert_no_secret(proc.stdout, proc.stderr)


def test_doctor_reports_missing_model(user: Home, ollama_empty: OllamaDouble) -> None:
    proc = user.run("doctor", env={"OLLAMA_BASE_URL": ollama_empty.url, "OLLAMA_MODEL": "llama3.2"})
    assert proc.returncode == 1
    assert "FAIL  ollama   model llama3.2:latest not pulled (run: cortex-llm models pull llama3.2)" in proc.stdout
    assert "1 problem(s)" in proc.stdout


def test_doctor_reports_ollama_down(user: Home) -> None:
    url = closed_port_url()
    proc = user.run("doctor", env={"OLLAMA_BASE_URL": url})
    assert proc.returncode == 1
    assert f"FAIL  ollama   {url} unreachable" in proc.stdout


def test_doctor_checks_every_endpoint_of_an_ollama_pool(user: Home, ollama_ready: OllamaDouble) -> None:
    down = closed_port_url()
    env = {"OLLAMA_BASE_URL": f"{ollama_ready.url}, {down}", "OLLAMA_MODEL": DOUBLE_MODEL}
    proc = user.run("doctor", env=env)
    assert proc.returncode == 1
    assert f"ok    ollama   {ollama_ready.url} version" in proc.stdout
    assert f"FAIL  ollama   {down} unreachable" in proc.stdout
    assert "1 problem(s)" in proc.stdout


def test_doctor_probes_cloud_keys_and_never_prints_them(user: Home, ollama_ready: OllamaDouble) -> None:
    rejecting = FakeOpenAI()
    # A server that echoes the key it rejected (as OpenAI does: "Incorrect API key provided: sk-proj-...").
    echo = {"error": {"message": f"Incorrect API key provided: {SECRETS['MOONSHOT_API_KEY']}"}}
    rejecting.queue(Reply.fail(401, body=echo))
    try:
        env = {
            "OLLAMA_BASE_URL": ollama_ready.url,
            "OLLAMA_MODEL": DOUBLE_MODEL,
            "MOONSHOT_API_KEY": SECRETS["MOONSHOT_API_KEY"],
            "KIMI_BASE_URL": rejecting.url + "/v1",
            # Ollama's own OpenAI-compatible /v1/models answers like OpenAI's
            "OPENAI_API_KEY": SECRETS["OPENAI_API_KEY"],
            "OPENAI_BASE_URL": ollama_ready.url + "/v1",
        }
        proc = user.run("doctor", env=env)
    finally:
        rejecting.close()
    assert proc.returncode == 1
    assert f"FAIL  kimi_k2  {rejecting.url}/v1 rejected the key (HTTP 401)" in proc.stdout
    assert f"ok    openai   {ollama_ready.url}/v1 reachable, key accepted" in proc.stdout
    assert "-     claude   not configured (no API key)" in proc.stdout
    seen = rejecting.requests[0]
    assert (seen.method, seen.path) == ("GET", "/v1/models")
    assert seen.headers["authorization"] == f"Bearer {SECRETS['MOONSHOT_API_KEY']}"
    assert_no_secret(proc.stdout, proc.stderr)


ANTHROPIC_PROBES = [
    (None, 0, "ok    claude   {} reachable, key accepted"),
    (Reply.fail(403), 1, "FAIL  claude   {} rejected the key (HTTP 403)"),
    (Reply.fail(529), 1, "FAIL  claude   {} answered HTTP 529"),
]


@pytest.mark.parametrize(("reply", "code", "line"), ANTHROPIC_PROBES)
def test_doctor_probes_anthropic_the_way_requests_are_made(
    user: Home, ollama_ready: OllamaDouble, reply: Reply | None, code: int, line: str
) -> None:
    fake = FakeAnthropic()
    if reply is not None:
        fake.queue(reply)
    try:
        env = {
            "OLLAMA_BASE_URL": ollama_ready.url,
            "OLLAMA_MODEL": DOUBLE_MODEL,
            "ANTHROPIC_API_KEY": SECRETS["ANTHROPIC_API_KEY"],
            "ANTHROPIC_BASE_URL": fake.url,
        }
        proc = user.run("doctor", env=env)
    finally:
        fake.close()
    assert proc.returncode == code, proc.stdout
    assert line.format(fake.url) in proc.stdout
    assert len(fake.requests) == 1
    seen = fake.requests[0]
    assert seen.path == "/v1/models"
    # Through the SDK's own client: its auth header (x-api-key in anthropic 0.x/1.x, a bearer token in 2.x).
    sent = seen.headers.get("x-api-key") or seen.headers.get("authorization", "").removeprefix("Bearer ")
    assert sent == SECRETS["ANTHROPIC_API_KEY"]
    assert "anthropic-version" in seen.headers
    assert seen.headers["user-agent"].startswith("Anthropic/Python")
    assert_no_secret(proc.stdout, proc.stderr)


def test_doctor_shows_which_env_file_won(user: Home, ollama_ready: OllamaDouble) -> None:
    user.write_env(user.etc, OLLAMA_MODEL="from-etc", CORTEX_PROVIDER="ollama", OLLAMA_BASE_URL=ollama_ready.url)
    home_env = user.write_env(user.home / ".cortex", OLLAMA_MODEL=DOUBLE_MODEL)
    cwd_env = user.write_env(user.cwd, OPENAI_API_KEY=SECRETS["OPENAI_API_KEY"], CORTEX_LOCAL_ONLY="yes")
    proc = user.run("doctor")
    assert proc.returncode == 0, proc.stdout
    assert f"OLLAMA_MODEL={DOUBLE_MODEL}  (from {home_env})" in proc.stdout
    assert f"CORTEX_PROVIDER=ollama  (from {user.etc / '.env'})" in proc.stdout
    assert f"OPENAI_API_KEY=<set>  (from {cwd_env})" in proc.stdout
    assert "providers (default: ollama, local-only: yes)" in proc.stdout
    assert_no_secret(proc.stdout, proc.stderr)


def test_doctor_bad_config_is_a_clear_row(user: Home) -> None:
    proc = user.run("doctor", env={"CORTEX_LOCAL_ONLY": "maybe"})
    assert proc.returncode == 1
    assert "  FAIL  config   CORTEX_LOCAL_ONLY (from environment) must be true or false" in proc.stdout
    assert "local-only: yes" in proc.stdout  # a value nobody can read keeps the host local while it is fixed


# --- issue 27, item 11: every problem at once, one row each, naming its file ---------------------------------------


def test_doctor_reports_every_problem_at_once_naming_each_file(user: Home, ollama_empty: OllamaDouble) -> None:
    etc_env = user.write_env(user.etc, CORTEX_LOCAL_ONLY="maybe", OLLAMA_MODEL="llama3.2")
    home_env = user.write_env(user.home / ".cortex", OLLAMA_API="grpc")
    cwd_env = user.write_env(user.cwd, ANTHROPIC_API_KEY=SECRETS["ANTHROPIC_API_KEY"], ANTHROPIC_BASE_URL="api.x")
    proc = user.run("doctor", env={"OLLAMA_BASE_URL": f"{ollama_empty.url},ftp://mirror"})
    assert proc.returncode == 1
    rows = [line for line in proc.stdout.splitlines() if line.startswith("  FAIL")]
    assert rows == [
        "  FAIL  config   OLLAMA_BASE_URL (from environment) must be an http:// or https:// URL",
        f"  FAIL  config   OLLAMA_API (from {home_env}) must be auto, native or openai",
        f"  FAIL  config   CORTEX_LOCAL_ONLY (from {etc_env}) must be true or false (1/0, yes/no, on/off)",
        f"  FAIL  config   ANTHROPIC_BASE_URL (from {cwd_env}) must be an http:// or https:// URL",
        # the checks of the servers still ran, with what could be used: the good entry of the pool
        "  FAIL  ollama   model llama3.2:latest not pulled (run: cortex-llm models pull llama3.2)",
    ]
    assert f"  ok    ollama   {ollama_empty.url} version" in proc.stdout
    assert "5 problem(s)" in proc.stdout
    assert "['" not in proc.stdout + proc.stderr  # rows, never a Python list
    assert_no_secret(proc.stdout, proc.stderr)


def test_doctor_names_the_files_it_read(user: Home, ollama_ready: OllamaDouble) -> None:
    proc = user.run("doctor", env={"OLLAMA_BASE_URL": ollama_ready.url, "OLLAMA_MODEL": DOUBLE_MODEL})
    files = f"{user.cwd / '.env'}, {user.home / '.cortex' / '.env'}, {user.etc / '.env'}"
    assert f"config (highest precedence first: environment, {files})" in proc.stdout
    assert "/etc/cortex/.env" not in proc.stdout  # --etc-dir's file, not the default one


def test_ask_with_several_bad_values_names_them_all(user: Home) -> None:
    proc = user.run("ask", "hi", env={"CORTEX_LOCAL_ONLY": "maybe", "OLLAMA_API": "grpc"})
    assert proc.returncode == 1
    assert "cortex-llm: error: 2 configuration problems:" in proc.stderr
    assert "OLLAMA_API (from environment)" in proc.stderr and "CORTEX_LOCAL_ONLY (from environment)" in proc.stderr


def test_doctor_reports_a_cortex_provider_that_is_not_ours(user: Home, ollama_ready: OllamaDouble) -> None:
    env = {"CORTEX_PROVIDER": "fake", "OLLAMA_BASE_URL": ollama_ready.url, "OLLAMA_MODEL": DOUBLE_MODEL}
    proc = user.run("doctor", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "warn  config   CORTEX_PROVIDER (from environment) names none of" in proc.stdout
    assert "providers (default: routing table" in proc.stdout


def test_doctor_cloud_default_in_local_only_mode_is_reported(user: Home, ollama_ready: OllamaDouble) -> None:
    env = {"CORTEX_PROVIDER": "claude", "CORTEX_LOCAL_ONLY": "true", "OLLAMA_BASE_URL": ollama_ready.url}
    proc = user.run("doctor", env=env)
    assert "warn  config   default provider claude is a cloud provider and local-only mode is on" in proc.stdout
    assert "providers (default: ollama, local-only: yes)" in proc.stdout


# --- ask -----------------------------------------------------------------------------------------------------


def test_ask_streams_the_answer_and_a_summary(user: Home, ollama_ready: OllamaDouble) -> None:
    env = {"OLLAMA_BASE_URL": ollama_ready.url, "OLLAMA_MODEL": DOUBLE_MODEL, "CORTEX_PROVIDER": "ollama"}
    proc = user.run("ask", "what", "is", "nginx?", env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Test double reply to: what is nginx?\n"
    assert re.fullmatch(
        rf"\[ollama {DOUBLE_MODEL}(:latest)?, \d+\+\d+ tokens, \$0\.000000, \d+\.\d\ds\]\n", proc.stderr
    ), proc.stderr


def test_ask_reports_a_fallback(user: Home) -> None:
    fake = FakeOpenAI()
    try:
        env = {
            "CORTEX_PROVIDER": "ollama",
            "OLLAMA_BASE_URL": closed_port_url(),
            "OPENAI_API_KEY": SECRETS["OPENAI_API_KEY"],
            "OPENAI_BASE_URL": fake.url + "/v1",
        }
        proc = user.run("ask", "hello", env=env)
    finally:
        fake.close()
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Hello from the fake\n"
    assert re.fullmatch(
        r"\[openai gpt-4o-mini, 11\+5 tokens, \$0\.\d{6}, \d+\.\d\ds, after ollama: connect\]\n", proc.stderr
    )


def test_ask_reads_the_prompt_from_stdin(user: Home, ollama_ready: OllamaDouble) -> None:
    env = {"OLLAMA_BASE_URL": ollama_ready.url, "OLLAMA_MODEL": DOUBLE_MODEL, "CORTEX_LOCAL_ONLY": "1"}
    proc = user.run("ask", "-", env=env, stdin="explain systemd\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Test double reply to: explain systemd\n"


def test_ask_rejects_an_empty_prompt(user: Home) -> None:
    proc = user.run("ask", "-", stdin="  \n")
    assert proc.returncode == 2
    assert "the prompt is empty" in proc.stderr


def test_ask_refuses_a_cloud_provider_in_local_only_mode(user: Home) -> None:
    recorder = ConnectionRecorder()
    try:
        env = {**SECRETS, "CORTEX_LOCAL_ONLY": "true", "ANTHROPIC_BASE_URL": recorder.url}
        proc = user.run("ask", "--provider", "claude", "hi", env=env)
    finally:
        recorder.close()
    assert proc.returncode == 1
    assert "local-only" in proc.stderr
    assert recorder.connections == 0


def test_ask_failure_is_reported_without_secrets(user: Home) -> None:
    fake = FakeOpenAI()
    fake.queue(Reply.fail(401, body={"error": {"message": f"bad key {SECRETS['OPENAI_API_KEY']}"}}))
    try:
        env = {
            "OPENAI_API_KEY": SECRETS["OPENAI_API_KEY"],
            "OPENAI_BASE_URL": fake.url + "/v1",
            "OLLAMA_BASE_URL": closed_port_url(),
        }
        proc = user.run("ask", "--provider", "openai", "hi", env=env)
    finally:
        fake.close()
    assert proc.returncode == 1
    assert proc.stderr.startswith("cortex-llm: error: ")
    assert "401" in proc.stderr
    assert_no_secret(proc.stdout, proc.stderr)


# --- models --------------------------------------------------------------------------------------------------


def test_models_lists_installed_models(user: Home, ollama_ready: OllamaDouble) -> None:
    proc = user.run("models", env={"OLLAMA_BASE_URL": ollama_ready.url})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["NAME", "SIZE", "MODIFIED"]
    assert sorted(line.split()[0] for line in lines[1:]) == ollama_ready.models()
    assert proc.stdout == user.run("models", "list", env={"OLLAMA_BASE_URL": ollama_ready.url}).stdout


def test_models_list_empty(user: Home, ollama_empty: OllamaDouble) -> None:
    proc = user.run("models", env={"OLLAMA_BASE_URL": ollama_empty.url})
    assert proc.returncode == 0
    assert "no models" in proc.stdout


def test_pull_plain_progress_when_not_a_tty(user: Home, ollama_empty: OllamaDouble) -> None:
    proc = user.run("models", "pull", DOUBLE_MODEL, env={"OLLAMA_BASE_URL": ollama_empty.url})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "pulling manifest"
    layers = [line for line in lines if re.fullmatch(r"pulling [0-9a-f]{12}: [\d.]+ (B|KB|MB) done", line)]
    assert len(layers) >= 2  # the model blob and its params, at least
    assert lines[-3:] == ["verifying sha256 digest", "writing manifest", "success"]
    assert "\r" not in proc.stdout
    assert ollama_empty.models() == [f"{DOUBLE_MODEL}:latest"]


def test_pull_draws_a_progress_bar_on_a_tty(user: Home, ollama_empty: OllamaDouble) -> None:
    env = {"PATH": os.environ["PATH"], "HOME": str(user.home), "OLLAMA_BASE_URL": ollama_empty.url}
    argv = [str(CLI), "--etc-dir", str(user.etc), "models", "pull", DOUBLE_MODEL]
    rc, text = on_a_terminal(argv, env=env, cwd=user.cwd)
    assert rc == 0, text
    assert "\r" in text
    assert re.search(r"\[#{30}\] 100%", text)
    assert text.rstrip().rsplit("\r", 1)[-1].startswith("success")  # the last redraw
    assert ollama_empty.models() == [f"{DOUBLE_MODEL}:latest"]


def test_pull_of_an_unknown_model_fails_clearly(user: Home, ollama_empty: OllamaDouble) -> None:
    proc = user.run("models", "pull", "no-such-model", env={"OLLAMA_BASE_URL": ollama_empty.url})
    assert proc.returncode == 1
    assert "cortex-llm: error:" in proc.stderr
    assert "file does not exist" in proc.stderr
    assert ollama_empty.models() == []


def test_pull_of_a_cloud_model_is_refused_in_local_only_mode(user: Home, ollama_empty: OllamaDouble) -> None:
    env = {"OLLAMA_BASE_URL": ollama_empty.url, "CORTEX_LOCAL_ONLY": "true"}
    proc = user.run("models", "pull", "gpt-oss:120b-cloud", env=env)
    assert proc.returncode == 1
    assert "refused in local-only mode" in proc.stderr
    assert ollama_empty.models() == []


@pytest.mark.parametrize(
    "args",
    [
        ["models", "pull"],
        ["ask"],
        ["frobnicate"],
        ["ask", "--provider", "gemini", "hi"],
        ["ask", "--max-tokens", "x", "hi"],
    ],
)
def test_usage_errors_exit_2(user: Home, args: list[str]) -> None:
    proc = user.run(*args)
    assert proc.returncode == 2
    assert "usage: cortex-llm" in proc.stderr


def test_doctor_reports_a_server_that_is_not_ollama(user: Home) -> None:
    """Something else answers at OLLAMA_BASE_URL: an OpenAI-compatible server is named as such, with its models;
    a server that speaks neither API is a clear failure, never a crash."""
    server = FakeOpenAI()
    try:
        env = {"OLLAMA_BASE_URL": server.url, "OLLAMA_MODEL": server.model, "CORTEX_PROVIDER": "ollama"}
        proc = user.run("doctor", env=env)
    finally:
        server.close()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"ok    ollama   {server.url} an OpenAI-compatible server, 1 model(s)" in proc.stdout
    assert f"model {server.model}:latest present" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_doctor_fails_clearly_on_a_server_that_speaks_neither_api(user: Home, tmp_path: Path) -> None:
    with http_mirror(tmp_path) as server:  # a plain web server: 404 for every API path
        proc = user.run("doctor", env={"OLLAMA_BASE_URL": server.url, "CORTEX_PROVIDER": "ollama"})
    assert proc.returncode == 1
    assert f"FAIL  ollama   {server.url} unreachable: ollama: HTTP 404" in proc.stdout
    assert "Traceback" not in proc.stderr


# --- issue 9, item 6: doctor with something else at the Ollama URL, and the cloud reached like requests ---------

NOT_OLLAMA = {
    "html everywhere": Reply.raw(b"<html><body>Welcome to nginx!</body></html>", content_type="text/html"),
    "json array everywhere": Reply.raw(b"[1, 2, 3]"),
    "wrong shapes": Reply.raw(b'{"version": ["x"], "models": "none", "data": "none"}'),
    "truncated json": Reply.raw(b'{"version": "0.1'),
    "server error": Reply.fail(500),
}


@pytest.mark.parametrize("case", list(NOT_OLLAMA))
def test_doctor_reports_a_server_that_is_not_ollama_and_never_crashes(user: Home, case: str) -> None:
    impostor = FakeOllama()
    impostor.default = NOT_OLLAMA[case]
    try:
        proc = user.run("doctor", env={"OLLAMA_BASE_URL": impostor.url, "OLLAMA_MODEL": "llama3.2"})
    finally:
        impostor.close()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "FAIL  ollama" in proc.stdout, proc.stdout
    assert proc.stdout.rstrip().endswith("problem(s)")


def test_doctor_reaches_the_cloud_through_the_same_proxy_as_requests(user: Home, ollama_ready: OllamaDouble) -> None:
    # The base URL itself is unreachable; only the proxy from the environment can answer (a forward proxy gets the
    # absolute URL). A probe that ignores the proxy settings fails where requests would work.
    proxy = FakeAnthropic()
    try:
        env = {
            "OLLAMA_BASE_URL": ollama_ready.url,
            "OLLAMA_MODEL": DOUBLE_MODEL,
            "ANTHROPIC_API_KEY": SECRETS["ANTHROPIC_API_KEY"],
            "ANTHROPIC_BASE_URL": closed_port_url(),
            "HTTP_PROXY": proxy.url,
            "NO_PROXY": "",
        }
        doctor = user.run("doctor", env=env)
        ask = user.run("ask", "--provider", "claude", "hi", env=env)
    finally:
        proxy.close()
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "key accepted" in doctor.stdout
    assert ask.returncode == 0, ask.stderr
    assert [r.path.startswith("http://") for r in proxy.requests] == [True, True]  # both went through the proxy
    assert_no_secret(doctor.stdout, doctor.stderr, ask.stdout, ask.stderr)


# --- issue 9, item 8: nothing echoed from a malformed .env line; URL passwords never shown ------------------------


def test_a_pasted_secret_on_its_own_line_is_never_echoed(user: Home, ollama_ready: OllamaDouble) -> None:
    pasted = "sk-proj-PastedAloneOnItsLine0123456789"
    user.cwd.mkdir(parents=True, exist_ok=True)
    (user.cwd / ".env").write_text(f"OLLAMA_MODEL={DOUBLE_MODEL}\n{pasted}\nOLLAMA_BASE_URL={ollama_ready.url}\n")
    proc = user.run("doctor")
    assert "line has no '=value'; skipped" in proc.stdout
    assert pasted not in proc.stdout + proc.stderr
    assert pasted[:12] not in proc.stdout + proc.stderr


def test_a_password_in_the_ollama_url_is_never_shown(user: Home) -> None:
    password = "Url-Pass-Word-77"
    url = f"http://ops:{password}@{closed_port_url().removeprefix('http://')}"
    doctor = user.run("doctor", env={"OLLAMA_BASE_URL": url})
    ask = user.run("ask", "hi", env={"OLLAMA_BASE_URL": url})
    assert doctor.returncode == ask.returncode == 1
    assert "ops:***@" in doctor.stdout + doctor.stderr  # the endpoint is still named
    for text in (doctor.stdout, doctor.stderr, ask.stdout, ask.stderr):
        assert password not in text


def test_setup_runs_the_checkouts_setup_script_with_its_options(user: Home) -> None:
    proc = user.run("setup", "--model", "llama3.2:1b", "--non-interactive", "--print-command")
    assert proc.returncode == 0, proc.stderr
    (line,) = proc.stdout.splitlines()  # --print-command prints the command alone
    assert "&& .venv/bin/ansible-playbook playbooks/ollama.yml" in line and '"ollama_models": ["llama3.2:1b"]' in line


def test_setup_without_a_checkout_says_where_to_point_it(user: Home, tmp_path: Path) -> None:
    proc = user.run("setup", "--project", str(tmp_path), "--non-interactive")
    assert proc.returncode == 2
    assert f"no scripts/setup_ollama.py under {tmp_path}" in proc.stderr and "--project DIR" in proc.stderr


def test_the_word_setup_in_a_prompt_is_not_the_setup_command(user: Home) -> None:
    proc = user.run("ask", "setup", "--model", "x")  # were it the setup command, --model would go to the script
    assert proc.returncode == 2
    assert "unrecognized arguments: --model x" in proc.stderr


# --- issue 27, item 13: pipes, aliases, and a server that is not an Ollama ------------------------------------------


def test_ask_into_a_reader_that_leaves_ends_quietly(user: Home) -> None:
    """`cortex-llm ask ... | head`: the reader closes the pipe early; no BrokenPipeError traceback, SIGPIPE's status."""
    fake = FakeOllama()
    fake.default = Reply(text="word " * 40_000)  # well over a pipe's buffer
    try:
        proc = subprocess.Popen(
            [str(CLI), "--etc-dir", str(user.etc), "ask", "hi"],
            env={"PATH": os.environ["PATH"], "HOME": str(user.home), "OLLAMA_BASE_URL": fake.url},
            cwd=user.cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.read(10) == b"word word "
        proc.stdout.close()  # what head does once it has its lines
        stderr = proc.stderr.read().decode()
        assert proc.wait(timeout=60) == 141
    finally:
        fake.close()
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr


@pytest.mark.parametrize("name", ["kimi", "moonshot", "KIMI_K2"])
def test_ask_takes_the_provider_aliases_python_takes(user: Home, name: str) -> None:
    fake = FakeOpenAI(usage_in_choice=True)
    try:
        env = {"MOONSHOT_API_KEY": SECRETS["MOONSHOT_API_KEY"], "KIMI_BASE_URL": fake.url + "/v1"}
        proc = user.run("ask", "--provider", name, "hi", env=env)
    finally:
        fake.close()
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Hello from the fake\n" and proc.stderr.startswith("[kimi_k2 ")


def test_doctor_does_not_suggest_models_pull_for_a_server_that_is_not_ollama(user: Home) -> None:
    server = FakeOpenAI()
    try:
        proc = user.run("doctor", env={"OLLAMA_BASE_URL": server.url, "OLLAMA_MODEL": "llama3.2"})
        pull = user.run("models", "pull", "llama3.2", env={"OLLAMA_BASE_URL": server.url})
    finally:
        server.close()
    assert proc.returncode == 1
    assert (
        f"  FAIL  ollama   model llama3.2 not served by {server.url}, which is not an Ollama: load it in that server,"
        f" or set OLLAMA_MODEL to one it serves ({server.model})"
    ) in proc.stdout
    assert "models pull" not in proc.stdout
    assert pull.returncode == 1
    assert f"cortex-llm: error: {server.url} is not an Ollama (no /api/pull)" in pull.stderr


def test_ask_with_ollama_down_says_what_to_do(user: Home) -> None:
    down = closed_port_url()
    proc = user.run("ask", "hi", env={"OLLAMA_BASE_URL": down, "CORTEX_PROVIDER": "ollama"})
    assert proc.returncode == 1
    assert "what to do: start Ollama (systemctl start ollama, or: ollama serve)" in proc.stderr
    assert "what to do: cortex-llm doctor checks the whole setup" in proc.stderr
