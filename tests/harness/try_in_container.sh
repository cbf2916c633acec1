#!/usr/bin/env bash
# Try the site playbook without touching this machine: build a throwaway systemd container from the test image,
# and converge it with playbooks/ollama.yml as an air-gapped host: from a bundle (playbooks/airgap_bundle.yml)
# of the Ollama TEST DOUBLE's release archive, a model of the double's registry and the client's wheelhouse.
# It gets Ollama as a hardened service, the model, /etc/cortex/.env and the client with `cortex-llm doctor`.
# Re-running converges the same container again (no changes).
#
# Usage: tests/harness/try_in_container.sh [--distro bookworm|trixie|jammy|noble] [--version X.Y.Z]
#        tests/harness/try_in_container.sh --rm      # remove every container this script made
set -euo pipefail
cd "$(dirname "$0")/../.."

distro=bookworm
version=0.34.2
remove=false
while (($#)); do
  case "$1" in
    --distro) distro=${2:?--distro needs a value}; shift 2 ;;
    --version) version=${2:?--version needs a value}; shift 2 ;;
    --rm) remove=true; shift ;;
    -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    *) echo "try_in_container: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

label=cortex-try
if $remove; then
  names=$(podman ps -a --filter "name=^$label-" --format '{{.Names}}')
  for name in $names; do podman rm -f "$name" >/dev/null && echo "removed $name"; done
  [[ -n "$names" ]] || echo "no $label containers to remove"
  exit 0
fi

case "$distro" in
  bookworm | trixie | jammy | noble) ;;
  *) echo "try_in_container: --distro must be bookworm, trixie, jammy or noble (got $distro)" >&2; exit 2 ;;
esac
case "$(uname -m)" in
  x86_64) arch=amd64 ;;
  aarch64) arch=arm64 ;;
  *) echo "try_in_container: Ollama ships amd64 and arm64 only, this machine is $(uname -m)" >&2; exit 2 ;;
esac
bin=.venv/bin
[[ -x $bin/ansible-playbook ]] || {
  echo "try_in_container: no .venv: run tests/run_all.sh, or: python3 -m venv .venv &&" \
    ".venv/bin/pip install -U pip && .venv/bin/pip install -e . --group dev (--group needs pip 25.1)" >&2
  exit 2
}

tests/harness/build_images.sh "$distro"
$bin/python -m tests.harness.build_double_releases --out .cache/double-releases --versions "$version" --arch "$arch" \
  --registry .cache/double-registry >/dev/null

# The bundle, built as docs/airgap.md builds one, from the double: its archives (pinned by the double's own table
# in place of the role's pins of the real releases) and its registry as the connected machine's model store.
mkdir -p .cache/try
double=.cache/try/double-$version.json
$bin/python -m tests.harness.try_vars "$PWD" "$version" "$arch" >"$double"
bundle=$PWD/.cache/try/bundle-$version
echo "try_in_container: building the bundle $bundle (docs/airgap.md)"
$bin/ansible-playbook playbooks/airgap_bundle.yml -e airgap_bundle_dir="$bundle" -e @"$double" >.cache/try/bundle.log ||
  { tail -n 40 .cache/try/bundle.log; exit 1; }

# The harness's test host (tests/support/hosts.py): systemd container, reached over SSH like a fleet host.
# Re-running converges the running container again; a stopped one is replaced; --rm removes it.
name="$label-$distro"
inventory=.cache/try/$name.json
if [[ "$(podman inspect -f '{{.State.Running}}' "$name" 2>/dev/null)" != true || ! -f $inventory ]]; then
  printf '[{"name": "%s", "distro": "%s"}]' "$name" "$distro" | $bin/python -m tests.support.hosts start \
    | $bin/python -c 'import json, sys
from tests.support.hosts import Host
hosts = [Host(**h) for h in json.load(sys.stdin)]
json.dump({"all": {"hosts": {h.instance: h.inventory_vars() for h in hosts}}}, sys.stdout)' >"$inventory"
fi

# The host's variables as an air-gapped site has them (tests/harness/try_vars.py): an inventory, not -e, as an
# extra var would also redirect the role's controller-side (localhost) tasks.
$bin/python -m tests.harness.try_vars "$PWD" "$version" "$arch" --site "$bundle" --inventory "$inventory"
$bin/ansible-playbook -i "$inventory" playbooks/ollama.yml

cat <<EOF

Ollama $version (the project's TEST DOUBLE, not the real server) runs as a systemd service in $name, with the
model tinyllama-double, /etc/cortex/.env and the client in /opt/cortex/venv.
  look inside:  podman exec -it $name bash
  the service:  podman exec $name systemctl status ollama
  the models:   podman exec $name ollama list
  the client:   podman exec $name /opt/cortex/venv/bin/cortex-llm doctor
  the unit:     podman exec $name systemctl cat ollama
  remove it:    tests/harness/try_in_container.sh --rm
EOF
