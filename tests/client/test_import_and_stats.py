"""Import hygiene (no network, no SDK, no logging setup), costs and stats, batches."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import pytest

from cortex_client import DEFAULT_MODELS, PRICES, ConfigError, LLMProvider
from tests.support.fakes import Reply, closed_port_url

MESSAGES = [{"role": "user", "content": "hi"}]


def run_python(code: str, tmp_path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
        check=False,
    )


def test_import_opens_no_connection_and_loads_no_sdk(tmp_path):
    result = run_python(
        """
        import socket, sys
        def refuse(*args, **kwargs):
            raise AssertionError("network use during import")
        socket.socket.connect = refuse
        socket.getaddrinfo = refuse
        import cortex_client
        router = cortex_client.LLMRouter.from_env(claude_api_key="sk-ant-x", openai_api_key="sk-o")
        heavy = sorted(m for m in ("openai", "anthropic", "httpx", "httpx2", "asyncio") if m in sys.modules)
        import logging
        print(heavy, logging.getLogger().handlers)
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[] []"


def test_a_local_request_never_imports_a_cloud_sdk(tmp_path, ollama):
    result = run_python(
        f"""
        import sys
        import cortex_client
        router = cortex_client.LLMRouter(ollama_base_url="{ollama.url}", default_provider="ollama",
                                         claude_api_key="sk-ant-x")
        response = router.complete([{{"role": "user", "content": "hi"}}])
        print(response.provider.value, "openai" in sys.modules, "anthropic" in sys.modules)
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ollama False False"


def test_costs_per_call_and_per_provider(make_router, anthropic_fake, openai_fake, ollama):
    router = make_router(
        claude_api_key="sk-ant-x",
        claude_base_url=anthropic_fake.url,
        openai_api_key="sk-openai-x",
        openai_base_url=openai_fake.url + "/v1",
        ollama_base_url=ollama.url,
    )
    claude = router.complete(MESSAGES, force_provider=LLMProvider.CLAUDE)
    inp, out = PRICES[DEFAULT_MODELS[LLMProvider.CLAUDE]]  # the price table's own entry, not a copy
    assert (claude.input_tokens, claude.output_tokens) == (20, 10)  # what the fake reports
    assert claude.cost_usd == pytest.approx((20 * inp + 10 * out) / 1e6)
    openai = router.complete(MESSAGES, force_provider=LLMProvider.OPENAI)
    inp, out = PRICES[openai.model]
    assert (openai.input_tokens, openai.output_tokens) == (11, 5)
    assert openai.cost_usd == pytest.approx((11 * inp + 5 * out) / 1e6)
    local = router.complete(MESSAGES, force_provider=LLMProvider.OLLAMA)
    assert local.cost_usd == 0.0
    stats = router.get_stats()
    assert stats["total_requests"] == 3
    assert stats["total_cost_usd"] == pytest.approx(round(claude.cost_usd + openai.cost_usd, 6))
    assert stats["providers"]["claude"] == {
        "requests": 1,
        "tokens": 30,
        "input_tokens": 20,
        "output_tokens": 10,
        "cost_usd": pytest.approx(claude.cost_usd),
        "failures": 0,
    }
    assert stats["providers"]["ollama"]["cost_usd"] == 0.0
    router.reset_stats()
    assert router.get_stats()["total_requests"] == 0


def test_failures_are_counted_per_provider(make_router, anthropic_fake, ollama):
    anthropic_fake.default = Reply.fail(500)
    router = make_router(claude_api_key="sk-ant-x", claude_base_url=anthropic_fake.url, ollama_base_url=ollama.url)
    router.complete(MESSAGES)
    stats = router.get_stats()["providers"]
    assert (stats["claude"]["failures"], stats["claude"]["requests"]) == (3, 0)
    assert stats["ollama"]["requests"] == 1


def test_price_and_model_overrides(make_router, openai_fake):
    router = make_router(
        openai_api_key="sk-openai-x",
        openai_base_url=openai_fake.url + "/v1",
        models={LLMProvider.OPENAI: "gpt-private"},
        prices={"gpt-private": (1.0, 2.0)},
    )
    response = router.complete(MESSAGES, force_provider=LLMProvider.OPENAI)
    assert response.model == "gpt-private"
    assert response.cost_usd == pytest.approx((11 * 1.0 + 5 * 2.0) / 1e6)


def test_unknown_model_price_is_warned_once(make_router, openai_fake, caplog):
    router = make_router(
        openai_api_key="sk-openai-x", openai_base_url=openai_fake.url + "/v1", openai_model="gpt-unknown"
    )
    with caplog.at_level(logging.WARNING, logger="cortex_client"):
        for _ in range(2):
            assert router.complete(MESSAGES, force_provider=LLMProvider.OPENAI).cost_usd == 0.0
    assert caplog.text.count("no price for model 'gpt-unknown'") == 1


def test_track_costs_off_keeps_stats_empty(make_router, ollama):
    router = make_router(ollama_base_url=ollama.url, default_provider="ollama", track_costs=False)
    router.complete(MESSAGES)
    assert router.get_stats()["total_requests"] == 0


@pytest.mark.anyio
async def test_complete_batch_keeps_order_limits_concurrency_and_returns_errors(make_router, ollama):
    ollama.default = Reply(delay=0.1)
    router = make_router(ollama_base_url=ollama.url, default_provider="ollama")
    requests = [{"messages": MESSAGES} for _ in range(5)]
    requests.insert(2, {"messages": MESSAGES, "force_provider": LLMProvider.OPENAI})
    results = await router.complete_batch(requests, max_concurrent=2)
    assert [r.model for r in results] == ["llama3.2"] * 2 + ["error"] + ["llama3.2"] * 3
    assert isinstance(results[2].error, ConfigError)
    assert all(r.provider is LLMProvider.OLLAMA for r in results if r.error is None)
    assert ollama.max_in_flight == 2  # at most two at a time, and really two: not one after another
    await router.aclose()


def test_fallback_warnings_reach_logging_not_stderr(tmp_path, ollama):
    result = run_python(
        f"""
        import cortex_client
        router = cortex_client.LLMRouter(ollama_base_url="{closed_port_url()},{ollama.url}", default_provider="ollama")
        print(router.complete([{{"role": "user", "content": "hi"}}]).attempts[0].outcome)
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "connect"
    assert result.stderr == ""
