"""What converge left on the air-gapped host: the driver from the controller's .debs, held, with everything it
needs at the next boot (nouveau blacklisted, modules loaded, device nodes made before Ollama, persistence mode),
kept out of unattended upgrades. Then --check changes nothing, and state absent removes it all."""

from __future__ import annotations

import hashlib
import itertools
import os
from pathlib import Path
from typing import Any

import pytest

from tests.support.filters import role_filters
from tests.support.instances import Instance, RoleRun, apply_role, apply_role_cases, instance_names
from tests.support.nvidia import (
    BLACKLIST,
    LOCAL_REPO,
    MODULES_LOAD,
    NODES_UNIT,
    OPTIONS,
    ROLE_FILES,
    SOURCE,
    UNATTENDED,
    snapshot,
)

HOST = Instance(instance_names()[0])
KERNEL = os.uname().release  # the containers run the controller's kernel
FLAVOUR = role_filters("nvidia_driver").nvidia_driver_kernel_flavour(KERNEL)
HELD = ["nvidia-open-580"]  # the userspace; what follows the kernel (the headers) is never held
FOLLOWS_KERNEL = [f"linux-headers-{KERNEL}", f"linux-headers-{FLAVOUR}"]
DEPENDENCIES = ["nvidia-modprobe", "nvidia-persistenced", "dkms"]
REPO = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"]) / ".cache" / "nvidia-driver-repo"  # the controller's .debs


def test_the_host_is_air_gapped() -> None:
    assert "default" not in HOST.sh("ip route"), "the host has a route out"


def test_source_is_the_copied_repository_indexed_on_the_host() -> None:
    source = HOST.sh(f"cat {SOURCE}")
    assert f"URIs: file:{LOCAL_REPO}" in source and "Suites: ./" in source
    index = HOST.sh(f"cat {LOCAL_REPO}/Packages")
    for deb in HOST.sh(f"cd {LOCAL_REPO} && ls *.deb").split():
        digest = HOST.sh(f"sha256sum {LOCAL_REPO}/{deb}").split()[0]
        assert f"Filename: ./{deb}\n" in index and f"SHA256: {digest}\n" in index, deb
    controller = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in REPO.glob("*.deb")}
    assert HOST.file_hashes(LOCAL_REPO) == {f"{LOCAL_REPO}/{n}": h for n, h in controller.items()} | {
        f"{LOCAL_REPO}/Packages": HOST.sh(f"sha256sum {LOCAL_REPO}/Packages").split()[0]
    }


def test_driver_installed_from_it_and_held() -> None:
    status = HOST.sh(
        "dpkg-query --show --showformat='${Package} ${db:Status-Abbrev}\\n' "
        + " ".join(HELD + FOLLOWS_KERNEL + DEPENDENCIES)
    )
    assert sorted(status.split("\n")[:-1]) == sorted(
        [f"{p} hi " for p in HELD] + [f"{p} ii " for p in FOLLOWS_KERNEL + DEPENDENCIES]
    ), status
    assert set(HOST.sh("apt-mark showhold").split()) == set(HELD)
    assert "580.95.05" in HOST.sh("nvidia-smi --query-gpu=driver_version --format=csv,noheader")
    # The kernel check had DKMS (the TEST DOUBLE) build the module for the running kernel.
    assert HOST.sh(f"ls /lib/modules/{KERNEL}/updates/dkms/").split() == ["nvidia.ko"]


def test_nouveau_blacklisted_and_modules_loaded_at_boot() -> None:
    assert "blacklist nouveau" in HOST.sh(f"cat {BLACKLIST}")
    assert HOST.sh(f"grep -v '^#' {MODULES_LOAD}").split() == ["nvidia", "nvidia-uvm"]
    assert not HOST.host.file(OPTIONS).exists  # no module options asked for


def test_driver_kept_out_of_unattended_upgrades() -> None:
    dump = HOST.sh("apt-config dump Unattended-Upgrade::Package-Blacklist")
    for pattern in ("nvidia-", "libnvidia-", "cuda-drivers"):
        assert f'"{pattern}";' in dump, dump
    # What follows the kernel must come with each new kernel: Ubuntu's prebuilt modules are not kept out.
    assert "linux-modules-nvidia-" not in dump
    # ...and they come from the role's file
    assert HOST.host.file(UNATTENDED).contains("Package-Blacklist") and HOST.host.file(UNATTENDED).mode == 0o644


def test_device_nodes_unit_runs_before_ollama_as_root() -> None:
    props = dict(
        line.split("=", 1)
        for line in HOST.sh(
            "systemctl show nvidia-device-nodes.service -p Type -p RemainAfterExit -p User -p Before -p After "
            "-p UnitFileState -p ExecStart"
        ).splitlines()
    )
    assert props["Type"] == "oneshot" and props["RemainAfterExit"] == "yes" and props["User"] == ""
    assert "ollama.service" in props["Before"].split()
    assert "systemd-modules-load.service" in props["After"].split()
    assert props["UnitFileState"] == "enabled"
    assert "/usr/bin/nvidia-modprobe" in props["ExecStart"] and "-u" in props["ExecStart"]
    # ollama.service pulls it in, so it runs however Ollama is started
    assert HOST.host.file("/etc/systemd/system/ollama.service.wants/nvidia-device-nodes.service").is_symlink
    assert HOST.sh(f"systemd-analyze verify {NODES_UNIT} 2>&1 || true").strip() == ""
    # What it runs at boot: nvidia-modprobe -u -c 0 (the TEST DOUBLE records its arguments).
    HOST.sh("rm -f /run/nvidia-modprobe-double.log && systemctl restart nvidia-device-nodes.service")
    assert HOST.sh("cat /run/nvidia-modprobe-double.log").split() == ["-u", "-c", "0"]


def test_persistence_mode_enabled() -> None:
    assert HOST.sh("systemctl is-enabled nvidia-persistenced.service").strip() == "enabled"


# The role's verify path as a GPU host runs it: the probe's GPU list given (extra vars beat its set_fact), and
# nvidia-smi answering as on a real host (a double first on PATH); nothing can reboot a container, so policy never.
GPU = [{"address": "0000:17:00.0", "device": "0x2330", "class": "0x030200", "driver": "nvidia"}]


def verify_with(smi_script: str, **role_vars: Any) -> RoleRun:
    HOST.sh("cat > /usr/local/bin/nvidia-smi && chmod 755 /usr/local/bin/nvidia-smi", stdin=smi_script)
    try:
        return apply_role(
            HOST.name, role="nvidia_driver", __nvidia_driver_gpus=GPU, nvidia_driver_reboot="never", **role_vars
        )
    finally:
        HOST.sh("rm -f /usr/local/bin/nvidia-smi")


def test_library_mismatch_is_reported_as_reboot_required() -> None:
    run = verify_with(
        "#!/bin/sh\necho 'Failed to initialize NVML: Driver/library version mismatch'\n"
        "echo 'NVML library version: 580.95'\nexit 18\n"
    )
    assert run.rc == 0, run
    assert f"REBOOT REQUIRED on {HOST.name}: reboot required: the loaded kernel module is older" in run.output


def test_a_driver_of_another_branch_fails() -> None:
    run = verify_with("#!/bin/sh\necho '570.211.01, NVIDIA L4'\n")
    assert run.rc != 0
    assert "driver 570.211.01 is running, not branch 580" in " ".join(run.failures), run.failures


def test_a_working_driver_passes() -> None:
    run = verify_with("#!/bin/sh\necho '580.95.05, NVIDIA L4'\n")
    assert run.rc == 0 and "driver 580.95.05 (branch 580) on 1 GPU(s)" in run.output, run


MISMATCH_SMI = (
    "#!/bin/sh\necho 'Failed to initialize NVML: Driver/library version mismatch'\n"
    "echo 'NVML library version: 580.95'\nexit 18\n"
)


@pytest.mark.parametrize("throttle", [1, 3])
def test_a_fleet_reboots_a_throttled_few_at_a_time_and_judges_each_again(throttle: int) -> None:
    """Three hosts of one batch whose driver needs a reboot (aliases of this host; a stand-in does the reboot, see
    reboot_fleet.yml): with nvidia_driver_reboot_throttle 1 they reboot one after another, never two at once (with 3,
    at once: the throttle is what keeps them apart), and each is judged again after its reboot (here it still needs
    one, which the run reports and finishes)."""
    HOST.sh("cat > /usr/local/bin/nvidia-smi && chmod 755 /usr/local/bin/nvidia-smi", stdin=MISMATCH_SMI)
    HOST.sh("rm -f /run/reboots.log; cat /proc/sys/kernel/random/uuid > /run/boot-id")
    try:
        cases = {f"gpu{i}": {"nvidia_driver_reboot": "if_needed"} for i in range(3)}
        runs = apply_role_cases(
            HOST.name,
            cases,
            role="nvidia_driver",
            playbook=Path(__file__).parents[1] / "reboot_fleet.yml",
            extra_vars={"__nvidia_driver_gpus": GPU, "nvidia_driver_reboot_throttle": throttle},
        )
        for case, run in runs.items():
            assert run.rc == 0, (case, run)
        assert "it was rebooted and still needs one" in next(iter(runs.values())).output
        events = [line.split() for line in HOST.sh("cat /run/reboots.log").splitlines()]
        spans: dict[str, list[float]] = {}
        for host, _kind, when in events:
            spans.setdefault(host, []).append(float(when))
        assert sorted(spans) == sorted(f"{HOST.name}.{case}" for case in cases), events
        overlaps = sum(later[0] < earlier[1] for earlier, later in itertools.pairwise(sorted(spans.values())))
        assert (overlaps == 0) is (throttle == 1), f"throttle {throttle}: {events}"
    finally:
        HOST.sh("rm -f /usr/local/bin/nvidia-smi /run/reboots.log /run/boot-id")


def test_check_mode_after_converge_changes_nothing() -> None:
    before = snapshot(HOST)
    run = apply_role(HOST.name, role="nvidia_driver", check=True)
    assert run.rc == 0 and run.stats["changed"] == 0, run
    assert snapshot(HOST) == before


def test_state_absent_removes_the_driver_and_every_file() -> None:
    # Last: it undoes the converge.
    run = apply_role(HOST.name, role="nvidia_driver", nvidia_driver_state="absent")
    assert run.rc == 0, run
    assert HOST.sh("apt-mark showhold").strip() == ""
    listed = HOST.sh("dpkg-query --show --showformat='${Package} ${db:Status-Abbrev}\\n' nvidia-open-580", check=False)
    assert " ii" not in listed and " hi" not in listed, listed
    for path in ROLE_FILES:
        assert not HOST.host.file(path).exists, path
    assert apply_role(HOST.name, role="nvidia_driver", nvidia_driver_state="absent").stats["changed"] == 0
