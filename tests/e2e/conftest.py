"""A real local LLM for end-to-end tests: llama.cpp's OpenAI-compatible server with Gemma 3 270M.

tests/harness/install_llama_cpp.sh installs both; the tests fail (not skip) when they are missing, because
the test runner installs them and a silent skip would hide a broken setup.
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.gguf import gguf_path

# The server's model id (its `--model_alias`); the API ignores unknown ids, but a fixed one keeps asserts exact.
MODEL_ALIAS = "gemma-3-270m"
READY_TIMEOUT_S = 120.0
INSTALL_HINT = "run tests/harness/install_llama_cpp.sh"


@dataclass(frozen=True)
class LlamaServer:
    base_url: str  # OpenAI-style, ends in /v1
    model: str


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"llama.cpp server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"llama.cpp server not ready after {READY_TIMEOUT_S}s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def llama_server() -> Iterator[LlamaServer]:
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.fail(f"llama-cpp-python is not installed in {sys.prefix}: {INSTALL_HINT}")
    model = gguf_path()
    if not model.is_file():
        pytest.fail(f"Gemma 3 270M GGUF missing at {model}: {INSTALL_HINT}")
    port = _free_port()
    cmd = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(model), "--model_alias", MODEL_ALIAS,
        "--chat_format", "gemma",  # the GGUF carries no chat template
        "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", "2048",
    ]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="llama-server-") as tmp:
        log = Path(tmp) / "server.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        try:
            _wait_ready(proc, f"http://127.0.0.1:{port}/v1/models", log)
            yield LlamaServer(base_url=f"http://127.0.0.1:{port}/v1", model=MODEL_ALIAS)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
