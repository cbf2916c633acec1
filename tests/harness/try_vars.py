"""Variables of tests/harness/try_in_container.sh: for building the bundle from the Ollama test double (printed as
JSON), or, with --site, written into the try-out's inventory as what an air-gapped site sets (airgap_bundle and what
inventory/group_vars/all/airgap.yml derives from it, a model, the client). Both carry the double's own sha256 table
in place of the role's pins of the real releases."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def bundle_vars(root: Path, version: str, arch: str) -> dict[str, Any]:
    return {
        "ollama_version": version,
        "ollama_archive_src": f"{root}/.cache/double-releases/{version}/",
        "ollama_checksums": json.loads((root / ".cache" / "double-releases" / "checksums.json").read_text()),
        "ollama_bundle_arches": [arch],
        "airgap_bundle_store": f"{root}/.cache/double-registry",
        "airgap_bundle_pull": False,
        "airgap_bundle_models": ["tinyllama-double"],
    }


def site_vars(root: Path, bundle: str) -> dict[str, Any]:
    return {
        "airgap_bundle": bundle,
        "ollama_archive_src": f"{bundle}/ollama/",
        "ollama_checksums_file": f"{bundle}/ollama/sha256sum.txt",
        "ollama_models_bundle": bundle,
        "cortex_env_wheelhouse": f"{bundle}/wheels",
        "ollama_no_cloud": True,
        "ollama_checksums": json.loads((root / ".cache" / "double-releases" / "checksums.json").read_text()),
        "ollama_models": ["tinyllama-double"],
        "cortex_env_provider": "ollama",
        "cortex_env_install_client": True,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root", type=Path)
    parser.add_argument("version")
    parser.add_argument("arch")
    parser.add_argument("--site", metavar="BUNDLE", help="write the site's variables into --inventory")
    parser.add_argument("--inventory", type=Path)
    args = parser.parse_args()
    if not args.site:
        print(json.dumps(bundle_vars(args.root, args.version, args.arch)))
        return
    inventory = json.loads(args.inventory.read_text())
    inventory["all"]["vars"] = site_vars(args.root, args.site)
    args.inventory.write_text(json.dumps(inventory))


if __name__ == "__main__":
    main()
