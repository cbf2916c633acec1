"""A role's filter plugin as a Python module, so its pure functions are tested directly (roles are not packages)."""

from __future__ import annotations

import importlib.util
from types import ModuleType

from tests.support.archives import REPO


def role_filters(role: str) -> ModuleType:
    """roles/<role>/filter_plugins/<role>.py, loaded under the name <role>_filters."""
    path = REPO / "roles" / role / "filter_plugins" / f"{role}.py"
    spec = importlib.util.spec_from_file_location(f"{role}_filters", path)
    assert spec and spec.loader, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
