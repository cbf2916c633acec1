"""Role nvidia_driver's judgement on recorded outputs: sysfs PCI listings, nvidia-smi (several driver versions, the
version-mismatch and no-driver errors), /proc/driver/nvidia/version, and Ollama start-up logs (GPU found, CPU
fallback). The filters are the code the role runs; recordings from real hosts live in tests/data/nvidia/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.filters import role_filters

DATA = Path(__file__).parent / "data" / "nvidia"


F = role_filters("nvidia_driver")


def smi(rc: int, stdout: str = "", stderr: str = "") -> dict[str, Any]:
    return {"rc": rc, "stdout": stdout, "stderr": stderr}


OPEN_580 = (
    "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.95.05  Release Build  "
    "(dvs-builder@U16-I3-B03-4-3)  Tue Sep 23 09:50:11 UTC 2025"
)
PROPRIETARY_550 = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024"


# --- GPUs from sysfs -------------------------------------------------------------------------------------------


def test_gpus_are_nvidia_display_functions_only() -> None:
    lines = [
        "pci=0000:00:00.0 0x8086 0x1237 0x060000 none",  # host bridge
        "pci=0000:17:00.0 0x10de 0x2330 0x030200 nvidia",  # H100: 3D controller
        "pci=0000:65:00.0 0x10de 0x2204 0x030000 nouveau",  # RTX 3090: VGA
        "pci=0000:65:00.1 0x10de 0x1aef 0x040300 snd_hda_intel",  # the 3090's audio function
        "pci=0000:03:00.0 0x1002 0x744c 0x030000 amdgpu",  # AMD GPU
        "os_id=ubuntu",
    ]
    gpus = F.nvidia_driver_gpus(lines)
    assert [g["address"] for g in gpus] == ["0000:17:00.0", "0000:65:00.0"]
    assert [g["driver"] for g in gpus] == ["nvidia", "nouveau"]


def test_recorded_probe_of_a_real_gpu_host() -> None:
    # The role's probe on an H100 VM (tests/gpu/run_on_gpu.sh): virtio devices and one NVIDIA 3D controller.
    gpus = F.nvidia_driver_gpus((DATA / "h100-vm.probe").read_text().splitlines())
    assert gpus == [{"address": "0000:00:06.0", "device": "0x2330", "class": "0x030200", "driver": "nvidia"}]


def test_no_gpu_on_a_host_without_nvidia_devices() -> None:
    assert F.nvidia_driver_gpus(["pci=0000:00:04.0 0x1af4 0x1000 0x020000 virtio-pci", "kernel=6.1.0"]) == []


# --- nvidia-smi and the kernel module --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stdout", "module_line", "branch", "driver"),
    [
        ("580.95.05, NVIDIA H100 80GB HBM3\n", OPEN_580, "580", "580.95.05"),
        ("550.54.15, NVIDIA A100-SXM4-40GB\n550.54.15, NVIDIA A100-SXM4-40GB\n", PROPRIETARY_550, "550", "550.54.15"),
        ("570.211.01, Tesla T4\n", "", "570", "570.211.01"),  # /proc not readable: nvidia-smi alone decides
    ],
)
def test_a_working_driver_of_the_branch_is_ok(stdout: str, module_line: str, branch: str, driver: str) -> None:
    status = F.nvidia_driver_status(smi(0, stdout), module_line, branch)
    assert status["state"] == "ok", status
    assert status["driver_version"] == driver
    assert status["reboot_required"] is False
    assert len(status["gpus"]) == stdout.count("\n")


def test_library_mismatch_is_reboot_required() -> None:
    # nvidia-smi after the userspace was upgraded under a loaded 550 module (exit code 18).
    out = "Failed to initialize NVML: Driver/library version mismatch\nNVML library version: 580.95\n"
    status = F.nvidia_driver_status(smi(18, out), PROPRIETARY_550, "580")
    assert status["state"] == "reboot_required"
    assert status["reboot_required"] is True
    assert "reboot required" in status["message"]
    assert "550.54.15" in status["message"] and "580.95" in status["message"]


def test_module_not_loaded_is_reboot_required() -> None:
    out = (
        "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest "
        "NVIDIA driver is installed and running.\n"
    )
    status = F.nvidia_driver_status(smi(9, out), "", "580")
    assert (status["state"], status["reboot_required"]) == ("reboot_required", True)


def test_loaded_module_older_than_the_tools_is_reboot_required() -> None:
    status = F.nvidia_driver_status(smi(0, "580.95.05, NVIDIA L4\n"), PROPRIETARY_550, "580")
    assert status["state"] == "reboot_required"
    assert "550.54.15" in status["message"] and "580.95.05" in status["message"]


def test_another_branch_is_reported() -> None:
    status = F.nvidia_driver_status(smi(0, "570.211.01, NVIDIA L4\n"), "", "580")
    assert status["state"] == "wrong_branch"
    assert status["reboot_required"] is False


@pytest.mark.parametrize(
    ("result", "state"),
    [
        (smi(127), "not_installed"),
        (smi(6, "No devices were found\n"), "no_devices"),
        (smi(255, "", "Unable to determine the device handle for GPU0000:17:00.0: Unknown Error\n"), "failed"),
        (smi(0, "garbage\n"), "failed"),
    ],
)
def test_other_failures(result: dict[str, Any], state: str) -> None:
    assert F.nvidia_driver_status(result, "", "580")["state"] == state


# --- Ollama's GPU discovery ------------------------------------------------------------------------------------

GPU_LOG = """\
time=2026-11-20T10:00:01.100Z level=INFO source=routes.go:1544 msg="server config" env="map[OLLAMA_HOST:127.0.0.1]"
time=2026-11-20T10:00:01.120Z level=INFO source=routes.go:1597 msg="Listening on 127.0.0.1:11434 (version 0.34.2)"
time=2026-11-20T10:00:01.121Z level=INFO source=runner.go:67 msg="discovering available GPUs..."
time=2026-11-20T10:00:03.402Z level=INFO source=types.go:42 msg="inference compute" id=GPU-5c1f0e4e-3f1a library=CUDA \
compute=9.0 name=CUDA0 description="NVIDIA H100 80GB HBM3" libdirs=ollama,cuda_v13 driver=13.0 pci_id=0000:17:00.0 \
type=discrete total="79.6 GiB" available="79.1 GiB"
"""

CPU_LOG = """\
time=2026-11-20T09:00:00.000Z level=INFO source=types.go:42 msg="inference compute" id=GPU-5c1f library=CUDA \
compute=9.0 name=CUDA0 description="NVIDIA H100 80GB HBM3" total="79.6 GiB" available="79.1 GiB"
time=2026-11-20T10:00:01.120Z level=INFO source=routes.go:1597 msg="Listening on 127.0.0.1:11434 (version 0.34.2)"
time=2026-11-20T10:00:01.121Z level=INFO source=runner.go:67 msg="discovering available GPUs..."
time=2026-11-20T10:00:06.500Z level=INFO source=types.go:60 msg="inference compute" id=cpu library=cpu compute="" \
name=cpu description=cpu libdirs=ollama driver="" pci_id="" type="" total="251.5 GiB" available="240.2 GiB"
"""

OLD_CPU_LOG = """\
time=2025-03-28T15:48:35.891+09:00 level=INFO source=routes.go:1297 msg="Listening on [::]:11434 (version 0.6.2)"
time=2025-03-28T15:48:41.043+09:00 level=INFO source=gpu.go:377 msg="no compatible GPUs were discovered"
time=2025-03-28T15:48:41.043+09:00 level=INFO source=types.go:130 msg="inference compute" id=0 library=cpu \
variant="" compute="" driver=0.0 name="" total="11.7 GiB" available="10.6 GiB"
"""


def _join(log: str) -> str:
    return log.replace("\\\n", "")


def test_cuda_discovery_means_the_gpu_is_used() -> None:
    compute = F.nvidia_driver_ollama_compute(_join(GPU_LOG))
    assert compute["backend"] == "cuda"
    assert compute["devices"] == ["NVIDIA H100 80GB HBM3"]


def test_cpu_fallback_at_the_latest_start_is_seen_even_after_an_earlier_gpu_start() -> None:
    assert F.nvidia_driver_ollama_compute(_join(CPU_LOG))["backend"] == "cpu"
    assert F.nvidia_driver_ollama_compute(_join(OLD_CPU_LOG))["backend"] == "cpu"


def test_no_discovery_yet_is_unknown() -> None:
    log = 'time=2026-11-20T10:00:01Z level=INFO msg="Listening on 127.0.0.1:11434 (version 0.34.2)"\n'
    assert F.nvidia_driver_ollama_compute(log)["backend"] == "unknown"


# --- Recordings from real hosts --------------------------------------------------------------------------------


@pytest.mark.parametrize("recording", sorted(DATA.glob("*.smi")), ids=lambda p: p.stem)
def test_recorded_real_hosts(recording: Path) -> None:
    """Each recording: `# rc=<n> branch=<b> expect=<state> (where from)`, then `# module: <line>`, then the output
    of `nvidia-smi --query-gpu=driver_version,name --format=csv,noheader` (tests/gpu/run_on_gpu.sh writes them)."""
    lines = recording.read_text().splitlines()
    header = dict(field.split("=", 1) for field in lines[0].lstrip("# ").split() if "=" in field)
    module_line = lines[1].removeprefix("# module: ")
    status = F.nvidia_driver_status(smi(int(header["rc"]), "\n".join(lines[2:])), module_line, header["branch"])
    assert status["state"] == header["expect"], status


@pytest.mark.parametrize(
    ("kernel", "flavour"),
    [
        ("6.8.0-45-generic", "generic"),
        ("5.15.0-1070-aws", "aws"),
        ("6.1.0-26-amd64", "amd64"),
        ("6.1.0-26-cloud-amd64", "cloud-amd64"),
        ("6.12.38+deb13-amd64", "amd64"),
        ("6.12.38+deb13-rt-arm64", "rt-arm64"),
    ],
)
def test_kernel_flavour_names_the_meta_packages(kernel: str, flavour: str) -> None:
    assert F.nvidia_driver_kernel_flavour(kernel) == flavour


UBUNTU_BASE = ["nvidia-headless-no-dkms-580-server-open", "nvidia-utils-580-server", "nvidia-modprobe"]
PREBUILT = "linux-modules-nvidia-580-server-open"


def plan(base: list[str], kernel: str, key: str, available: list[str]) -> dict[str, Any]:
    result: dict[str, Any] = F.nvidia_driver_package_plan(
        base,
        kernel=kernel,
        package_key=key,
        available=available,
        ubuntu_prebuilt=PREBUILT,
        ubuntu_dkms="nvidia-dkms-580-server-open",
    )
    return result


def test_ubuntu_prebuilt_modules_follow_the_kernel_and_only_userspace_is_held() -> None:
    """Holding the modules' meta package kept the next kernel's modules from ever arriving."""
    kernel = "6.8.0-45-generic"
    result = plan(UBUNTU_BASE, kernel, "ubuntu_distribution", [f"{PREBUILT}-{kernel}", f"{PREBUILT}-generic"])
    assert result["modules"] == "prebuilt"
    assert result["install"] == [*UBUNTU_BASE, f"{PREBUILT}-{kernel}", f"{PREBUILT}-generic"]
    assert result["hold"] == UBUNTU_BASE


def test_dkms_gets_the_headers_meta_package_so_the_next_kernel_can_be_built_for() -> None:
    kernel = "6.1.0-26-amd64"
    result = plan(["nvidia-open-580"], kernel, "cuda", ["linux-headers-amd64"])
    assert result["modules"] == "dkms"
    assert result["install"] == ["nvidia-open-580", f"linux-headers-{kernel}", "linux-headers-amd64"]
    assert result["hold"] == ["nvidia-open-580"]
    # Ubuntu without prebuilt modules for the kernel: its DKMS source is held with the userspace it must match.
    ubuntu = plan(UBUNTU_BASE, "6.8.0-45-lowlatency", "ubuntu_distribution", ["linux-headers-lowlatency"])
    assert ubuntu["install"][-3:] == [
        "nvidia-dkms-580-server-open",
        "linux-headers-6.8.0-45-lowlatency",
        "linux-headers-lowlatency",
    ]
    assert ubuntu["hold"] == [*UBUNTU_BASE, "nvidia-dkms-580-server-open"]
    # A custom kernel without a meta package: its own headers only (the kernel check says what the next one needs).
    assert plan(["nvidia-open-580"], "6.18.44-custom", "cuda", [])["install"] == [
        "nvidia-open-580",
        "linux-headers-6.18.44-custom",
    ]


NEEDS_REBOOT = {"reboot_required": True, "message": "reboot required: the NVIDIA kernel module is not loaded"}
NO_REBOOT: dict[str, Any] = {"reboot_required": False}


@pytest.mark.parametrize(
    ("status", "context", "expected"),
    [
        (NEEDS_REBOOT, ("if_needed", False, "ssh", False), (True, False, "")),
        # The wizard and the default inventory run on the host itself: never reboot it mid-run, say so and finish.
        (NEEDS_REBOOT, ("if_needed", False, "local", False), (False, True, "local connection")),
        (NO_REBOOT, ("always", True, "local", False), (False, True, "local connection")),
        (NEEDS_REBOOT, ("never", False, "ssh", False), (False, True, "nvidia_driver_reboot is never")),
        (NEEDS_REBOOT, ("if_needed", False, "ssh", True), (False, True, "check mode")),
        (NO_REBOOT, ("always", True, "ssh", False), (True, False, "")),
        (NO_REBOOT, ("if_needed", True, "ssh", False), (False, False, "")),
    ],
    ids=["fleet", "local", "local-always", "never", "check-mode", "always", "not-needed"],
)
def test_a_reboot_happens_only_where_ansible_can_come_back(
    status: dict[str, Any], context: tuple[str, bool, str, bool], expected: tuple[bool, bool, str]
) -> None:
    policy, installed, connection, check = context
    plan = F.nvidia_driver_reboot_plan(
        status, policy=policy, installed=installed, connection=connection, check_mode=check
    )
    assert (plan["reboot"], plan["required"]) == expected[:2]
    assert expected[2] in plan["why"]
