"""The e2e fixture fails, never skips, when the real LLM is not installed: a skip would hide a broken setup."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def test_missing_gguf_fails_with_install_hint(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}  # an empty cache: no GGUF there
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(HERE / "test_llama_server.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout
    assert "1 error" in proc.stdout
    assert "skipped" not in proc.stdout
    assert f"Gemma 3 270M GGUF missing at {tmp_path / 'cortex-ci' / 'gemma-3-270m-q4_k_m.gguf'}" in proc.stdout
    assert "run tests/harness/install_llama_cpp.sh" in proc.stdout
