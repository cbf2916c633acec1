"""An archive is installed only as the release it is. A bundle records its archives' version (ollama/VERSION):
another ollama_version is refused in preflight, in check mode too, before anything changes; an archive that is not
the release asked for (a mislabelled file) is refused on the host before the switch, by its binary's own version;
and a rollback to a release the host kept needs no archive (nor any sha256 source: the kept release's marker
vouches for it), so a bundle of the new release alone still allows it.
Before, the archive was unpacked into a directory named after ollama_version and restarted into, and the run failed
only afterwards ("reports 0.34.3 after a restart, expected 0.34.2")."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from test_upgrade import RELEASES_DIR, STAGING, releases, sent

from tests.support.archives import archive_path
from tests.support.instances import Instance, apply_role, instance_names

(HOST,) = (Instance(name) for name in instance_names())
# Same archive layout within a pair (.tar.zst from 0.14.0, .tgz before): one can stand in for the other.
PAIRS = {"0.34.2": "0.34.3", "0.34.3": "0.34.2", "0.13.4": "0.13.5", "0.13.5": "0.13.4"}


def running() -> str:
    return str(HOST.api("/api/version")["version"])


def bundle_of(version: str, where: Path) -> Path:
    """A bundle's ollama/ directory as playbooks/airgap_bundle.yml writes it: the archive, its sha256sum.txt and
    the VERSION record."""
    ollama = where / "bundle" / "ollama"
    ollama.mkdir(parents=True)
    archive = archive_path(version)
    shutil.copy(archive, ollama / archive.name)
    (ollama / "sha256sum.txt").write_text(f"{hashlib.sha256(archive.read_bytes()).hexdigest()}  ./{archive.name}\n")
    (ollama / "VERSION").write_text(f"{version}\n")
    return ollama


def test_a_bundle_of_another_release_is_refused_before_any_change(tmp_path: Path) -> None:
    current = running()
    target = next(v for v in PAIRS if not any(r.startswith(f"{v}-") for r in releases()))
    bundled = PAIRS[target]
    ollama = bundle_of(bundled, tmp_path)
    before, invocation = releases(), HOST.unit("InvocationID")

    for check in (True, False):
        # As inventory/group_vars/all/airgap.yml passes the bundle's record to the role.
        run = apply_role(
            HOST.name,
            check=check,
            ollama_version=target,
            ollama_archive_src=f"{ollama}/",
            ollama_archive_version=(ollama / "VERSION").read_text().strip(),
        )

        assert run.rc != 0, run
        (failure,) = run.failures
        assert f"the archives of {ollama}/ are Ollama {bundled} (ollama_archive_version" in failure, failure
        assert f"ollama_version is {target}; nothing was changed" in failure, failure
        assert run.stats["changed"] == 0, run
    assert releases() == before
    assert HOST.unit("InvocationID") == invocation
    assert running() == current


def test_an_archive_of_another_release_is_refused_on_the_host_before_the_switch(tmp_path: Path) -> None:
    current = running()
    target = next(v for v in PAIRS if not any(r.startswith(f"{v}-") for r in releases()))
    impostor = archive_path(PAIRS[target])
    mislabelled = tmp_path / archive_path(target).name  # the file name a real archive of `target` has
    shutil.copy(impostor, mislabelled)
    before, invocation = releases(), HOST.unit("InvocationID")

    run = apply_role(
        HOST.name,
        ollama_version=target,
        ollama_archive_src=str(mislabelled),
        ollama_archive_sha256=hashlib.sha256(impostor.read_bytes()).hexdigest(),
        ollama_checksums={},  # no pin for `target`: the operator's sha256 is trusted, and it matches the file
    )

    assert run.rc != 0, run
    (failure,) = run.failures
    assert f"the archive holds Ollama {PAIRS[target]}, not ollama_version {target}" in failure, failure
    assert releases() == before, "a release directory was left behind"
    assert HOST.unit("InvocationID") == invocation, "the service was restarted"
    assert running() == current
    assert not HOST.sh(f"ls -A {STAGING} 2>/dev/null || true").strip()


def test_a_rollback_to_a_kept_release_needs_no_archive(tmp_path: Path) -> None:
    current = running()
    kept = sorted(r for r in releases() - {"current"} if not r.startswith(f"{current}-"))
    if not kept:  # the walk of test_upgrade.py keeps one; on a fresh host make one
        previous = PAIRS[current]
        assert apply_role(HOST.name, ollama_version=previous).rc == 0
        assert apply_role(HOST.name, ollama_version=current).rc == 0
        kept = sorted(r for r in releases() - {"current"} if not r.startswith(f"{current}-"))
    (kept_release,) = kept
    rollback = kept_release.split("-", 1)[0]
    # The operator's bundle holds only the release now running.
    ollama = bundle_of(current, tmp_path)
    rollback_vars = {
        "ollama_version": rollback,
        "ollama_archive_src": f"{ollama}/",
        "ollama_checksums_file": str(ollama / "sha256sum.txt"),
        "ollama_archive_version": current,
        "ollama_checksums": {},  # no pin either: only the kept release's own marker vouches for it
    }

    # A dry run says the switch would happen (it used to report changed=0), and changes nothing.
    dry = apply_role(HOST.name, check=True, **rollback_vars)
    assert dry.rc == 0 and dry.stats["changed"] > 0, dry
    assert running() == current

    run = apply_role(HOST.name, **rollback_vars)

    assert run.rc == 0, run
    assert sent(run) == []
    assert running() == rollback
    assert HOST.sh(f"readlink {RELEASES_DIR}/current").strip() == kept_release
    run = apply_role(HOST.name, ollama_version=current)
    assert run.rc == 0, run
    assert sent(run) == []
    assert running() == current
