#!/usr/bin/env bash
# ansible-core (2.19 for Python >= 3.11, 2.17 for 3.10) and its dependencies as wheels in build/gpu/wheels, for
# tests/gpu/run_on_gpu.sh on a machine without a package index. Unpacked onto PYTHONPATH there: the compiled
# speed-ups of PyYAML and MarkupSafe are optional, so one set serves any Python version.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p build/gpu/wheels
for spec in ansible-core==2.19.14 ansible-core==2.17.14 jinja2 markupsafe pyyaml resolvelib==1.0.1 packaging; do
  .venv/bin/python -m pip download -q --no-deps --only-binary=:all: -d build/gpu/wheels "$spec"
done
