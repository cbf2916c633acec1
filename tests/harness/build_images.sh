#!/usr/bin/env bash
# Build (once) minimal systemd base images for the test hosts: localhost/cortex-systemd:<suite>.
# No registry is reachable, so images are made with debootstrap and `podman import` (DESIGN.md §4).
# sshd is in the image: the harness reaches hosts over SSH with pipelining, as fleets are reached
# (tests/support/hosts.py). An image is rebuilt when this recipe changes (label cortex.recipe).
# Usage: build_images.sh [suite ...]   (default: bookworm trixie jammy noble)
set -euo pipefail
cd "$(dirname "$0")"

suites=("$@")
((${#suites[@]})) || suites=(bookworm trixie jammy noble)
include=systemd,systemd-sysv,python3,ca-certificates,iproute2,procps,sudo,openssh-server
recipe=$(sha256sum build_images.sh | cut -c1-12)

scripts_dir=/usr/share/debootstrap
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for suite in "${suites[@]}"; do
  image="localhost/cortex-systemd:$suite"
  if [[ "$(podman image inspect --format '{{index .Labels "cortex.recipe"}}' "$image" 2>/dev/null)" == "$recipe" ]]; then
    echo "build_images: $image cached"
    continue
  fi
  extra=()
  case "$suite" in
    jammy | noble)
      # Debian has no Ubuntu archive keyring; without --no-check-gpg debootstrap silently uses Debian's mirror.
      extra+=(--no-check-gpg)
      if [[ ! -e "$scripts_dir/scripts/$suite" ]]; then
        # Debian 12's debootstrap lacks a noble script; all Ubuntu suites share the gutsy one.
        cp -r /usr/share/debootstrap "$work/debootstrap"
        ln -s gutsy "$work/debootstrap/scripts/$suite"
        export DEBOOTSTRAP_DIR="$work/debootstrap"
      fi
      ;;
    bookworm | trixie) ;;
    *) echo "build_images: unknown suite $suite" >&2; exit 2 ;;
  esac
  echo "build_images: debootstrap $suite (about a minute)"
  start=$SECONDS
  root="$work/$suite"
  debootstrap --variant=minbase --include="$include" "${extra[@]}" "$suite" "$root" >"$work/$suite.log" 2>&1 \
    || { tail -20 "$work/$suite.log" >&2; exit 1; }
  unset DEBOOTSTRAP_DIR
  tar -C "$root" -c . | podman import --change 'CMD ["/sbin/init"]' --change "LABEL cortex.recipe=$recipe" - "$image" >/dev/null
  rm -rf "$root"
  echo "build_images: built $image in $((SECONDS - start)) s"
done
