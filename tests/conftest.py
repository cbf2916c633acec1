"""Fixtures shared by every suite; the helpers behind them live in tests/support/."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import build_double_releases


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model registry in the store layout (the double's models), what the double's /api/pull reads."""
    root = tmp_path_factory.mktemp("registry")
    build_double_releases.build_registry(root)
    return root
