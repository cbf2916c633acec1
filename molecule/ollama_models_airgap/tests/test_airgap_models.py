"""An air-gapped host provisioned from one bundle built by playbooks/airgap_bundle.yml: Ollama and the models come
from it; a re-run moves nothing; a corrupt blob, a disk too small and a disk that fills mid-import are refused or
undone with the store exactly as it was; a restart (the server's start-up prune) keeps every imported model."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import ollama_double as double
from tests.support.filters import role_module
from tests.support.instances import Instance, RoleRun, apply_role, instance_names

(HOST,) = (Instance(name) for name in instance_names())
BUNDLE = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"]) / ".cache" / "airgap-bundle"
STORE = "/var/lib/ollama/models"
MODELS = ["smollm-double:1b", "tinyllama-double:latest"]
TINY = "registry.ollama.ai/library/tinyllama-double:latest"
B = role_module("ollama_models", "ollama_bundle")


def listed() -> list[str]:
    return sorted(m["name"] for m in HOST.api("/api/tags")["models"])


def models_role(bundle: Path = BUNDLE, **extra: object) -> RoleRun:
    return apply_role(
        HOST.name,
        role="ollama_models",
        ollama_models_bundle=str(bundle),
        ollama_models=["tinyllama-double", "smollm-double:1b"],
        **extra,
    )


@pytest.fixture
def without_tiny() -> Iterator[dict[str, str]]:
    """tinyllama-double removed (its own blobs go, the shared ones stay); the store's files as they are then.
    Afterwards the model is imported again from the good bundle."""
    run = apply_role(HOST.name, role="ollama_models", ollama_models=[{"name": "tinyllama-double", "state": "absent"}])
    assert run.rc == 0, run
    assert listed() == ["smollm-double:1b"]
    yield HOST.file_hashes(STORE)
    run = models_role()
    assert run.rc == 0, run
    assert listed() == MODELS


def test_the_host_is_offline_and_everything_came_from_the_bundle() -> None:
    assert HOST.sh("ip route show default") == ""
    assert listed() == MODELS
    sums = (BUNDLE / "ollama" / "sha256sum.txt").read_text().split()
    assert HOST.sh("cat /usr/local/lib/ollama-releases/current/.cortex-release").split() == [sums[0]]
    index = json.loads((BUNDLE / "models" / "index.json").read_text())
    hashes = HOST.file_hashes(f"{STORE}/blobs")
    for model in index["models"].values():
        for blob in model["blobs"]:
            assert hashes[f"{STORE}/blobs/{blob['digest'].replace(':', '-')}"] == blob["digest"].split(":")[1]


def test_the_bundle_has_a_wheelhouse_and_a_manifest_of_every_file() -> None:
    wheels = sorted(p.name.split("-")[0].lower() for p in (BUNDLE / "wheels").glob("*.whl"))
    assert "cortexlinux_router" in wheels and "httpx" in wheels, wheels  # the client, under its distribution name
    manifest = json.loads((BUNDLE / "bundle.json").read_text())["files"]
    on_disk = {str(p.relative_to(BUNDLE)) for p in BUNDLE.rglob("*") if p.is_file() and p.name != "bundle.json"}
    assert set(manifest) == on_disk
    blob = next(k for k in manifest if k.startswith("models/blobs/"))
    assert manifest[blob]["sha256"] == blob.rsplit("-", 1)[1]


def test_a_rerun_moves_nothing() -> None:
    before = HOST.file_hashes(STORE)
    started = time.monotonic()
    run = models_role()
    seconds = time.monotonic() - started
    assert run.rc == 0 and run.stats["changed"] == 0, run
    assert HOST.file_hashes(STORE) == before
    print(f"re-run of role ollama_models from the bundle: {seconds:.1f} s, 0 bytes moved")


def test_a_corrupt_blob_is_refused_and_the_store_stays_as_it_was(without_tiny: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bundle"
    shutil.copytree(BUNDLE / "models", bad / "models")
    index = json.loads((bad / "models" / "index.json").read_text())
    model_blob = index["models"][TINY]["blobs"][1]  # [0] is the config; [1] the GGUF layer
    victim = bad / "models" / "blobs" / model_blob["digest"].replace(":", "-")
    data = bytearray(victim.read_bytes())
    data[100] ^= 0xFF
    victim.write_bytes(bytes(data))

    run = models_role(bad)
    assert run.rc != 0
    assert any(f"blob {model_blob['digest']} of {TINY} in the bundle is corrupt" in f for f in run.failures), run
    assert listed() == ["smollm-double:1b"]
    assert HOST.file_hashes(STORE) == without_tiny
    assert HOST.sh(f"ls -A {STORE}") == "blobs\nmanifests\n"


def test_a_tarball_bundle_imports_the_same(without_tiny: dict[str, str]) -> None:
    tarball = BUNDLE.with_name(BUNDLE.name + ".tar")  # airgap_bundle_tarball: true in prepare
    run = models_role(tarball)
    assert run.rc == 0, run
    assert listed() == MODELS


def test_an_interrupted_unpack_of_a_tarball_is_redone(without_tiny: dict[str, str], tmp_path: Path) -> None:
    """An unpack cut short leaves part of the bundle in the controller's cache, index.json included (tar order);
    the next run must not take it for a complete one."""
    tarball = BUNDLE.with_name(BUNDLE.name + ".tar")
    st = tarball.stat()
    partial = tmp_path / f"{tarball.name}-{st.st_size}-{int(st.st_mtime)}" / "models"
    partial.mkdir(parents=True)
    shutil.copy(BUNDLE / "models" / "index.json", partial / "index.json")  # and no blobs, no manifests
    run = models_role(tarball, ollama_models_controller_cache_dir=str(tmp_path))
    assert run.rc == 0, run
    assert listed() == MODELS
    assert (partial / "blobs").is_dir() and (partial.parent / ".cortex-unpacked").is_file()


@pytest.mark.parametrize(
    ("spare_mib", "spare_inodes", "message"),
    [
        (16, 1000, "not enough free space for registry.ollama.ai/library/tinyllama-double:latest"),
        (200, 2, "No space left on device"),  # bytes fit; the second staged blob finds no inode
    ],
    ids=["too-small", "full-mid-import"],
)
def test_a_full_disk_leaves_the_store_as_it_was(
    without_tiny: dict[str, str], spare_mib: int, spare_inodes: int, message: str
) -> None:
    with HOST.small_filesystem(STORE, spare_mib=spare_mib, spare_inodes=spare_inodes):
        before = HOST.file_hashes(STORE)
        assert before == without_tiny
        run = models_role()
        assert run.rc != 0
        assert any(message in f for f in run.failures), run
        assert HOST.file_hashes(STORE) == before
        assert HOST.sh(f"ls -A {STORE}") == "blobs\nmanifests\n", "the staging directory is cleared"
        assert listed() == ["smollm-double:1b"]


def big_models(tmp_path: Path, names: list[str], mib: int) -> Path:
    """A bundle of models of `mib` MiB each (random bytes: nothing compresses or dedupes), as the export writes it."""
    store = double.Store(tmp_path / "store")
    store.ensure_dirs()
    for name in names:
        layer = {"mediaType": double.MODEL_MEDIA_TYPE, **double.put_blob(store, b"GGUF" + os.urandom(mib << 20))}
        config = {"mediaType": double.CONFIG_MEDIA_TYPE, **double.put_blob(store, double.model_config())}
        store.write_manifest(double.parse_name(name), double.manifest_bytes(config, [layer]))
    B.export(store.root, names, tmp_path / "bundle" / "models")
    return tmp_path / "bundle"


def test_space_is_counted_once_and_for_all_models_together(tmp_path: Path) -> None:
    """200 MiB free: a 100 MiB model imports (staging it must not count twice); two of them fit alone but not
    together, and are refused before anything is copied."""
    a, b = "registry.ollama.ai/library/big-a:latest", "registry.ollama.ai/library/big-b:latest"
    bundle = big_models(tmp_path, [a, b], 100)
    declared = [*MODELS, "big-a", "big-b"]
    with HOST.small_filesystem(STORE, spare_mib=200, spare_inodes=1000):
        before = HOST.file_hashes(STORE)
        run = apply_role(HOST.name, role="ollama_models", ollama_models_bundle=str(bundle), ollama_models=declared)
        assert run.rc != 0, run
        assert any(
            "not enough free space for 2 models together (big-a:latest, big-b:latest)" in f for f in run.failures
        ), run
        copies = [t for p in run.report["plays"] for t in p["tasks"] if t["task"]["name"].endswith("not have yet")]
        assert not copies, "a copy ran before the refusal"
        assert HOST.file_hashes(STORE) == before
        assert HOST.sh(f"ls -A {STORE}") == "blobs\nmanifests\n"

        run = apply_role(
            HOST.name, role="ollama_models", ollama_models_bundle=str(bundle), ollama_models=[*MODELS, "big-a"]
        )
        assert run.rc == 0, run
        assert listed() == ["big-a:latest", *MODELS]


def test_a_restart_keeps_the_imported_models() -> None:
    before = HOST.file_hashes(STORE)
    HOST.restart()
    assert listed() == MODELS
    assert HOST.file_hashes(STORE) == before


BIG = "registry.ollama.ai/library/big-double:latest"
BIG_MIB = 256


def task_seconds(run: RoleRun, *names: str) -> float:
    """Seconds the named tasks took in one run (the json callback's per-task timestamps)."""
    found = [
        task["task"]["duration"]
        for play in run.report["plays"]
        for task in play["tasks"]
        if task["task"]["name"].split(" : ")[-1] in names
    ]
    assert len(found) == len(names), [t["task"]["name"] for p in run.report["plays"] for t in p["tasks"]]
    return sum((_ts(d["end"]) - _ts(d["start"])).total_seconds() for d in found)


def _ts(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_import_throughput_beside_a_raw_ssh_transfer(tmp_path: Path) -> None:
    """Benchmark (printed, not asserted): a 256 MiB model imported from a bundle, beside the same blob sent raw over
    the same SSH connection (`ssh host 'cat > f' < blob`), in one run; then a re-run, which must move nothing."""
    bundle = big_models(tmp_path, [BIG], BIG_MIB)
    index = json.loads((bundle / "models" / "index.json").read_text())
    layer = index["models"][BIG]["blobs"][1]
    blob = bundle / "models" / "blobs" / layer["digest"].replace(":", "-")
    models = ["tinyllama-double", "smollm-double:1b", "big-double"]

    def raw() -> float:
        started = time.monotonic()
        with blob.open("rb") as data:
            subprocess.run(HOST.ssh_command("cat > /root/raw-copy"), stdin=data, check=True)
        seconds = time.monotonic() - started
        HOST.sh("rm -f /root/raw-copy")
        return seconds

    raw_before = raw()
    try:
        started = time.monotonic()
        run = apply_role(HOST.name, role="ollama_models", ollama_models_bundle=str(bundle), ollama_models=models)
        role_seconds = time.monotonic() - started
        assert run.rc == 0 and run.stats["changed"] >= 1, run
        moving = task_seconds(
            run, "Copy the blobs the host does not have yet", "Pull, import, create or remove the models"
        )
        raw_after = raw()
        started = time.monotonic()
        rerun = apply_role(HOST.name, role="ollama_models", ollama_models_bundle=str(bundle), ollama_models=models)
        rerun_seconds = time.monotonic() - started
        assert rerun.rc == 0 and rerun.stats["changed"] == 0, rerun
        assert HOST.sh(f"sha256sum {STORE}/blobs/{blob.name}").split()[0] == layer["digest"].split(":")[1]
    finally:
        absent = [{"name": "big-double", "state": "absent"}]
        assert apply_role(HOST.name, role="ollama_models", ollama_models=absent).rc == 0
    size = blob.stat().st_size
    raw_seconds = (raw_before + raw_after) / 2
    report = (
        f"bundle import of {size >> 20} MiB: copy+verify+import tasks {moving:.2f} s "
        f"({size / moving / 1e6:.0f} MB/s), whole role run {role_seconds:.1f} s; raw ssh 'cat > f' of the same blob "
        f"{raw_before:.2f} s and {raw_after:.2f} s ({size / raw_seconds / 1e6:.0f} MB/s); "
        f"import/raw throughput {raw_seconds / moving:.2f}x; re-run {rerun_seconds:.1f} s, 0 bytes moved"
    )
    print(report)
    out = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"]) / ".cache" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bundle_import.txt").write_text(report + "\n")


def test_a_model_larger_than_the_remote_tmp_imports(tmp_path: Path) -> None:
    """Ansible's remote tmp on a 16 MiB tmpfs (as a small / would be): a 64 MiB model still imports, because its
    blobs go straight onto the store's filesystem, not through the remote tmp."""
    bundle = big_models(tmp_path, [BIG], 64)
    HOST.sh("mkdir -p /root/.ansible/tmp && mount -t tmpfs -o size=16m tmpfs /root/.ansible/tmp")
    try:
        run = apply_role(HOST.name, role="ollama_models", ollama_models_bundle=str(bundle), ollama_models=[*MODELS,
                         "big-double"])  # fmt: skip
        assert run.rc == 0, run
        assert "big-double:latest" in listed()
        assert HOST.sh("ls -A /root/.ansible/tmp") == "", "nothing is left in the remote tmp"
    finally:
        HOST.sh("umount /root/.ansible/tmp; true")
        absent = [{"name": "big-double", "state": "absent"}]
        assert apply_role(HOST.name, role="ollama_models", ollama_models=absent).rc == 0
