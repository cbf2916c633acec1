"""A role's Python plugins as modules, so their pure functions are tested directly (roles are not packages)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from tests.support.archives import REPO


def load_file(path: Path, module_name: str) -> ModuleType:
    """Any Python file of the roles (a module, a filter plugin, a script under files/), loaded as a module."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec and spec.loader, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def role_filters(role: str) -> ModuleType:
    """roles/<role>/filter_plugins/<role>.py, loaded under the name <role>_filters."""
    return load_file(REPO / "roles" / role / "filter_plugins" / f"{role}.py", f"{role}_filters")


def role_module(role: str, name: str) -> ModuleType:
    """roles/<role>/library/<name>.py (an Ansible module; its logic is plain functions below main())."""
    return load_file(REPO / "roles" / role / "library" / f"{name}.py", f"{role}_{name}")
