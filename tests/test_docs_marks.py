"""The operator docs cannot drift from what runs: every shell block of README.md, docs/setup.md, docs/airgap.md and
docs/fleet.md is marked in the source as run by a named test (tests.support.docs runs it as written), or as one no
test host can run, with the reason; a marked test exists and reads that doc."""

from __future__ import annotations

import re

import pytest

from tests.support.archives import REPO
from tests.support.docs import BLOCK, FENCE, marked_blocks

DOCS = ["README.md", "docs/setup.md", "docs/airgap.md", "docs/fleet.md"]
SHELL = {"sh", "bash", "shell", "console"}


@pytest.mark.parametrize("doc", DOCS)
def test_every_shell_block_is_marked(doc: str) -> None:
    text = (REPO / doc).read_text()
    marked = {m.start("indent") for m in BLOCK.finditer(text)}
    unmarked = [
        f"{doc}:{text.count(chr(10), 0, m.start()) + 1}: {(m.group('code').strip().splitlines() or [''])[0]}"
        for m in FENCE.finditer(text)
        if m.group("lang") in SHELL and m.start("indent") not in marked
    ]
    assert not unmarked, "shell blocks without <!-- tested: ... --> or <!-- not run by a test: why -->:\n" + "\n".join(
        unmarked
    )


@pytest.mark.parametrize("doc", DOCS)
def test_each_marked_test_exists_and_reads_the_doc(doc: str) -> None:
    tests = {mark.removeprefix("tested: ") for mark, _, _ in marked_blocks(doc) if mark.startswith("tested: ")}
    assert tests or doc == "docs/fleet.md", f"{doc} has no tested block"
    for test in sorted(tests):
        source = (REPO / test).read_text()
        assert re.search(rf"blocks_run_by\(\s*(DOC|\"{re.escape(doc)}\")", source), f"{test} does not read {doc}"
        assert doc in source, f"{test} does not name {doc}"
