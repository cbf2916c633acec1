#!/usr/bin/env bash
# The distribution works on its own, as `pip install cortexlinux-router` gets it: build the sdist and the wheel,
# check the sdist carries every module of the package, install the wheel alone into a fresh venv (its
# dependencies from the index, nothing from this checkout), import it from outside the checkout, run the CLI,
# and check `__all__` against what the package exports.
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

.venv/bin/python -m build --outdir "$work/dist" . >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
sdist=("$work"/dist/*.tar.gz)
wheel=("$work"/dist/*.whl)
echo "built ${sdist[0]##*/} ${wheel[0]##*/}"

missing=0
in_sdist=$(tar -tzf "${sdist[0]}")
in_wheel=$(python3 -m zipfile -l "${wheel[0]}")
for module in $(git ls-files 'cortex_client/*.py' 'cortex_client/py.typed'); do
  grep -q "/$module\$" <<<"$in_sdist" || { echo "sdist lacks $module"; missing=1; }
  grep -q "^$module " <<<"$in_wheel" || { echo "wheel lacks $module"; missing=1; }
done
((missing == 0)) || exit 1

python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q "${wheel[0]}" >"$work/pip.log" 2>&1 || { cat "$work/pip.log"; exit 1; }
cd "$work" # outside the checkout: only the installed wheel can be imported
"$work/venv/bin/cortex-llm" --version
"$work/venv/bin/python" - <<'PY'
import inspect
import sys

import cortex_client

assert "/site-packages/" in cortex_client.__file__, cortex_client.__file__
exported = set(cortex_client.__all__)
missing = sorted(name for name in exported if not hasattr(cortex_client, name))
public = {
    name
    for name, value in vars(cortex_client).items()
    if not name.startswith("_") and (inspect.isclass(value) or inspect.isfunction(value))
}
unlisted = sorted(public - exported)
assert not missing, f"__all__ names what the package lacks: {missing}"
assert not unlisted, f"exported but not in __all__: {unlisted}"
assert "RoutingDecision" in exported
heavy = [m for m in ("openai", "anthropic") if m in sys.modules]
assert not heavy, f"import cortex_client loaded {heavy}"
print(f"wheel ok: {len(exported)} names in __all__, all present; {cortex_client.__file__}")
PY
