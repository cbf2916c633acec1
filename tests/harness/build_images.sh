#!/usr/bin/env bash
# Build (once) minimal systemd base images for the test hosts: localhost/cortex-systemd:<suite>.
# No registry is reachable, so images are bootstrapped and `podman import`ed, with mmdebstrap rather
# than debootstrap: apt resolves and downloads, so an image costs half the CPU (bookworm: 43 CPU-seconds against 81),
# and the image gets the suite's updates and security fixes, as a real host has. Each suite's archive is the tool's
# own default for that suite. sshd is in the image: the harness reaches hosts over SSH with pipelining, as fleets
# are reached (tests/support/hosts.py). An image is rebuilt when this recipe changes (label cortex.recipe).
# Usage: build_images.sh [suite ...]   (default: bookworm trixie jammy noble)
set -euo pipefail
cd "$(dirname "$0")"

suites=("$@")
((${#suites[@]})) || suites=(bookworm trixie jammy noble)
# apt named too: mmdebstrap's minbase has it only where it is Priority: required (Debian, not Ubuntu).
include=apt,systemd,systemd-sysv,python3,ca-certificates,iproute2,procps,sudo,openssh-server
recipe=$(sha256sum build_images.sh | cut -c1-12)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for suite in "${suites[@]}"; do
  image="localhost/cortex-systemd:$suite"
  if [[ "$(podman image inspect --format '{{index .Labels "cortex.recipe"}}' "$image" 2>/dev/null)" == "$recipe" ]]; then
    echo "build_images: $image cached"
    continue
  fi
  case "$suite" in
    jammy | noble)
      # Debian has no Ubuntu archive keyring: apt may fetch unverified while bootstrapping only. The image keeps
      # Ubuntu's own keyring (installed with it) and none of these options, so apt verifies inside it.
      extra=(--aptopt='Acquire::AllowInsecureRepositories "true"' --aptopt='APT::Get::AllowUnauthenticated "true"'
        --customize-hook='rm "$1/etc/apt/apt.conf.d/99mmdebstrap"')
      ;;
    bookworm | trixie) extra=() ;;
    *) echo "build_images: unknown suite $suite" >&2; exit 2 ;;
  esac
  echo "build_images: mmdebstrap $suite (under a minute)"
  start=$SECONDS
  # A tar cut short still imports: a failed build removes what it tagged, or the next run would take it as cached.
  mmdebstrap --variant=minbase --include="$include" "${extra[@]}" "$suite" - 2>"$work/$suite.log" |
    podman import --change 'CMD ["/sbin/init"]' --change "LABEL cortex.recipe=$recipe" - "$image" >/dev/null ||
    { podman rmi -f "$image" >/dev/null 2>&1; tail -20 "$work/$suite.log" >&2; exit 1; }
  echo "build_images: built $image in $((SECONDS - start)) s"
done
