"""The Ollama test double (tests/harness/ollama_double.py) as an HTTP server in this process, on a loopback
port: fast, for API-shape tests of the double and for the CLI's tests against an "Ollama"."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx

from tests.harness import ollama_double as double


class InProcessDouble:
    """The double's server over `store_dir`; `registry` is the model store its /api/pull reads."""

    def __init__(self, store_dir: Path, registry: Path) -> None:
        self.store = double.Store(store_dir)
        self.store.ensure_dirs()
        self.httpd = double.Server(("127.0.0.1", 0), self.store, double.Store(registry))
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05})
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.http = httpx.Client(base_url=self.url, timeout=10)

    def models(self) -> list[str]:
        return sorted(name.shortest() for name, _ in self.store.models())

    def stop(self) -> None:
        self.http.close()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()
