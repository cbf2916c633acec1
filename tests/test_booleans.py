"""Booleans an operator can set work in both forms: `-e ollama_models_warm=false` passes the string "false", which
a bare `when: ollama_models_warm` takes as true on ansible-core 2.18 and refuses on 2.19 ("Conditionals must have
a boolean result"). So every Jinja expression of the roles and playbooks that reads such a variable passes it
through `| bool` (after an optional `| default(...)`), or only hands it on whole (`key: "{{ var }}"`)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import yaml

from tests.support.archives import REPO

CONDITIONS = {"when", "that", "changed_when", "failed_when", "until"}
JINJA = re.compile(r"\{\{(.*?)\}\}|\{%(.*?)%\}", re.S)
STRING_LITERAL = re.compile(r"'[^']*'|\"[^\"]*\"")
CONVERTED = re.compile(r"\s*(\|\s*default\([^()]*\)\s*)?\|\s*bool\b")
HANDED_ON = re.compile(r"^\s*\{\{\s*[\w]+\s*\}\}\s*$")


def boolean_variables() -> set[str]:
    """Variables an operator sets that hold booleans: bool options of the roles' argument specs, boolean defaults of
    roles and inventory, and boolean play vars of the playbooks."""
    names = set()
    for spec in REPO.glob("roles/*/meta/argument_specs.yml"):
        for entry in yaml.safe_load(spec.read_text())["argument_specs"].values():
            names |= {n for n, o in (entry.get("options") or {}).items() if o.get("type") == "bool"}
    for path in [*REPO.glob("roles/*/defaults/main.yml"), *REPO.glob("inventory/group_vars/all/*.yml")]:
        names |= {n for n, v in (yaml.safe_load(path.read_text()) or {}).items() if isinstance(v, bool)}
    for path in REPO.glob("playbooks/*.yml"):
        for play in yaml.safe_load(path.read_text()) or []:
            names |= {n for n, v in (play.get("vars") or {}).items() if isinstance(v, bool)}
    return names


def _expressions(node: Any, key: str = "") -> Iterator[str]:
    """The Jinja expressions in a loaded YAML document: conditions whole, and what {{ }} / {% %} enclose elsewhere."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _expressions(v, str(k))
    elif isinstance(node, list):
        for item in node:
            yield from _expressions(item, key)
    elif isinstance(node, str):
        if key in CONDITIONS and "{{" not in node:
            yield node
        elif not HANDED_ON.match(node):
            yield from (a or b for a, b in JINJA.findall(node))


def _sources() -> Iterator[tuple[str, list[str]]]:
    patterns = ["roles/*/tasks/*.yml", "roles/*/handlers/*.yml", "roles/*/vars/*.yml", "playbooks/*.yml"]
    patterns += ["inventory/group_vars/all/*.yml", "molecule/shared/*.yml"]
    for pattern in patterns:
        for path in sorted(REPO.glob(pattern)):
            yield str(path.relative_to(REPO)), list(_expressions(yaml.safe_load(path.read_text())))
    for path in sorted(REPO.glob("roles/*/templates/*.j2")):
        yield str(path.relative_to(REPO)), [a or b for a, b in JINJA.findall(path.read_text())]


def unconverted(names: set[str], expression: str) -> list[str]:
    code = STRING_LITERAL.sub("''", expression)
    used = re.compile(r"(?<![\w.])(" + "|".join(sorted(names)) + r")\b(?!\s*[:=](?!=))")
    return [m.group(1) for m in used.finditer(code) if not CONVERTED.match(code, m.end())]


def test_the_check_finds_a_bare_boolean() -> None:
    names = {"ollama_models_warm", "cortex_env_doctor"}
    assert unconverted(names, "ollama_models_warm and not ansible_check_mode") == ["ollama_models_warm"]
    assert unconverted(names, "x | f(prune=ollama_models_warm)") == ["ollama_models_warm"]
    assert unconverted(names, "ollama_models_warm | default(false) | bool") == []
    assert unconverted(names, "'set cortex_env_doctor: false' if ollama_models_warm | bool else ''") == []


def test_every_boolean_read_in_an_expression_is_converted() -> None:
    names = boolean_variables()
    assert {"ollama_models_warm", "airgap_bundle_pull", "cortex_env_install_client", "ollama_no_cloud"} <= names
    found = [
        f"{source}: {name} in `{' '.join(expression.split())}`"
        for source, expressions in _sources()
        for expression in expressions
        for name in unconverted(names, expression)
    ]
    assert not found, "booleans read without `| bool` (a -e key=false would be a string):\n" + "\n".join(found)
