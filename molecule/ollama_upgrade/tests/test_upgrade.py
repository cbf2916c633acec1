"""Upgrade and downgrade across the .tgz and .tar.zst layouts: models survive, one restart per change; upgrades
under faults (full disk before the copy, a full disk mid-unpack, an interrupted unpack) leave the running version
installed and restartable; GPU add-ons (ROCm on an AMD host, JetPack on a Jetson) are installed and kept.

Converge installed 0.13.5 (.tgz, floor lowered in molecule.yml) from a controller path. The walk goes to 0.34.3
(.tar.zst) downloaded from an internal mirror (an HTTP server on the controller's loopback, with a query string
on the URL), 0.34.3 again from the controller path (same archive: a no-op), 0.13.4 (downgrade to .tgz) and back
to 0.34.3 (kept from before: switched to without a copy). Each test compares against the version found running,
so the verifier can be re-run on the same instance.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.archives import ARCH, RELEASES, archive_file_hashes, archive_members, archive_path, read_archive
from tests.support.instances import Instance, apply_role, http_mirror, instance_names

(HOST,) = (Instance(name) for name in instance_names())
MODEL_DIR = "/var/lib/ollama/models"
MODEL = "survivor:latest"
# roles/ollama/vars/main.yml: one directory per release, `current` links to the one in use.
RELEASES_DIR = "/usr/local/lib/ollama-releases"
STAGING = "/var/cache/cortex-ollama"
MARKER = ".cortex-release"

# A model in Ollama's real on-disk layout: a GGUF-looking blob, a config blob and a v2 manifest naming both.
PLACE_MODEL = r"""
import hashlib, json, pathlib
root = pathlib.Path("/var/lib/ollama/models")
def blob(data, media_type):
    digest = hashlib.sha256(data).hexdigest()
    path = root / "blobs" / f"sha256-{digest}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}
model = blob(b"GGUF\x03\x00\x00\x00" + bytes(range(256)) * 512, "application/vnd.ollama.image.model")
config = blob(json.dumps({"model_format": "gguf", "model_family": "gemma3", "model_families": ["gemma3"],
                          "model_type": "268.10M", "file_type": "Q4_K_M"}).encode(),
              "application/vnd.docker.container.image.v1+json")
manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": config, "layers": [model]}
path = root / "manifests/registry.ollama.ai/library/survivor/latest"
path.parent.mkdir(parents=True, exist_ok=True)
path.write_text(json.dumps(manifest))
"""


def current() -> str:
    """The release directory in use (where `current` and bin/ollama lead)."""
    resolved = HOST.sh("readlink -f /usr/local/bin/ollama").strip()
    assert resolved == HOST.sh(f"readlink -f {RELEASES_DIR}/current").strip() + "/bin/ollama"
    return resolved.removesuffix("/bin/ollama")


def lib_tree() -> set[str]:
    return set(HOST.sh(f"cd {current()} && find lib/ollama -mindepth 1").splitlines())


def shipped_lib(version: str, addon: str = "", arch: str = ARCH) -> set[str]:
    members = archive_members(archive_path(version, arch))
    if addon:
        members |= archive_members(archive_path(version, arch, addon))
    return {m for m in members if m.startswith("lib/ollama/")}


def installed_files() -> dict[str, str]:
    root = current()
    hashes = HOST.file_hashes(f"{root}/lib/ollama {root}/bin/ollama")
    return {path.replace(root, "<release>", 1): digest for path, digest in hashes.items()}


def expected_files(version: str, addon: str = "") -> dict[str, str]:
    files = archive_file_hashes(archive_path(version), "<release>")
    if addon:
        files |= archive_file_hashes(archive_path(version, addon=addon), "<release>")
    return files


def releases() -> set[str]:
    return set(HOST.sh(f"ls -A {RELEASES_DIR}").split())


def model_names() -> set[str]:
    return {m["name"] for m in HOST.api("/api/tags")["models"]}


def other_version(running: str) -> str:
    return "0.34.3" if running != "0.34.3" else "0.13.4"


def fresh_version() -> str:
    """A version that is neither running nor kept on the host: installing it needs a copy and an unpack."""
    on_host = {r.split("-", 1)[0] for r in releases()}
    return next(v for v in ("0.34.2", "0.13.5", "0.34.3", "0.13.4") if v not in on_host)


def test_archives_differ_in_lib_ollama() -> None:
    # Otherwise "nothing of the old lib/ollama remains" below would prove nothing.
    assert shipped_lib("0.13.5") - shipped_lib("0.34.3")
    assert shipped_lib("0.34.3") - shipped_lib("0.13.5")


def test_upgrade_and_downgrade_keep_models_and_restart_once_per_change(tmp_path: Path) -> None:
    HOST.sh(f"python3 - && chown -R ollama:ollama {MODEL_DIR}", stdin=PLACE_MODEL)
    models = HOST.file_hashes(MODEL_DIR)
    assert len(models) == 3
    assert MODEL in model_names()
    version = HOST.api("/api/version")["version"]

    with http_mirror(RELEASES) as mirror:
        steps = [("0.34.3", "mirror"), ("0.34.3", "path"), ("0.13.4", "path"), ("0.34.3", "path")]
        for target, source in steps:
            step_vars: dict[str, Any] = {"ollama_version": target}
            remote = f"/{target}/{archive_path(target).name}"
            if source == "mirror":
                # An empty controller cache, so the archive really comes over HTTP; a signed-URL style query string.
                step_vars["ollama_archive_src"] = f"{mirror.url}{remote}?X-Signature=abc123&expires=1"
                step_vars["ollama_controller_cache_dir"] = str(tmp_path / "controller-cache")
            changes = target != version
            before = releases()
            kept = {r for r in before if r.startswith(f"{target}-")}
            kept_inode = HOST.sh(f"stat -c %i {RELEASES_DIR}/{next(iter(kept))}") if kept else ""
            invocation, starts = HOST.unit("InvocationID"), HOST.starts()

            run = apply_role(HOST.name, **step_vars)

            assert run.rc == 0, run
            downloaded = any(r.startswith(f"GET {remote}?") for r in mirror.requests)
            assert downloaded == (source == "mirror" and changes), (mirror.requests, version, target)
            assert "abc123" not in run.output.replace(str(step_vars.get("ollama_archive_src")), "")
            mirror.requests.clear()
            assert (run.stats["changed"] > 0) == changes, f"{version} -> {target}: {run}"
            assert HOST.starts() == starts + (1 if changes else 0), f"{version} -> {target}: starts"
            assert (HOST.unit("InvocationID") != invocation) == changes, f"{version} -> {target}: InvocationID"
            assert HOST.unit("ActiveState") == "active"
            assert HOST.api("/api/version")["version"] == target
            assert target in HOST.sh("/usr/local/bin/ollama --version")
            assert lib_tree() == shipped_lib(target), f"{version} -> {target}: lib/ollama is not exactly {target}'s"
            assert installed_files() == expected_files(target)
            assert HOST.file_hashes(MODEL_DIR) == models, f"{version} -> {target}: model store changed"
            assert MODEL in model_names()
            # The release switched from stays for a rollback; older ones go. A kept release is switched back to
            # as it is (not unpacked again).
            after = releases() - {"current"}
            if changes:  # the new release and the one switched from; older ones are gone
                assert sorted(r.split("-", 1)[0] for r in after) == sorted([target, version]), after
            else:
                assert after == before - {"current"}, after
            if kept:
                assert HOST.sh(f"stat -c %i {RELEASES_DIR}/{next(iter(kept))}") == kept_inode
            assert not HOST.sh(f"ls -A {STAGING} 2>/dev/null || true").strip()
            version = target


def sent(run: Any) -> list[str]:
    """The files the role's copy task sent to the host (ollama_stage_files reports them)."""
    return [
        name
        for play in run.report["plays"]
        for task in play["tasks"]
        if task["task"]["name"].endswith("Copy the verified archives to the host")
        for result in task["hosts"].values()
        for name in result.get("sent", [])
    ]


def test_hosts_with_zstd_get_the_archive_as_published() -> None:
    """Hosts without zstd are sent a gzip copy the controller made; a host with its distribution's zstd gets the
    .tar.zst itself (smaller, and byte for byte the published file)."""
    target = other_version(HOST.api("/api/version")["version"])
    HOST.sh("command -v zstd >/dev/null || (apt-get update -qq && apt-get install -y -qq zstd) >/dev/null 2>&1")
    try:
        HOST.sh(f"rm -rf {RELEASES_DIR}/{target}-*")  # a release kept from an earlier test would need no copy
        run = apply_role(HOST.name, ollama_version=target)
        assert run.rc == 0, run
        assert sent(run) == [archive_path(target).name]
        assert HOST.api("/api/version")["version"] == target
        assert installed_files() == expected_files(target)
    finally:
        HOST.sh("apt-get remove -y -qq zstd >/dev/null 2>&1")
    target = other_version(target)
    HOST.sh(f"rm -rf {RELEASES_DIR}/{target}-*")
    run = apply_role(HOST.name, ollama_version=target)
    assert run.rc == 0, run
    name = archive_path(target).name
    assert sent(run) == [name.replace(".tar.zst", ".tar.gz") if name.endswith(".tar.zst") else name]


@pytest.fixture
def tmpfs() -> Iterator[list[str]]:
    """Mount points the test put a small tmpfs on; unmounted afterwards (lazily: a server may hold files)."""
    mounts: list[str] = []
    yield mounts
    for mount in reversed(mounts):
        HOST.sh(f"umount -l {mount}", check=False)


def test_a_full_disk_before_the_copy_is_refused_and_the_running_version_stays(tmpfs: list[str]) -> None:
    running = HOST.api("/api/version")["version"]
    target, before = fresh_version(), releases()
    HOST.sh(f"mkdir -p {STAGING} && mount -t tmpfs -o size=64k tmpfs {STAGING}")
    tmpfs.append(STAGING)

    run = apply_role(HOST.name, ollama_version=target)

    assert run.rc != 0
    (failure,) = run.failures  # the refusal alone: cleaning up after it does not fail on the mount point
    assert "not enough free space on this host" in failure and STAGING in failure, failure
    assert releases() == before
    assert HOST.api("/api/version")["version"] == running
    assert HOST.restart() == running
    HOST.sh(f"umount {STAGING}")
    tmpfs.remove(STAGING)
    run = apply_role(HOST.name, ollama_version=target)
    assert run.rc == 0, run
    assert HOST.api("/api/version")["version"] == target


def test_a_full_disk_mid_unpack_leaves_the_running_version_installed() -> None:
    """The byte check passes, then the filesystem runs out of inodes part-way through the unpack: nothing of the
    new release remains, `current` still leads to the old one, which restarts; more room and a re-run finish."""
    running = HOST.api("/api/version")["version"]
    target, before = fresh_version(), releases()
    used = int(HOST.sh(f"find {RELEASES_DIR} | wc -l"))
    # The releases move onto a tmpfs with room for what is there and a handful of new files, not a whole release.
    HOST.sh(
        f"cp -a {RELEASES_DIR} /root/releases.copy && "
        f"mount -t tmpfs -o size=256m,nr_inodes={used + 6},mode=0755 tmpfs {RELEASES_DIR} && "
        f"cp -a /root/releases.copy/. {RELEASES_DIR}/ && rm -rf /root/releases.copy"
    )
    try:
        assert HOST.restart() == running  # the server now runs from the tmpfs

        run = apply_role(HOST.name, ollama_version=target)

        assert run.rc != 0
        assert any("No space left on device" in f for f in run.failures), run.failures
        assert releases() == before
        assert HOST.api("/api/version")["version"] == running
        assert HOST.restart() == running
        assert not HOST.sh(f"ls -A {STAGING} 2>/dev/null || true").strip()
        HOST.sh(f"mount -o remount,nr_inodes=100000 {RELEASES_DIR}")
        run = apply_role(HOST.name, ollama_version=target)
        assert run.rc == 0, run
        assert HOST.api("/api/version")["version"] == target
        assert installed_files() == expected_files(target)
    finally:  # back onto the disk, for the tests after this one
        HOST.sh(
            f"cp -a {RELEASES_DIR} /root/releases.copy && umount -l {RELEASES_DIR} && rm -rf {RELEASES_DIR} && "
            f"mv /root/releases.copy {RELEASES_DIR}"
        )
        HOST.restart()


def test_an_interrupted_unpack_leaves_the_running_version_and_a_rerun_finishes(tmp_path: Path) -> None:
    """What a run killed mid-unpack leaves behind (a half-copied staged archive, a partly written release
    directory): the old version still runs and restarts; the next run clears the leftovers and completes."""
    running = HOST.api("/api/version")["version"]
    target = fresh_version()
    name = archive_path(target).name
    (tmp_path / name).write_bytes(archive_path(target).read_bytes()[:1000])
    HOST.sh(f"mkdir -p {STAGING}")
    HOST.host.ansible("ansible.builtin.copy", f"src={tmp_path / name} dest={STAGING}/{name}", become=True, check=False)
    partial = f"{RELEASES_DIR}/.partial-{target}-0123456789ab.AbC123"
    HOST.sh(
        f"mkdir -p {partial}/bin {partial}/lib/ollama && echo partial | tee {partial}/bin/ollama "
        f"> {partial}/lib/ollama/libggml-base.so.0.0.0"
    )
    assert HOST.restart() == running

    run = apply_role(HOST.name, ollama_version=target)

    assert run.rc == 0, run
    assert HOST.api("/api/version")["version"] == target
    assert not [r for r in releases() if r.startswith(".partial-")]
    assert not HOST.sh(f"ls -A {STAGING} 2>/dev/null || true").strip()
    assert installed_files() == expected_files(target)


@pytest.mark.parametrize("switched", [True, False], ids=["switched", "unpacked-only"])
def test_a_restart_lost_to_a_failed_run_is_repaired(switched: bool, tmp_path: Path) -> None:
    """A run unpacked a new release (and maybe switched `current` to it) and failed before its restart: the old
    server still runs. The next run restarts it once and ends on the pinned version, instead of failing on the
    version check."""
    running = HOST.api("/api/version")["version"]
    target = other_version(running)
    digest = hashlib.sha256(archive_path(target).read_bytes()).hexdigest()
    release = f"{RELEASES_DIR}/{target}-lost"
    with read_archive(archive_path(target)) as src, tarfile.open(tmp_path / "release.tar", mode="w") as tar:
        for member in src.getmembers():
            tar.addfile(member, src.extractfile(member) if member.isfile() else None)
        marker = tarfile.TarInfo(MARKER)
        marker.size = len(digest) + 1
        tar.addfile(marker, io.BytesIO(f"{digest}\n".encode()))
    HOST.host.ansible(
        "ansible.builtin.copy", f"src={tmp_path / 'release.tar'} dest=/tmp/release.tar", become=True, check=False
    )
    # The role names release directories <version>-<hash of the archives' sha256>.
    release = f"{RELEASES_DIR}/{target}-{hashlib.sha256(digest.encode()).hexdigest()[:12]}"
    HOST.sh(
        f"rm -rf {release} && mkdir {release} && tar -x --no-same-owner -C {release} -f /tmp/release.tar"
        f" && chmod 0755 {release} && rm /tmp/release.tar"
        + (f" && ln -sfn {release.rsplit('/', 1)[1]} {RELEASES_DIR}/current" if switched else "")
    )
    assert HOST.api("/api/version")["version"] == running  # the old process still serves
    starts = HOST.starts()

    run = apply_role(HOST.name, ollama_version=target)

    assert run.rc == 0, run
    assert HOST.api("/api/version")["version"] == target
    assert HOST.starts() == starts + 1
    assert current() == release


def test_gpu_addons_follow_the_hardware_and_stay_through_upgrades(tmpfs: list[str]) -> None:
    """An AMD GPU (a PCI display device of vendor 0x1002 in sysfs) gets the ROCm add-on, kept through an upgrade;
    ollama_gpu_addon: none takes it away. A Jetson (L4T R36 in /etc/nv_tegra_release, arm64) gets JetPack 6."""
    HOST.sh(
        "mount -t tmpfs tmpfs /sys/bus/pci/devices && mkdir /sys/bus/pci/devices/0000:03:00.0 && "
        "echo 0x1002 > /sys/bus/pci/devices/0000:03:00.0/vendor && "
        "echo 0x030000 > /sys/bus/pci/devices/0000:03:00.0/class"
    )
    tmpfs.append("/sys/bus/pci/devices")
    version = HOST.api("/api/version")["version"]
    for target in (version, other_version(version)):
        run = apply_role(HOST.name, ollama_version=target)
        assert run.rc == 0, run
        assert HOST.api("/api/version")["version"] == target
        assert lib_tree() == shipped_lib(target, "rocm")
        assert installed_files() == expected_files(target, "rocm")
        assert "rocm_v7" in HOST.sh("journalctl -u ollama -n 50 --no-pager | grep backends= | tail -n 1")

    run = apply_role(HOST.name, ollama_version=target, ollama_gpu_addon="none")
    assert run.rc == 0, run
    assert lib_tree() == shipped_lib(target)

    HOST.sh("umount /sys/bus/pci/devices")
    tmpfs.remove("/sys/bus/pci/devices")
    tegra = "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, DATE: Wed Jan  8 2025"
    HOST.sh(f"echo '{tegra}' > /etc/nv_tegra_release")
    try:
        arm64 = {"ollama_arch": "arm64", "ollama_archive_src": str(archive_path(target, "arm64"))}
        run = apply_role(HOST.name, ollama_version=target, **arm64)
        assert run.rc == 0, run
        assert lib_tree() == shipped_lib(target, "jetpack6", arch="arm64")
    finally:
        HOST.sh("rm -f /etc/nv_tegra_release")
    run = apply_role(HOST.name, ollama_version=target)
    assert run.rc == 0, run
    assert lib_tree() == shipped_lib(target)


def test_mirror_credentials_and_secret_settings_never_reach_the_output(tmp_path: Path) -> None:
    """A mirror that wants a user and password, named in its URL, and settings that are secrets by their names: at
    -vvv --diff, what an operator pastes into a ticket, none of the secret values appears; the download still
    authenticates (the mirror refuses anyone without them)."""
    password, secrets = (
        "M1rr0r-Pa55",
        {"DB_PASS": "pass-1a2b", "SMTP_PWD": "pwd-3c4d", "SVC_APIKEY": "key-5e6f", "AWS_CREDS": "creds-7a8b"},
    )
    proxy_token = "tok-9c0d1e2f"
    running, target = HOST.api("/api/version")["version"], fresh_version()
    with http_mirror(RELEASES, basic_auth=f"ops:{password}") as mirror:
        remote = f"/{target}/{archive_path(target).name}"
        settings: dict[str, Any] = {
            "ollama_extra_env": secrets,
            "ollama_https_proxy": f"http://{proxy_token}@proxy.example.internal:3128",
        }
        try:
            run = apply_role(
                HOST.name,
                diff=True,
                verbose=True,
                ollama_version=target,
                ollama_archive_src=f"http://ops:{password}@{mirror.url.removeprefix('http://')}{remote}",
                ollama_controller_cache_dir=str(tmp_path / "controller-cache"),
                **settings,
            )
            assert run.rc == 0, run.output[-3000:]
            # Downloaded with the credentials: more GETs than the mirror refused.
            assert mirror.requests.count(f"GET {remote}") > mirror.denied.count(f"GET {remote}"), mirror.requests
            for value in (password, proxy_token, *secrets.values()):
                assert value not in run.output, value
            dropin = HOST.sh("cat /etc/systemd/system/ollama.service.d/10-cortex.conf")
            shown = HOST.unit("Environment")
            for value in (proxy_token, *secrets.values()):
                assert value not in dropin and value not in shown, value
            assert HOST.api("/api/version")["version"] == target
        finally:
            restore = apply_role(HOST.name, ollama_version=running)
    assert restore.rc == 0, restore
