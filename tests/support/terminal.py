"""Running a command on a pseudo-terminal, as a user at a terminal would: its prompts, progress bars and colours."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path


def on_a_terminal(
    argv: Sequence[str], *, answers: str = "", env: dict[str, str] | None = None, cwd: Path | None = None
) -> tuple[int, str]:
    """Run argv with a pty as stdin, stdout and stderr, typing `answers`; its exit status and what it showed, with
    the terminal's line ends made plain (so a remaining "\\r" is a redraw)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd, close_fds=True)
    os.close(slave)
    os.write(master, answers.encode())
    chunks = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], deadline - time.monotonic())
        if not ready:
            break
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=10), b"".join(chunks).decode().replace("\r\n", "\n")
