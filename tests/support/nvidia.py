"""What role nvidia_driver writes on a host, for the scenarios that check it was (or was not) written."""

from __future__ import annotations

from tests.support.instances import Instance

SOURCE = "/etc/apt/sources.list.d/cortex-nvidia-driver.sources"
BLACKLIST = "/etc/modprobe.d/cortex-nvidia-blacklist-nouveau.conf"
OPTIONS = "/etc/modprobe.d/cortex-nvidia.conf"
MODULES_LOAD = "/etc/modules-load.d/cortex-nvidia.conf"
UNATTENDED = "/etc/apt/apt.conf.d/51cortex-nvidia-driver"
NODES_UNIT = "/etc/systemd/system/nvidia-device-nodes.service"
LOCAL_REPO = "/var/lib/cortex-nvidia-driver/repo"
ROLE_FILES = [SOURCE, BLACKLIST, OPTIONS, MODULES_LOAD, UNATTENDED, NODES_UNIT, LOCAL_REPO]

# Everything the role could touch: files (path, type, mode, owner, size, mtime), the package database and holds.
_SNAPSHOT = r"""
for p in /etc/apt /etc/modprobe.d /etc/modules-load.d /etc/systemd/system /var/lib/cortex-nvidia-driver; do
  if [ -e "$p" ]; then find "$p" -xdev -printf '%p %y %m %u:%g %s %T@ %l\n'; else echo "absent $p"; fi
done | sort
sha256sum /var/lib/dpkg/status
apt-mark showhold
ls -d /tmp/cortex-nvidia-driver-check.* 2>/dev/null || true
"""


def snapshot(host: Instance) -> str:
    return host.sh(_SNAPSHOT)
