"""Fixtures for `cortex-llm` tests: the installed console script run as a subprocess in an isolated home,
against the Ollama test double (in this process, on a loopback port) and the router's loopback fakes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.harness import build_double_releases
from tests.support.double import InProcessDouble

CLI = Path(sys.executable).with_name("cortex-llm")
DOUBLE_MODEL = "tinyllama-double"  # in the builder's registry (REGISTRY_MODELS)


@pytest.fixture
def ollama_empty(tmp_path: Path, registry: Path) -> Iterator[InProcessDouble]:
    server = InProcessDouble(tmp_path / "ollama-models", registry)
    yield server
    server.stop()


@pytest.fixture
def ollama_ready(tmp_path: Path, registry: Path) -> Iterator[InProcessDouble]:
    """A double whose store already holds the registry's models (same layout, so built in place)."""
    build_double_releases.build_registry(tmp_path / "ollama-models")
    server = InProcessDouble(tmp_path / "ollama-models", registry)
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
