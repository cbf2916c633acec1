#!/usr/bin/env bash
# Prepare this machine to run systemd containers with podman. Idempotent; needs root.
set -euo pipefail

packages=(podman runc mmdebstrap distro-info-data zstd gnupg)
missing=()
for p in "${packages[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
if ((${#missing[@]})); then
  echo "prepare_host: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# crun fails on hybrid cgroups here, and podman's default ulimits exceed the host's hard limits.
conf=/etc/containers/containers.conf
want='[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[engine]
runtime = "runc"'
if [[ "$(cat "$conf" 2>/dev/null)" != "$want" ]]; then
  mkdir -p /etc/containers
  [[ -f "$conf" ]] && cp -n "$conf" "$conf.orig"
  printf '%s\n' "$want" >"$conf"
  echo "prepare_host: wrote $conf"
fi
podman info --format '{{.Host.OCIRuntime.Name}}' >/dev/null
