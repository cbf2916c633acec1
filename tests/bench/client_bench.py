#!/usr/bin/env python3
"""cortex_client benchmarks: each target is a ratio or a difference of two things measured side by side,
interleaved, in one run (so machine load hits both alike), reported as medians over adjacent pairs.

  import      `import cortex_client` vs a bare `python -c pass` (subprocesses); openai/anthropic not imported
  overhead    LLMRouter.complete vs the bare openai SDK, same loopback fake OpenAI server (overhead dominates)
  failover    answer time when the primary (Ollama) refuses the connection vs the secondary alone
  breaker     time per call while a dead provider's breaker is open vs a chain without that provider
  first call  a fresh process's first cloud call (SDK import, client built off the event loop) vs the same call
              warm, in the same process; and the longest event-loop stall during each

Usage: .venv/bin/python -m tests.bench.client_bench [--rounds N]   (exit status 1 if a target fails)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cortex_client import BreakerPolicy, LLMProvider, LLMRouter, Settings
from tests.support.fakes import FakeOpenAI, closed_port_url

MESSAGES = [{"role": "user", "content": "ping"}]
results: list[tuple[str, str, bool]] = []


def target(name: str, measured: str, ok: bool) -> None:
    results.append((name, measured, ok))
    print(f"{'PASS' if ok else 'FAIL'}  {name}: {measured}")


class Paired:
    """Timings of a() and b() taken in adjacent pairs. Statistics are medians over the pairs, so a load
    change on this shared machine hits both sides of a pair alike instead of skewing one side."""

    def __init__(self, a: Callable[[], object], b: Callable[[], object], rounds: int) -> None:
        self.a: list[float] = []
        self.b: list[float] = []
        for i in range(rounds):  # alternate which goes first so neither gets a warmer machine
            for fn, times in ((a, self.a), (b, self.b)) if i % 2 == 0 else ((b, self.b), (a, self.a)):
                start = time.perf_counter()
                fn()
                times.append(time.perf_counter() - start)

    def medians(self) -> tuple[float, float]:
        return statistics.median(self.a), statistics.median(self.b)

    def ratio(self) -> float:
        """Median over pairs of b/a."""
        return statistics.median(b / a for a, b in zip(self.a, self.b, strict=True))

    def added(self) -> float:
        """Median over pairs of b - a, in seconds."""
        return statistics.median(b - a for a, b in zip(self.a, self.b, strict=True))


def bench_import(rounds: int) -> None:
    def run(code: str) -> Callable[[], object]:
        return lambda: subprocess.run([sys.executable, "-c", code], check=True)

    runs = Paired(run("pass"), run("import cortex_client"), rounds)
    bare, imported = runs.medians()
    ratio = runs.ratio()
    target(
        "import cortex_client <= 5x bare interpreter start",
        f"{imported * 1000:.1f} ms vs {bare * 1000:.1f} ms = {ratio:.2f}x ({rounds} runs each, medians over pairs)",
        ratio <= 5.0,
    )
    probe = "import sys, cortex_client; print(*(m for m in ('openai', 'anthropic', 'httpx') if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout.split()
    target(
        "import cortex_client loads neither openai nor anthropic",
        f"heavy modules loaded: {loaded or 'none'}",
        not {"openai", "anthropic"} & set(loaded),
    )


def isolated_settings() -> Settings:
    empty = Path(tempfile.mkdtemp(prefix="cortex-bench-"))
    return Settings.load(environ={}, cwd=empty, home=empty, etc_dir=empty)


def router(
    settings: Settings, fake: FakeOpenAI, ollama_url: str, default: LLMProvider, breaker: BreakerPolicy | None = None
) -> LLMRouter:
    return LLMRouter(
        openai_api_key="sk-bench",
        openai_base_url=fake.url + "/v1",
        ollama_base_url=ollama_url,
        default_provider=default,
        settings=settings,
        breaker=breaker,
    )


def bench_overhead(settings: Settings, fake: FakeOpenAI, rounds: int) -> None:
    import openai

    sdk = openai.OpenAI(api_key="sk-bench", base_url=fake.url + "/v1", max_retries=0)
    r = router(settings, fake, closed_port_url(), LLMProvider.OPENAI)
    model = r.models[LLMProvider.OPENAI]

    def bare() -> object:
        return sdk.chat.completions.create(model=model, messages=MESSAGES, temperature=0.7, max_tokens=4096)

    def routed() -> object:
        return r.complete(MESSAGES)

    for _ in range(20):  # warm both connections and code paths
        bare()
        routed()
    calls = Paired(bare, routed, rounds)
    t_sdk, t_router = calls.medians()
    ratio = calls.ratio()
    target(
        "LLMRouter.complete overhead <= 1.10x bare openai SDK",
        f"{t_router * 1000:.3f} ms vs {t_sdk * 1000:.3f} ms per call = {ratio:.3f}x "
        f"({calls.added() * 1e6:+.0f} us; {rounds} calls each, medians over pairs)",
        ratio <= 1.10,
    )
    sdk.close()
    r.close()


def bench_failover(settings: Settings, fake: FakeOpenAI, rounds: int) -> None:
    refused = closed_port_url()

    # A fresh router per call: the first request of a process meets the refused port (later ones would
    # find the breaker open, measured below).
    def call(default: LLMProvider) -> Callable[[], object]:
        def run() -> object:
            with router(settings, fake, refused, default) as r:
                response = r.complete(MESSAGES)
            assert response.provider is LLMProvider.OPENAI
            if default is LLMProvider.OLLAMA:
                assert [a.outcome for a in response.attempts] == ["connect", "ok"], response.attempts
            return response

        return run

    call(LLMProvider.OPENAI)()  # import the SDK outside the measurement
    requests = Paired(call(LLMProvider.OPENAI), call(LLMProvider.OLLAMA), rounds)
    t_alone, t_failover = requests.medians()
    added = requests.added() * 1000
    target(
        "refused primary adds <= 10 ms before the secondary answers",
        f"{added:+.2f} ms ({t_failover * 1000:.2f} ms vs secondary alone {t_alone * 1000:.2f} ms; "
        f"{rounds} requests each, medians over pairs)",
        added <= 10.0,
    )


def bench_breaker(settings: Settings, fake: FakeOpenAI, rounds: int) -> None:
    dead = router(settings, fake, closed_port_url(), LLMProvider.OLLAMA, breaker=BreakerPolicy(cooldown=3600.0))
    alone = router(settings, fake, closed_port_url(), LLMProvider.OPENAI)
    first = dead.complete(MESSAGES)  # the refused connection opens Ollama's breaker
    assert [a.outcome for a in first.attempts] == ["connect", "ok"], first.attempts

    def with_open_breaker() -> object:
        response = dead.complete(MESSAGES)
        assert response.attempts[0].outcome.startswith("skipped: circuit open"), response.attempts
        return response

    def without() -> object:
        return alone.complete(MESSAGES)

    for _ in range(20):
        with_open_breaker()
        without()
    calls = Paired(without, with_open_breaker, rounds)
    t_alone, t_open = calls.medians()
    added = calls.added() * 1000
    target(
        "open breaker adds <= 1 ms per call",
        f"{added:+.3f} ms ({t_open * 1000:.3f} ms vs {t_alone * 1000:.3f} ms without the dead provider; "
        f"{rounds} calls each, medians over pairs)",
        added <= 1.0,
    )
    dead.close()
    alone.close()


_FIRST_CALL = """
import asyncio, json, sys, tempfile, time
from cortex_client import LLMRouter, Settings
empty = tempfile.mkdtemp()
settings = Settings.load(environ={}, cwd=empty, home=empty, etc_dir=empty)

async def main():
    router = LLMRouter(openai_api_key="sk-bench", openai_base_url=sys.argv[1], default_provider="openai",
                       enable_fallback=False, settings=settings)
    stall = 0.0

    async def watch():
        nonlocal stall
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            stall, last = max(stall, now - last - 0.005), now

    timings = []
    for _ in range(2):  # the first call, then the same call warm
        stall = 0.0
        watcher = asyncio.create_task(watch())
        await asyncio.sleep(0)
        began = time.perf_counter()
        await router.acomplete([{"role": "user", "content": "ping"}])
        timings.append((time.perf_counter() - began, stall))
        watcher.cancel()
    await router.aclose()
    print(json.dumps(timings))

asyncio.run(main())
"""


def bench_first_call(fake: FakeOpenAI, rounds: int) -> None:
    cold: list[tuple[float, float]] = []
    warm: list[tuple[float, float]] = []
    for _ in range(rounds):  # each fresh process gives one adjacent (first, warm) pair
        out = subprocess.run(
            [sys.executable, "-c", _FIRST_CALL, fake.url + "/v1"], check=True, capture_output=True, text=True
        ).stdout
        first, second = json.loads(out)
        cold.append(first)
        warm.append(second)
    t_cold = statistics.median(c[0] for c in cold)
    t_warm = statistics.median(w[0] for w in warm)
    ratio = statistics.median(c[0] / w[0] for c, w in zip(cold, warm, strict=True))
    stall_cold = statistics.median(c[1] for c in cold)
    stall_warm = statistics.median(w[1] for w in warm)
    target(
        "a process's first cloud call stalls its event loop <= 100 ms (the SDK import runs off the loop)",
        f"first call {t_cold * 1000:.0f} ms vs warm {t_warm * 1000:.1f} ms = {ratio:.0f}x (the SDK import and "
        f"client); longest loop stall {stall_cold * 1000:.1f} ms during the first call (worst process "
        f"{max(c[1] for c in cold) * 1000:.1f} ms), {stall_warm * 1000:.1f} ms warm ({rounds} fresh processes, "
        "medians over pairs)",
        stall_cold <= 0.100,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=300, help="calls per side for the per-call benchmarks")
    args = parser.parse_args(argv)
    if args.rounds < 10:
        parser.error("--rounds must be at least 10")
    print(f"python {sys.version.split()[0]} on {sys.platform}; rounds={args.rounds}")
    bench_import(max(args.rounds // 10, 10))
    settings = isolated_settings()
    fake = FakeOpenAI()
    try:
        bench_overhead(settings, fake, args.rounds)
        bench_failover(settings, fake, max(args.rounds // 6, 10))
        bench_breaker(settings, fake, args.rounds)
        bench_first_call(fake, max(args.rounds // 30, 5))
    finally:
        fake.close()
    failed = [name for name, _, ok in results if not ok]
    print(f"{len(results) - len(failed)}/{len(results)} targets met")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
