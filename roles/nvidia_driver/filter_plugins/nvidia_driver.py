"""Filters of role nvidia_driver: they read what the host reported (PCI devices from sysfs, nvidia-smi, the kernel
module's version, Ollama's start-up log) and say what it means. Pure functions, so they are tested on recorded
outputs (tests/test_nvidia_driver_filters.py) and run unchanged on a real GPU host."""

from __future__ import annotations

import re
from typing import Any

NVIDIA_VENDOR = "0x10de"
# PCI base class 0x03: display controllers (VGA 0x0300, 3D/compute 0x0302). NVIDIA audio and USB functions of
# the same card are other classes and are not GPUs.
DISPLAY_CLASS = "0x03"

VERSION = re.compile(r"\b(\d{3})\.(\d+)(?:\.(\d+))?\b")
MISMATCH = "Driver/library version mismatch"
NO_DRIVER = "couldn't communicate with the NVIDIA driver"


def nvidia_driver_gpus(lines: list[str]) -> list[dict[str, str]]:
    """NVIDIA GPUs among `pci=<address> <vendor> <device> <class> <driver>` lines (the role's sysfs probe)."""
    gpus = []
    for line in lines:
        if not line.startswith("pci="):
            continue
        fields = line[len("pci=") :].split()
        if len(fields) != 5:
            continue
        address, vendor, device, pci_class, driver = fields
        if vendor.lower() == NVIDIA_VENDOR and pci_class.lower().startswith(DISPLAY_CLASS):
            gpus.append({"address": address, "device": device.lower(), "class": pci_class, "driver": driver})
    return gpus


def _version(text: str) -> str:
    m = VERSION.search(text)
    return m.group(0) if m else ""


def nvidia_driver_status(smi: dict[str, Any], module_version_line: str, branch: str) -> dict[str, Any]:
    """What nvidia-smi and /proc/driver/nvidia/version say about the installed driver.

    `smi` is a registered command result (rc, stdout, stderr) of
    `nvidia-smi --query-gpu=driver_version,name --format=csv,noheader`, or one with rc 127 if it is missing.
    Returns state (ok | wrong_branch | reboot_required | no_devices | not_installed | failed), the versions seen,
    whether a reboot would fix it, and one sentence for the operator.
    """
    rc = int(smi.get("rc", 127))
    out = (smi.get("stdout") or "").strip()
    err = (smi.get("stderr") or "").strip()
    text = f"{out}\n{err}"
    module = _version(module_version_line)
    rows = [line.split(",", 1) for line in out.splitlines() if line.strip()]
    driver = rows[0][0].strip() if rc == 0 and rows else ""
    result: dict[str, Any] = {
        "driver_version": driver,
        "module_version": module,
        "gpus": [row[1].strip() for row in rows if rc == 0 and len(row) == 2],
        "reboot_required": False,
    }

    if rc == 127:
        return {**result, "state": "not_installed", "message": "nvidia-smi is not installed"}
    if MISMATCH in text:
        library = re.search(r"NVML library version:\s*([\d.]+)", text)
        detail = f" (kernel module {module or 'unknown'}, NVML {library.group(1) if library else 'unknown'})"
        return {
            **result,
            "state": "reboot_required",
            "reboot_required": True,
            "message": "reboot required: the loaded kernel module is older than the driver's libraries" + detail,
        }
    if NO_DRIVER in text:
        return {
            **result,
            "state": "reboot_required",
            "reboot_required": True,
            "message": "reboot required: the NVIDIA kernel module is not loaded",
        }
    if rc == 6 or "No devices were found" in text:
        return {**result, "state": "no_devices", "message": "the driver is loaded but sees no GPU"}
    if rc != 0 or not VERSION.fullmatch(driver):
        first = (err or out).splitlines()[0] if (err or out) else f"exit code {rc}"
        return {**result, "state": "failed", "message": f"nvidia-smi failed: {first}"}
    if module and module != driver:
        return {
            **result,
            "state": "reboot_required",
            "reboot_required": True,
            "message": f"reboot required: kernel module {module} is loaded, the driver is {driver}",
        }
    if driver.split(".")[0] != str(branch):
        return {
            **result,
            "state": "wrong_branch",
            "message": f"driver {driver} is running, not branch {branch}",
        }
    return {**result, "state": "ok", "message": f"driver {driver} (branch {branch}) on {len(result['gpus'])} GPU(s)"}


INFERENCE_COMPUTE = re.compile(r'msg="inference compute"(.*)$')
FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')


def nvidia_driver_ollama_compute(log: str) -> dict[str, Any]:
    """Which compute Ollama found at its latest start, from its log (journal, message text only).

    Only lines after the last `Listening on` count: an earlier start's discovery says nothing about this one.
    Returns backend (cuda | rocm | cpu | other | unknown: not logged yet), the devices' descriptions and the lines.
    """
    lines = log.splitlines()
    starts = [i for i, line in enumerate(lines) if 'msg="Listening on' in line]
    if starts:
        lines = lines[starts[-1] :]
    devices = []
    for line in lines:
        m = INFERENCE_COMPUTE.search(line)
        if m:
            fields = {k: v.strip('"') for k, v in FIELD.findall(m.group(1))}
            devices.append({**fields, "line": line.strip()})
    libraries = {d.get("library", "").lower() for d in devices}
    if not devices:
        backend = "unknown"
    elif "cuda" in libraries:
        backend = "cuda"
    elif "rocm" in libraries:
        backend = "rocm"
    elif libraries == {"cpu"}:
        backend = "cpu"
    else:
        backend = "other"
    names = [d.get("description") or d.get("name", "") for d in devices if d.get("library", "").lower() != "cpu"]
    return {"backend": backend, "devices": names, "lines": [d["line"] for d in devices]}


def nvidia_driver_reboot_plan(
    status: dict[str, Any], *, policy: str, installed: bool, connection: str, check_mode: bool
) -> dict[str, Any]:
    """Whether to reboot now, and if a reboot is needed but not done here, why (for the REBOOT REQUIRED line).

    A reboot is wanted when only a reboot makes the driver usable (policy if_needed) or after an install (always).
    It never happens in check mode, and never on a local connection: that would reboot the controller in the middle
    of the run (Ansible's reboot refuses it), so the run finishes and says so instead.
    """
    needed = bool(status.get("reboot_required"))
    wanted = (policy == "if_needed" and needed) or (policy == "always" and (installed or needed))
    if check_mode:
        return {"reboot": False, "required": needed, "why": "check mode changes nothing"}
    if wanted and connection == "local":
        return {
            "reboot": False,
            "required": True,
            "why": "this host is the one Ansible runs on (local connection), which it cannot reboot mid-run: "
            "reboot it yourself",
        }
    if needed and not wanted:
        return {"reboot": False, "required": True, "why": f"nvidia_driver_reboot is {policy}: reboot it yourself"}
    return {"reboot": wanted, "required": False, "why": ""}


def nvidia_driver_kernel_flavour(kernel: str) -> str:
    """A kernel release's flavour, what its meta packages are named after: 6.8.0-45-generic -> generic,
    6.1.0-26-cloud-amd64 -> cloud-amd64, 6.12.38+deb13-amd64 -> amd64."""
    return re.sub(r"^[0-9][^-]*-([0-9]+-)?", "", kernel)


def nvidia_driver_package_plan(
    base: list[str],
    *,
    kernel: str,
    package_key: str,
    available: list[str],
    ubuntu_prebuilt: str,
    ubuntu_dkms: str,
) -> dict[str, Any]:
    """What to install and what to hold, so that a kernel update keeps the GPU.

    `available`: which of the candidate kernel packages apt knows (Ubuntu's signed prebuilt modules for the kernel
    and their meta package, the headers meta package of the kernel's flavour). Held is the userspace only (and
    Ubuntu's DKMS source, which must match it): a userspace upgrade under a loaded module breaks NVML until a
    reboot. What follows the kernel is never held: Ubuntu's modules meta package (it brings the modules for each new
    kernel) and the headers (the flavour's meta package brings them for each new kernel, so DKMS can build there).
    """
    flavour = nvidia_driver_kernel_flavour(kernel)
    per_kernel = f"{ubuntu_prebuilt}-{kernel}"
    if package_key == "ubuntu_distribution" and per_kernel in available:
        meta = [f"{ubuntu_prebuilt}-{flavour}"] if f"{ubuntu_prebuilt}-{flavour}" in available else []
        return {"modules": "prebuilt", "install": [*base, per_kernel, *meta], "hold": list(base)}
    dkms = [ubuntu_dkms] if package_key == "ubuntu_distribution" else []
    headers_meta = [f"linux-headers-{flavour}"] if f"linux-headers-{flavour}" in available else []
    return {
        "modules": "dkms",
        "install": [*base, *dkms, f"linux-headers-{kernel}", *headers_meta],
        "hold": [*base, *dkms],
    }


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "nvidia_driver_gpus": nvidia_driver_gpus,
            "nvidia_driver_kernel_flavour": nvidia_driver_kernel_flavour,
            "nvidia_driver_package_plan": nvidia_driver_package_plan,
            "nvidia_driver_reboot_plan": nvidia_driver_reboot_plan,
            "nvidia_driver_status": nvidia_driver_status,
            "nvidia_driver_ollama_compute": nvidia_driver_ollama_compute,
        }
