#!/bin/sh
# Role nvidia_driver: does each given kernel have an nvidia module, and if not, make it have one.
#   kernel_modules.sh CHECK MODULES PREBUILT_PREFIX APT_OPTIONS KERNEL...
# CHECK: True reports only. MODULES: prebuilt (Ubuntu's signed linux-modules-nvidia-<flavour>-<kernel>, installed
# from the archive) or dkms (the kernel's headers installed, then dkms autoinstall for it).
# One line per kernel: "ok K", "repaired K", or "missing K: why" (the run goes on; the role reports it).
check=$1 modules=$2 prebuilt=$3 options=$4
shift 4
# dkms lives in /usr/sbin, which a non-login shell's PATH may lack.
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH

has_module() { [ -n "$(find "/lib/modules/$1" -name 'nvidia.ko*' -print -quit 2>/dev/null)" ]; }
known() { apt-cache show --no-all-versions "$1" >/dev/null 2>&1; }
# apt's output on stderr; another apt holding a lock makes the script exit 75 at the end, so the task retries.
locked=""
install() {
  out=$(DEBIAN_FRONTEND=noninteractive apt-get $options install --yes --no-install-recommends "$@" 2>&1) && return 0
  printf '%s\n' "$out" >&2
  case $out in *"Could not get lock"* | *"Unable to lock"* | *"Unable to acquire the dpkg frontend lock"*) locked=1 ;; esac
  return 1
}

for kernel in "$@"; do
  if has_module "$kernel"; then echo "ok $kernel"; continue; fi
  if [ "$check" = True ]; then echo "missing $kernel: no nvidia module (a real run builds or installs it)"; continue; fi
  why=""
  if [ "$modules" = prebuilt ]; then
    if known "$prebuilt-$kernel"; then install "$prebuilt-$kernel" || why="apt-get could not install $prebuilt-$kernel"
    else why="the archive has no $prebuilt-$kernel"; fi
  else
    if [ ! -e "/lib/modules/$kernel/build" ]; then
      if known "linux-headers-$kernel"; then install "linux-headers-$kernel" || why="apt-get could not install linux-headers-$kernel"
      else why="no headers for it (linux-headers-$kernel is in no source)"; fi
    fi
    if [ -z "$why" ]; then
      if command -v dkms >/dev/null 2>&1; then dkms autoinstall -k "$kernel" >&2 || why="dkms autoinstall -k $kernel failed"
      else why="dkms is not installed"; fi
    fi
  fi
  if has_module "$kernel"; then echo "repaired $kernel"; else echo "missing $kernel: ${why:-the module is still not there}"; fi
done
[ -z "$locked" ] || exit 75
