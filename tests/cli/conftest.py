"""Fixtures for `cortex-llm` tests: the installed console script run as a subprocess in an isolated home,
against the Ollama test double (in this process, on a loopback port) and the router's loopback fakes."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

HARNESS = Path(__file__).resolve().parents[1] / "harness"
CLI = Path(sys.executable).with_name("cortex-llm")


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, HARNESS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)
    spec.loader.exec_module(module)
    return module


double = _load("ollama_double")
builder = _load("build_double_releases")
DOUBLE_MODEL = "tinyllama-double"  # in the builder's registry (REGISTRY_MODELS)


class OllamaDouble:
    """The Ollama test double's HTTP server in a thread; `store` is its model dir, `registry` what pull reads."""

    def __init__(self, store: Path, registry: Path) -> None:
        self.store = double.Store(store)
        self.store.ensure_dirs()
        self.httpd = double.Server(("127.0.0.1", 0), self.store, double.Store(registry))
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05})
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def models(self) -> list[str]:
        return sorted(name.shortest() for name, _ in self.store.models())

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("registry")
    builder.build_registry(root)
    return root


@pytest.fixture
def ollama_empty(tmp_path: Path, registry: Path) -> Iterator[OllamaDouble]:
    server = OllamaDouble(tmp_path / "ollama-models", registry)
    yield server
    server.stop()


@pytest.fixture
def ollama_ready(tmp_path: Path, registry: Path) -> Iterator[OllamaDouble]:
    """A double whose store already holds the registry's models (same layout, so built in place)."""
    builder.build_registry(tmp_path / "ollama-models")
    server = OllamaDouble(tmp_path / "ollama-models", registry)
    yield server
    server.stop()


@dataclass
class Home:
    """An isolated user: HOME, working directory and /etc/cortex stand-in, all under tmp_path."""

    root: Path

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def cwd(self) -> Path:
        return self.root / "work"

    @property
    def etc(self) -> Path:
        return self.root / "etc-cortex"

    def write_env(self, where: Path, **values: str) -> Path:
        where.mkdir(parents=True, exist_ok=True)
        path = where / ".env"
        path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        return path

    def run(
        self, *args: str, env: dict[str, str] | None = None, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        if not CLI.exists():
            pytest.fail(f"console script {CLI} missing: install the project (pip install -e .)")
        full_env = {"PATH": os.environ["PATH"], "HOME": str(self.home), **(env or {})}
        return subprocess.run(
            [str(CLI), "--etc-dir", str(self.etc), *args],
            env=full_env,
            cwd=self.cwd,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


@pytest.fixture
def user(tmp_path: Path) -> Home:
    h = Home(tmp_path)
    for d in (h.home, h.cwd, h.etc):
        d.mkdir(parents=True, exist_ok=True)
    return h
