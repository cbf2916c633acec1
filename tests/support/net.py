"""Loopback ports for test servers."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A loopback port nothing listens on right now (the caller binds it next)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def closed_port_url() -> str:
    """An address where nothing listens: connecting is refused at once."""
    return f"http://127.0.0.1:{free_port()}"
