"""What the repository points its readers at exists in it: hosts carry comments from the templates (the unit's header
once named a file of the developers' notes that no host and no clone has), and docs name files to open."""

from __future__ import annotations

import re
import subprocess

from tests.support.archives import REPO

# Files the reader creates (docs say so where they name them), and other projects' docs named by their own paths.
NOT_OURS = {
    "inventory/fleet.yml",
    "inventory/group_vars/all/vault.yml",
    "inventory/group_vars/airgap.yml",
    "docs/api.md",  # Ollama's API reference
    "docs/gpu.mdx",  # Ollama's GPU page
}
NOTES = re.compile(r"DESIGN\.md|\bresearch/[\w-]+\.md|\bseeds/[\w-]+\.md")


def _tracked_text() -> dict[str, str]:
    names = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    out = {}
    for name in names:
        try:
            out[name] = (REPO / name).read_text()
        except (UnicodeDecodeError, IsADirectoryError, FileNotFoundError):
            continue
    return out


def test_no_file_points_at_the_developers_notes() -> None:
    found = [
        f"{name}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}"
        for name, text in _tracked_text().items()
        if name != "tests/test_references.py"
        for m in NOTES.finditer(text)
    ]
    assert not found, "references to files outside the repository:\n" + "\n".join(found)


def test_paths_named_from_the_repository_root_exist() -> None:
    files = _tracked_text()
    tops = sorted({name.split("/")[0] for name in files if "/" in name})
    path = re.compile(r"(?<![\w./-])((?:" + "|".join(map(re.escape, tops)) + r")/[\w./-]*[\w-])")
    missing = []
    for name, text in files.items():
        for m in path.finditer(text):
            ref = m.group(1)
            scenario_relative = name.startswith("molecule/") and ref.startswith("tests/test_")
            if ref in NOT_OURS or ref.endswith(("/test_", "/.test-")) or scenario_relative:
                continue
            if not (REPO / ref).exists():
                missing.append(f"{name}: {ref}")
    assert not missing, "paths that are not in the repository:\n" + "\n".join(missing)
