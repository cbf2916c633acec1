"""docs/airgap.md, run as written: its marked commands (tests.support.docs), in its order, with the test double
standing in for what the build machines cannot download (the release archives, pinned by the double's table, and
the models, from the double's registry) and temporary paths for /srv and inventory/fleet.yml. The site playbook
then runs with the repository's own inventory/group_vars, so ollama_version comes from the bundle's record alone.

Before, the doc's first command failed, a re-run rebuilt the client's wheel (changed=3), a bundle of another
version was installed into a release directory named after the default version and failed after the restart, and
a tarball given as airgap_bundle failed without saying to unpack it."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

from tests.support.docs import blocks_run_by, flat, recap_changed, repo_inventory, run_here
from tests.support.instances import Instance, instance_names

(HOST,) = (Instance(name) for name in instance_names())
PROJECT = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
DOUBLE = PROJECT / ".cache" / "double-releases"
REGISTRY = PROJECT / ".cache" / "double-registry"
DOC = "docs/airgap.md"
BUILD, UNPACK, VERIFY, SITE, CLIENT = blocks_run_by(DOC, "molecule/ollama_models_airgap/tests/test_docs_airgap.py")
# The doc's models, and the double's models of the same kind (a chat model, an embedding-sized one).
MODELS = {'"llama3.2:1b", "nomic-embed-text"': '"smollm-double:1b", "tinyllama-double"'}
RELEASES = "/usr/local/lib/ollama-releases"


def double_vars(where: Path) -> Path:
    """What the connected machine has in the doc, from the double: release archives and their pins, a model store
    with the models (no server to pull through: airgap_bundle_pull given as -e gives it, a string)."""
    path = where / "double.json"
    path.write_text(
        json.dumps(
            {
                "ollama_archive_src": f"{DOUBLE}/{{{{ ollama_version }}}}/",
                "ollama_checksums": json.loads((DOUBLE / "checksums.json").read_text()),
                "airgap_bundle_store": str(REGISTRY),
                "airgap_bundle_pull": "false",
            }
        )
    )
    return path


def build(bundle: Path, double: Path, *more: str) -> subprocess.CompletedProcess[str]:
    replace = {"/srv/cortex-bundle": str(bundle), **MODELS}
    replace["playbooks/airgap_bundle.yml"] = shlex.join(["playbooks/airgap_bundle.yml", "-e", f"@{double}", *more])
    return run_here(BUILD, replace=replace)


def site(bundle: Path, *more: str) -> subprocess.CompletedProcess[str]:
    """The doc's site playbook run, with an inventory that names this host and what the operator sets for it:
    airgap_bundle and the models (plus the double's pins in place of the role's). Host variables, so the
    repository's inventory/group_vars/all apply beneath them as they do to an operator's hosts."""
    host_vars = {
        **HOST.connection(),
        "airgap_bundle": str(bundle),
        "ollama_models": ["tinyllama-double", "smollm-double:1b"],
        "ollama_checksums": json.loads((DOUBLE / "checksums.json").read_text()),
    }
    with repo_inventory({HOST.name: host_vars}) as inventory:
        return run_here(SITE, replace={"inventory/fleet.yml": shlex.join([inventory, *more])})


def running() -> str:
    return str(HOST.api("/api/version")["version"])


def test_the_doc_s_bundle_builds_records_its_version_and_a_rerun_changes_nothing(tmp_path: Path) -> None:
    bundle, double = tmp_path / "srv" / "cortex-bundle", double_vars(tmp_path)

    first = build(bundle, double)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr
    assert (bundle / "ollama" / "VERSION").read_text() == "0.34.2\n"
    assert {p.name for p in (bundle / "ollama").glob("*.tar.zst")} == {
        "ollama-linux-amd64.tar.zst",
        "ollama-linux-arm64.tar.zst",
    }
    again = build(bundle, double)
    assert again.returncode == 0, again.stdout[-3000:]
    assert recap_changed(again.stdout, "localhost") == 0, again.stdout[-3000:]

    verified = run_here(VERIFY, replace={"/srv/cortex-bundle": str(bundle)})
    assert verified.stdout.strip() == "bundle ok", verified.stdout + verified.stderr


def test_a_bundle_needs_a_trusted_sha256_before_its_directory_is_made(tmp_path: Path) -> None:
    bundle, double = tmp_path / "srv" / "cortex-bundle", double_vars(tmp_path)
    pins = json.loads(double.read_text())
    pins["ollama_checksums"] = {
        v: {k: s for k, s in p.items() if "-" not in k} for v, p in pins["ollama_checksums"].items()
    }
    double.write_text(json.dumps(pins))  # the main archives pinned, as the role pins them; no add-on

    run = build(bundle, double, "-e", '{"ollama_bundle_addons": {"amd64": ["rocm"]}}')

    assert run.returncode != 0
    assert "no pinned sha256 for ollama-linux-amd64-rocm.tar.zst of ollama 0.34.2" in flat(run.stdout), run.stdout[
        -3000:
    ]
    assert not bundle.exists()


def test_hosts_get_the_release_the_bundle_records_and_roll_back_only_to_a_kept_one(tmp_path: Path) -> None:
    bundle, double = tmp_path / "srv" / "cortex-bundle", double_vars(tmp_path)
    assert build(bundle, double).returncode == 0
    run = site(bundle)
    assert run.returncode == 0, run.stdout[-3000:]
    assert running() == "0.34.2"

    # The case: the bundle rebuilt for another release, the site playbook run as the doc says.
    assert build(bundle, double, "-e", "ollama_version=0.34.3").returncode == 0
    run = site(bundle)
    assert run.returncode == 0, run.stdout[-3000:]
    assert running() == "0.34.3"

    # A rollback to the release kept from before: no archive needed, the bundle holds only 0.34.3.
    run = site(bundle, "-e", "ollama_version=0.34.2")
    assert run.returncode == 0, run.stdout[-3000:]
    assert running() == "0.34.2"

    # A release the host does not keep, asked of a bundle of another: refused, in check mode too, before any change.
    HOST.sh(f"rm -rf {RELEASES}/0.34.3-*")
    assert build(bundle, double).returncode == 0  # the bundle of 0.34.2 again
    invocation = HOST.unit("InvocationID")
    for check in ([], ["--check"]):
        run = site(bundle, "-e", "ollama_version=0.34.3", *check)
        assert run.returncode != 0
        expected = f"the archives of {bundle}/ollama/ are Ollama 0.34.2 (ollama_archive_version"
        assert expected in flat(run.stdout), run.stdout[-3000:]
        assert recap_changed(run.stdout, HOST.name) == 0
    assert HOST.unit("InvocationID") == invocation
    assert running() == "0.34.2"


def test_a_tarball_is_unpacked_as_the_doc_says_and_named_when_it_is_not(tmp_path: Path) -> None:
    bundle, double = tmp_path / "srv" / "cortex-bundle", double_vars(tmp_path)
    assert build(bundle, double, "-e", "airgap_bundle_tarball=true").returncode == 0
    tarball = bundle.with_name("cortex-bundle.tar")
    assert tarball.is_file()

    run = site(tarball)
    assert run.returncode != 0
    assert f"{tarball} is a file, not a directory" in flat(run.stdout) and "tar -xf" in run.stdout, run.stdout[-3000:]

    unpacked = tmp_path / "controller"
    unpacked.mkdir()
    run = run_here(UNPACK, cwd=bundle.parent, replace={"-C /srv": f"-C {unpacked}"})
    assert run.returncode == 0, run.stderr
    assert (unpacked / "cortex-bundle" / "bundle.json").is_file()


def test_the_client_installs_by_hand_from_the_wheelhouse_without_an_index(tmp_path: Path) -> None:
    bundle = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"]) / ".cache" / "airgap-bundle"
    HOST.sh("rm -rf /srv/cortex-bundle /opt/cortex/venv && mkdir -p /srv/cortex-bundle")
    pack = subprocess.run(["tar", "-C", str(bundle), "-cf", "-", "wheels"], capture_output=True, check=True)
    subprocess.run(HOST.ssh_command("tar -xf - -C /srv/cortex-bundle"), input=pack.stdout, check=True)

    HOST.sh(f"set -eu\n{CLIENT}")  # sh, as bash run over ssh would read the image's bashrc

    assert "cortexlinux-router" in HOST.sh("/opt/cortex/venv/bin/pip list 2>/dev/null")
    assert HOST.sh("ip route show default") == ""  # and no index could have been reached
