#!/usr/bin/env bash
# The whole test suite on a fresh Debian/Ubuntu machine (root): host setup, venv, lint, the wheel check, Python
# tests (client, CLI, test double; in random order, then file by file), end-to-end tests against a real local LLM
# (llama.cpp + Gemma 3 270M, built in the background meanwhile), the Molecule scenarios (found under molecule/,
# two at a time, in systemd containers reached over SSH), then the client benchmarks.
# Every stage runs even when an earlier one failed; the summary lists each with its time, and the exit code is
# non-zero if any failed. Slow artifacts are cached: podman images (podman storage), the llama.cpp wheel and the
# Gemma GGUF (${XDG_CACHE_HOME:-~/.cache}/cortex-ci).
set -uo pipefail
cd "$(dirname "$0")/.."
# Python caches bytecode here even where the environment says not to (some CI images set PYTHONDONTWRITEBYTECODE):
# the venv is installed without byte-compiling (setup_venv), so without the cache every ansible-playbook, molecule
# and pytest process compiles its modules again (`ansible-playbook --version`: 1.1 CPU-seconds against 0.4).
unset PYTHONDONTWRITEBYTECODE

# The CPU-seconds this machine has worked so far (user, nice, system, interrupts; not the hypervisor's steal), all
# cores, every process (containers and background jobs included): on two cores the run is mostly CPU-bound, so
# these show what a change saves where wall times follow the machine's load.
busy_seconds() { awk -v hz="$(getconf CLK_TCK)" '$1 == "cpu" {print int(($2 + $3 + $4 + $7 + $8) / hz)}' /proc/stat; }
failed=()
summary=()
busy_at_start=$(busy_seconds)

stage() { # stage NAME COMMAND...
  local name=$1 start=$SECONDS busy rc
  busy=$(busy_seconds)
  shift
  printf '\n===== %s\n' "$name"
  "$@"
  rc=$?
  summary+=("$(printf '%-28s %5ss %6s CPU-s  %s' "$name" $((SECONDS - start)) $(($(busy_seconds) - busy)) \
    "$([[ $rc == 0 ]] && echo ok || echo "FAILED (rc=$rc)")")")
  ((rc == 0)) || failed+=("$name")
  return "$rc"
}

# --no-compile: byte-compiling every installed file (the `ansible` package alone brings 15,000 modules of
# collections, of which the tests load a few dozen) was 45 of pip's 75 CPU-seconds; Python compiles and caches
# what is imported on first use.
setup_venv() {
  [[ -x .venv/bin/python ]] || python3 -m venv .venv || return
  .venv/bin/python -m pip install -q -U pip &&
    .venv/bin/python -m pip install -q --no-compile -e . --group dev
}

# mypy (half a minute on a cold cache, one core) runs beside ansible-lint (a minute, its own syntax-check processes).
lint() {
  local rc=0 mypy_pid
  mkdir -p .cache
  .venv/bin/mypy >.cache/mypy.log 2>&1 &
  mypy_pid=$!
  .venv/bin/python -m tests.harness.check_role_docs || rc=1
  .venv/bin/yamllint --strict . || rc=1
  .venv/bin/ansible-lint --offline || rc=1
  .venv/bin/ruff check . || rc=1
  .venv/bin/ruff format --check . || rc=1
  wait "$mypy_pid" || rc=1
  cat .cache/mypy.log
  return "$rc"
}

# Benchmarks print ratios measured side by side; on a shared CI machine they inform, they do not gate.
client_bench() {
  .venv/bin/python -m tests.bench.client_bench || echo "client benchmark: a target was missed in this run (informational)"
}

# The roles support the oldest ansible-core pyproject's `provision` group allows (meta/main.yml says so too), and
# it differs where it matters (e.g. it doubles backslashes inside {{ }}, where 2.19 keeps them): these scenarios
# run on that release instead of the venv's newest. Together they run all four roles through the site playbook
# (cortex_env) and role ollama's install, upgrade and rollback paths (ollama_upgrade); every other scenario keeps
# the newest. Loaded like the oldest SDK pins below: a --target directory put first on PYTHONPATH.
OLDEST_ANSIBLE_SCENARIOS=(cortex_env ollama_upgrade)
oldest_ansible() {
  local target=.cache/oldest-ansible pin
  # ansible-core>=2.18,<2.20 -> ansible-core~=2.18.0 (the floor's newest patch release); no floor stops here.
  pin=$(.venv/bin/python -c 'import re, tomllib; deps = tomllib.load(open("pyproject.toml", "rb"))["dependency-groups"]["provision"]; print("ansible-core~=%s.0" % next(re.match(r"ansible-core>=([0-9]+[.][0-9]+)", d)[1] for d in deps if d.startswith("ansible-core")))') || return 1
  if [ "$(cat "$target/.pin" 2>/dev/null)" != "$pin" ]; then
    rm -rf "$target"
    .venv/bin/pip install -q --no-deps --target "$target" "$pin" && echo "$pin" >"$target/.pin" || return 1
  fi
  PYTHONPATH=$target .venv/bin/ansible-playbook --version | head -1 | grep -o 'core [0-9.]*' | cut -d' ' -f2 >"$target/.version"
  echo "oldest ansible-core: $pin -> $(<"$target/.version") for ${OLDEST_ANSIBLE_SCENARIOS[*]}"
}

# Every folder molecule/<scenario>/ with a molecule.yml is a scenario (.config/molecule/config.yml is their base).
# They run side by side, JOBS at a time (most of their time is waiting on the test hosts), longest first, so the
# slowest scenario never starts last: by this machine's last successful run (.cache/molecule/<scenario>.seconds),
# else by the build machine's (tests/harness/scenario_seconds: a fresh CI machine has no cache), else 150 s per host;
# each one's output is shown when it ends.
molecule_scenarios() {
  local jobs=${MOLECULE_JOBS:-2} rc=0 scenario name pid known note
  local -a order=() running=() runner=()
  local -A pids=()
  order=($(for f in molecule/*/molecule.yml; do
    name=$(basename "$(dirname "$f")")
    known=$(awk -v n="$name" '$1 == n {print $2}' tests/harness/scenario_seconds)
    if [[ -s .cache/molecule/$name.seconds ]]; then
      printf '%s %s\n' "$(<".cache/molecule/$name.seconds")" "$name"
    elif [[ -n $known ]]; then
      printf '%s %s\n' "$known" "$name"
    else # hosts: its own platforms, or the base's four
      grep -q '^platforms:' "$f" || f=.config/molecule/config.yml
      printf '%s %s\n' "$(($(grep -c 'distro:' "$f") * 150))" "$name"
    fi
  done | sort -k1,1nr -k2 | awk '{print $2}'))
  mkdir -p .cache/molecule
  for scenario in "${order[@]}"; do
    while ((${#pids[@]} >= jobs)); do sleep 2; reap; done
    runner=(.venv/bin/molecule) note=""
    if [[ " ${OLDEST_ANSIBLE_SCENARIOS[*]} " == *" $scenario "* ]]; then
      # Absolute: Molecule runs ansible-playbook from the scenario's directory, where a relative path finds nothing
      # and the newest ansible-core would run instead, silently.
      runner=(env PYTHONPATH="$PWD/.cache/oldest-ansible" .venv/bin/molecule) note=", ansible-core $(<.cache/oldest-ansible/.version)"
    fi
    printf -- '----- molecule test -s %s%s (started at %ss)\n' "$scenario" "$note" "$SECONDS"
    "${runner[@]}" test -s "$scenario" >".cache/molecule/$scenario.log" 2>&1 &
    pids[$scenario]=$!
    starts[$scenario]=$SECONDS
  done
  while ((${#pids[@]})); do sleep 2; reap; done
  return "$rc"
}
declare -A starts=()
reap() { # show and forget every finished scenario; a failed one sets rc in molecule_scenarios
  local scenario status ver
  for scenario in "${!pids[@]}"; do
    kill -0 "${pids[$scenario]}" 2>/dev/null && continue
    wait "${pids[$scenario]}"
    status=$?
    ver=$(<.cache/oldest-ansible/.version)
    if ((status == 0)) && [[ " ${OLDEST_ANSIBLE_SCENARIOS[*]} " == *" $scenario "* ]] &&
      ! grep -qE "converge on ansible-core ${ver//./\\.}([^0-9.]|\$)" ".cache/molecule/$scenario.log"; then
      echo "molecule $scenario: its converge did not run on ansible-core $ver" \
        >>".cache/molecule/$scenario.log"
      status=1
    fi
    printf '\n----- molecule test -s %s: %s in %ss\n' "$scenario" "$([[ $status == 0 ]] && echo ok || echo "FAILED (rc=$status)")" \
      $((SECONDS - starts[$scenario]))
    if ((status)); then
      cat ".cache/molecule/$scenario.log"
      rc=1
      summary+=("  molecule $scenario FAILED")
    else
      tail -n 25 ".cache/molecule/$scenario.log"
      echo $((SECONDS - starts[$scenario])) >".cache/molecule/$scenario.seconds"
    fi
    summary+=("$(printf '  molecule %-22s %5ss' "$scenario" $((SECONDS - starts[$scenario])))")
    unset "pids[$scenario]"
  done
}

# The oldest cloud SDKs pyproject's `cloud` extra allows (anthropic 0.x sends x-api-key, openai 1.x uses httpx
# rather than httpx2), installed into .cache/oldest-sdks for PYTHONPATH: what a user with an older pinned SDK runs.
oldest_sdks() {
  local target=.cache/oldest-sdks pins
  pins=$(.venv/bin/python -c 'import tomllib; print(*(d.replace(">=", "==") for d in tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["cloud"]))')
  if [ "$(cat "$target/.pins" 2>/dev/null)" != "$pins" ]; then
    rm -rf "$target"
    # shellcheck disable=SC2086 # one argument per pin
    .venv/bin/pip install -q --no-deps --target "$target" $pins && echo "$pins" >"$target/.pins" || return 1
  fi
  echo "oldest SDK pins: $pins -> imported: $(PYTHONPATH=$target .venv/bin/python -c 'import anthropic, openai; print("anthropic", anthropic.__version__, "openai", openai.__version__)')"
}

# Each test file alone (no hidden dependence on another file's fixtures or order), four files side by side (most of
# their time is spent waiting on loopback servers and deadlines), with the oldest SDK pins: the client and CLI
# suites on those SDKs once, file by file. Then the whole suite in random order with the newest SDKs and a printed
# seed (rerun a failure with: pytest -p random_order --random-order-seed=SEED).
pytest_isolated() {
  local rc=0 log log_name logs=.cache/pytest-alone
  oldest_sdks || return 1
  rm -rf "$logs" && mkdir -p "$logs"
  find tests -name 'test_*.py' -not -path 'tests/e2e/*' | sort | PYTHONPATH=.cache/oldest-sdks xargs -P "${PYTEST_JOBS:-4}" -I{} sh -c \
    'log="$2/$1.log"; mkdir -p "${log%/*}"; "$0" -q -p no:cacheprovider "$1" >"$log" 2>&1 || mv "$log" "$log.failed"' \
    .venv/bin/pytest {} "$logs"
  for log in $(find "$logs" -name '*.failed' | sort); do
    rc=1
    log_name=${log#"$logs"/}
    echo "FAILED alone: ${log_name%.log.failed}"
    cat "$log"
  done
  ((rc)) || echo "every test file passed alone ($(find "$logs" -name '*.log' | wc -l) files)"
  return "$rc"
}
pytest_random() {
  local seed=${PYTEST_SEED:-$RANDOM}
  echo "random order, seed $seed"
  .venv/bin/pytest -q -p no:cacheprovider --random-order-seed="$seed" --ignore=tests/e2e
}

stage "host (podman, packages)" tests/harness/prepare_host.sh || exit 1

# Two slow builds run in the background from here, their output shown when waited for:
# - the systemd images (mmdebstrap), needed first, by Molecule;
# - the llama.cpp wheel (about 4 CPU-minutes): two compile jobs at the lowest priority, started before the venv.
#   The e2e tests that need it run before the scenarios, so the compile is done when they start and their times
#   stay comparable between runs (beside it the first two took about 150 s longer). The run is no shorter for it:
#   the machine is saturated either way (docs/benchmarks.md, cold runs without images).
mkdir -p .cache
declare -A background_pids
background() { # background NAME COMMAND...: start it, its output in .cache/NAME.log
  local name=$1
  shift
  (
    TIMEFORMAT="$name: %0R s, its own CPU %0U s user + %0S s system"
    time "$@"
  ) >".cache/$name.log" 2>&1 &
  background_pids[$name]=$!
}
await() { # await NAME: wait for a background job, show its output, return its status
  local rc
  wait "${background_pids[$1]}"
  rc=$?
  cat ".cache/$1.log"
  return "$rc"
}
background images tests/harness/build_images.sh
background llama_wheel env CMAKE_BUILD_PARALLEL_LEVEL=2 nice -n 19 tests/harness/install_llama_cpp.sh --wheel-only
llama() { await llama_wheel && tests/harness/install_llama_cpp.sh; }

stage "venv (.venv, group dev)" setup_venv || exit 1
export PATH="$PWD/.venv/bin:$PATH"

stage "test-double releases" .venv/bin/python -m tests.harness.build_double_releases \
  --out .cache/double-releases --registry .cache/double-registry
stage "lint" lint
stage "wheel (fresh venv, wheel only)" tests/harness/check_wheel.sh
stage "pytest (random order)" pytest_random
stage "pytest (each file alone)" pytest_isolated
stage "oldest ansible-core" oldest_ansible
stage "llama.cpp + Gemma GGUF" llama
stage "pytest e2e (real LLM)" .venv/bin/pytest -q tests/e2e
stage "cortex's own tests" tests/harness/cortex_upstream_tests.sh
stage "systemd base images" await images
stage "molecule (side by side)" molecule_scenarios
# Last, on a quiet machine: the benchmark compares timings.
stage "client benchmarks" client_bench

printf '\n===== summary\n'
printf '%s\n' "${summary[@]}"
printf '%-28s %5ss %6s CPU-s\n' total "$SECONDS" $(($(busy_seconds) - busy_at_start))
if ((${#failed[@]})); then
  printf 'FAILED: %s\n' "${failed[*]}"
  exit 1
fi
echo "all stages passed"
