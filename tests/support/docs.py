"""The docs' commands, run by tests as written. A fenced block a test runs is marked in the doc's source by
`<!-- tested: <test file> -->` on the line before it; tests/test_docs_marks.py keeps every shell block of the
operator docs either marked so or marked as one no test host can run, with the reason."""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from tests.support.archives import REPO

# A fence (``` or ~~~, indented inside a list item or not) and its language; a mark is the line before one.
_FENCED = r"^(?P<indent>[ \t]*)(?P<fence>```|~~~)(?P<lang>\w*)\n(?P<code>.*?)^(?P=indent)(?P=fence)[ \t]*$"
FENCE = re.compile(_FENCED, re.M | re.S)
BLOCK = re.compile(r"^[ \t]*<!-- (?P<mark>tested: \S+|not run by a test: [^>]+) -->\n" + _FENCED[1:], re.M | re.S)


def _code(m: re.Match[str]) -> str:
    return "".join(line.removeprefix(m.group("indent")) for line in m.group("code").splitlines(keepends=True))


def marked_blocks(doc: str) -> list[tuple[str, str, str]]:
    """(mark, language, code) of every marked block of a doc (path relative to the repository)."""
    return [(m.group("mark"), m.group("lang"), _code(m)) for m in BLOCK.finditer((REPO / doc).read_text())]


def blocks_run_by(doc: str, test_file: str) -> list[str]:
    """The code of the blocks of `doc` marked as run by `test_file`, in the doc's order."""
    return [code for mark, _, code in marked_blocks(doc) if mark == f"tested: {test_file}"]


def adapted(code: str, replace: dict[str, str]) -> str:
    """The block with the test's stand-ins for paths and names (each must occur: a doc edit cannot slip by)."""
    for old, new in replace.items():
        assert old in code, f"{old!r} is no longer in the block:\n{code}"
        code = code.replace(old, new)
    return code


def run_here(code: str, *, cwd: Path = REPO, replace: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """A shell block run on the controller, as an operator pastes it into bash in the checkout: with the checkout's
    ansible.cfg, none of the ANSIBLE_* settings a test runner (Molecule) exports; output captured."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "MOLECULE_"))}
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", adapted(code, replace or {})],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )


@contextmanager
def repo_inventory(hosts: dict[str, dict[str, Any]]) -> Iterator[str]:
    """An inventory file in the checkout's inventory/ (so inventory/group_vars/all/*.yml apply, as to an operator's
    inventory/fleet.yml) naming `hosts` with their variables; its path relative to the checkout."""
    path = REPO / "inventory" / f".test-{uuid.uuid4().hex[:8]}.yml"
    path.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    try:
        yield str(path.relative_to(REPO))
    finally:
        path.unlink()


def flat(output: str) -> str:
    """Output with its whitespace runs made single spaces: Ansible's YAML callback wraps long messages."""
    return " ".join(output.split())


def recap_changed(output: str, host: str) -> int:
    """The `changed=` count of a host in ansible-playbook's recap."""
    m = re.search(rf"^{re.escape(host)}\s+: ok=\d+\s+changed=(\d+)", output, re.M)
    assert m, output[-3000:]
    return int(m.group(1))
