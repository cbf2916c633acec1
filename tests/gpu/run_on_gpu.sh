#!/usr/bin/env bash
# Role nvidia_driver on a real GPU: the device machine some sessions are lent (the `run` tool). Records what the
# host has, runs the role's probe and filters on it, runs the role's verify path with ansible-playbook, and makes
# /dev/nvidia-uvm the way nvidia-device-nodes.service does. Writes everything under $OUT.
# Needs build/gpu/wheels: ansible-core and its pure-Python dependencies (tests/gpu/fetch_wheels.sh); the device
# machine reaches no package index.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp/gpu-out}
mkdir -p "$out"

echo "== survey"
{
  uname -a; cat /etc/os-release; id; python3 --version
  echo "systemd: $(systemctl is-system-running 2>&1)"
  echo "--- nvidia-smi"; nvidia-smi 2>&1
  echo "--- /proc/driver/nvidia/version"; cat /proc/driver/nvidia/version 2>&1
  echo "--- /dev/nvidia*"; ls -l /dev/nvidia* 2>&1
  echo "--- modules"; grep -E '^(nvidia|nouveau)' /proc/modules 2>&1
  echo "--- nvidia-modprobe"; command -v nvidia-modprobe; ls -l "$(command -v nvidia-modprobe 2>/dev/null)" 2>&1
  echo "--- mokutil"; mokutil --sb-state 2>&1
  echo "--- dpkg"; dpkg-query -W 2>/dev/null | grep -Ei 'nvidia|cuda' | head -40
} >"$out/survey.txt" 2>&1
cat "$out/survey.txt"

echo "== the recording for tests/data/nvidia"
smi=$(nvidia-smi --query-gpu=driver_version,name --format=csv,noheader 2>&1); rc=$?
driver=$(printf '%s\n' "$smi" | head -n 1 | cut -d, -f1)
{
  echo "# rc=$rc branch=${driver%%.*} expect=ok"
  echo "# module: $(head -n 1 /proc/driver/nvidia/version 2>/dev/null)"
  printf '%s\n' "$smi"
} | tee "$out/real-host.smi"

echo "== ansible-core from wheels"
lib=/tmp/gpu-ansible
minor=$(python3 -c 'import sys; print(sys.version_info[1])')
core=2.19.14; ((minor >= 11)) || core=2.17.14
rm -rf "$lib" && mkdir -p "$lib"
for w in build/gpu/wheels/*.whl; do
  case "$w" in *ansible_core-*) [[ "$w" == *"$core"* ]] || continue ;; esac
  python3 -m zipfile -e "$w" "$lib"
done
export PYTHONPATH=$lib LANG=C.UTF-8 LC_ALL=C.UTF-8 ANSIBLE_ROLES_PATH=$PWD/roles ANSIBLE_ACTION_PLUGINS=$PWD/plugins/action ANSIBLE_LOCAL_TEMP=/tmp/gpu-ansible-tmp

echo "== the role's probe and filters, straight from Python"
python3 - "$out" <<'PY' 2>&1 | tee "$out/filters.json"
import json, subprocess, sys, importlib.util, yaml
probe = yaml.safe_load(open("roles/nvidia_driver/tasks/facts.yml"))[0]["ansible.builtin.shell"]["cmd"]
lines = subprocess.run(["bash", "-c", probe], capture_output=True, text=True).stdout.splitlines()
spec = importlib.util.spec_from_file_location("f", "roles/nvidia_driver/filter_plugins/nvidia_driver.py")
f = importlib.util.module_from_spec(spec); spec.loader.exec_module(f)
smi = subprocess.run(["nvidia-smi", "--query-gpu=driver_version,name", "--format=csv,noheader"], capture_output=True, text=True)
module = open("/proc/driver/nvidia/version").readline().strip()
branch = smi.stdout.split(".")[0]
print(json.dumps({"probe": [l for l in lines if not l.startswith("held=")], "gpus": f.nvidia_driver_gpus(lines),
                  "status": f.nvidia_driver_status(vars(smi) | {"rc": smi.returncode}, module, branch),
                  "status_if_branch_580": f.nvidia_driver_status(vars(smi) | {"rc": smi.returncode}, module, "580")},
                 indent=1, default=str))
PY

echo "== the role's verify path (ansible-playbook --tags nvidia_driver_verify)"
python3 -m ansible.cli.playbook -i localhost, tests/gpu/verify.yml --tags nvidia_driver_verify \
  -e "gpu_branch=${driver%%.*}" -e "gpu_out=$out" -e "ansible_python_interpreter=$(python3 -c 'import sys; print(sys.executable)')" 2>&1 | tee "$out/role-verify.log" | tail -n 60

echo "== nvidia-device-nodes.service's command"
if [[ $(id -u) == 0 ]] && command -v nvidia-modprobe >/dev/null; then
  nvidia-modprobe -u -c 0; echo "rc=$?"; ls -l /dev/nvidia-uvm* 2>&1
fi | tee "$out/device-nodes.txt"
