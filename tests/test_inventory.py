"""The repository's inventory: an operator's inventory file in inventory/ keeps what it sets for its groups
(Ansible ranks inventory/group_vars/all/ above an inventory file's group values, so group_vars/all sets no
variable an operator sets per group or per fleet), and the default inventory gives this machine what the setup
script gives."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import yaml

from tests.support.archives import REPO


def host_vars(inventory: Path, host: str) -> dict[str, Any]:
    run = subprocess.run(
        [str(Path(sys.executable).with_name("ansible-inventory")), "-i", str(inventory), "--host", host],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    found: dict[str, Any] = json.loads(run.stdout)
    return found


def test_an_inventory_file_keeps_its_fleet_and_group_values() -> None:
    mine = {
        "all": {
            "vars": {"ollama_version": "0.34.3", "cortex_env_provider": "claude"},
            "children": {
                "gpu_nodes": {
                    "hosts": {"gpu-01": {}},
                    "vars": {"ollama_models": ["qwen3:0.6b"], "cortex_env_install_client": False},
                }
            },
        }
    }
    path = REPO / "inventory" / f".test-{uuid.uuid4().hex[:8]}.yml"
    path.write_text(yaml.safe_dump(mine))
    try:
        found = host_vars(path, "gpu-01")
    finally:
        path.unlink()
    assert found["ollama_version"] == "0.34.3"
    assert found["cortex_env_provider"] == "claude"
    assert found["ollama_models"] == ["qwen3:0.6b"]
    assert found["cortex_env_install_client"] is False


def test_the_default_inventory_sets_up_this_machine_as_the_setup_script_does() -> None:
    found = host_vars(REPO / "inventory" / "localhost.yml", "localhost")
    assert found["ollama_models"] == ["llama3.2"]
    assert found["cortex_env_provider"] == "ollama" and found["cortex_env_install_client"] is True
