"""Where tests/harness/install_llama_cpp.sh puts the Gemma 3 270M GGUF (the real local model of the e2e tests and
of the ollama_models scenario)."""

from __future__ import annotations

import os
from pathlib import Path


def gguf_path() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "cortex-ci" / "gemma-3-270m-q4_k_m.gguf"
