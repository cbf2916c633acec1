"""Lint: each role's three statements of its variables agree.

For every roles/<role>/: the variables in defaults/main.yml, the options of meta/argument_specs.yml (entry point
main) and the rows of the variable table in README.md (first column, `a` / `b` rows name two) must be the same
set; an argument spec's `default` must equal the value in defaults/main.yml; a README default written as one
literal (`60`, `"5m"`, `[]`) must equal it too. Prints every disagreement and exits 1 if there is one.

Usage (from the repository root): python -m tests.harness.check_role_docs [roles/<role> ...]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
ROW = re.compile(r"^\|\s*(`[^|]+`)\s*\|\s*([^|]*?)\s*\|")
LITERAL = re.compile(r"^`([^`]*)`$")


def readme_rows(readme: Path) -> dict[str, str]:
    """Variable -> its Default cell, from the README's table rows whose first cell names variables."""
    rows: dict[str, str] = {}
    for line in readme.read_text().splitlines():
        m = ROW.match(line)
        if m is None:
            continue
        for name in re.findall(r"`([a-z][a-z0-9_]*)`", m.group(1)):
            rows[name] = m.group(2)
    return rows


def check(role: Path) -> list[str]:
    problems: list[str] = []
    defaults: dict[str, Any] = yaml.safe_load((role / "defaults" / "main.yml").read_text()) or {}
    spec = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())
    options: dict[str, dict[str, Any]] = spec["argument_specs"]["main"]["options"]
    rows = readme_rows(role / "README.md")
    prefix = f"{role.name}_"

    for source, names in (("meta/argument_specs.yml", set(options)), ("README.md table", set(rows))):
        for name in sorted(set(defaults) - names):
            problems.append(f"{role.name}: {name} is in defaults/main.yml but not in {source}")
        for name in sorted(names - set(defaults)):
            if name.startswith(prefix):
                problems.append(f"{role.name}: {name} is in {source} but not in defaults/main.yml")
    for name, option in options.items():
        if "default" in option and name in defaults and option["default"] != defaults[name]:
            problems.append(
                f"{role.name}: {name} defaults to {defaults[name]!r} in defaults/main.yml "
                f"but to {option['default']!r} in meta/argument_specs.yml"
            )
    for name, cell in rows.items():
        m = LITERAL.match(cell)
        if m is None or name not in defaults or " " in m.group(1):
            continue  # a description, not a literal
        if yaml.safe_load(m.group(1)) != defaults[name]:
            problems.append(
                f"{role.name}: README.md says {name} defaults to {cell}, defaults/main.yml {defaults[name]!r}"
            )
    return problems


def main(argv: list[str]) -> int:
    roles = [Path(a) for a in argv] or sorted(p.parent.parent for p in (REPO / "roles").glob("*/defaults/main.yml"))
    problems = [p for role in roles for p in check(role)]
    print("\n".join(problems) or f"role variables agree: {', '.join(r.name for r in roles)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
