"""A drop-in for Cortex: the original's module helpers, complete_batch's result shape, provider aliases, and a
configuration the host application owns (CORTEX_PROVIDER=fake, local-only with a cloud default) that never
breaks construction. Through the loopback fakes."""

from __future__ import annotations

import json
import logging

import pytest

import cortex_client
from cortex_client import (
    ConfigError,
    LLMProvider,
    LLMResponse,
    LocalOnlyViolation,
    TaskType,
    _helpers,
    check_hardware_configs_parallel,
    complete_task,
    diagnose_errors_parallel,
    query_multiple_packages,
)
from tests.support.fakes import Reply

MESSAGES = [{"role": "user", "content": "hi"}]


def sent(fake, path="/api/chat"):
    """The chat requests a fake received: (system prompt, user prompt) pairs, in arrival order."""
    out = []
    for seen in fake.requests:
        if seen.path.endswith(path):
            messages = seen.body["messages"]
            system = next((m["content"] for m in messages if m["role"] == "system"), None)
            out.append((system, messages[-1]["content"]))
    return out


# --- complete_batch ------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_failed_batch_slot_is_a_response_like_the_originals(make_router, ollama):
    router = make_router(ollama_base_url=ollama.url, default_provider="ollama")
    requests = [{"messages": MESSAGES}, {"messages": MESSAGES, "force_provider": LLMProvider.OPENAI}]
    ok, failed = await router.complete_batch(requests)
    assert isinstance(ok, LLMResponse) and ok.error is None and ok.provider is LLMProvider.OLLAMA
    assert isinstance(failed, LLMResponse)
    assert failed.content.startswith("Error: openai is not configured")
    assert (failed.model, failed.tokens_used, failed.cost_usd) == ("error", 0, 0.0)
    assert failed.provider is LLMProvider.OPENAI  # the provider the request was for
    assert isinstance(failed.error, ConfigError)
    await router.aclose()


@pytest.mark.anyio
async def test_a_slot_that_failed_upstream_names_the_last_provider_tried(make_router, ollama):
    ollama.default = Reply.fail(500)
    router = make_router(ollama_base_url=ollama.url, default_provider="ollama", enable_fallback=False)
    (failed,) = await router.complete_batch([{"messages": MESSAGES}])
    assert failed.model == "error" and failed.provider is LLMProvider.OLLAMA
    assert [a.provider for a in failed.attempts] == [LLMProvider.OLLAMA] * len(failed.attempts)
    assert failed.attempts and failed.error is not None
    await router.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize("local_only", [True, False])
async def test_a_slot_refused_by_ollama_names_ollama(make_router, ollama, local_only):
    # Issue 26, item 9b: Ollama's 400 (the request's own fault: not retried, no fallback) came back as `claude`.
    ollama.default = Reply.fail(400, body={"error": "invalid options"})
    router = make_router(ollama_base_url=ollama.url, local_only=local_only)  # Ollama is the only provider
    (failed,) = await router.complete_batch([{"messages": MESSAGES}])
    assert failed.model == "error" and failed.error is not None
    assert failed.provider is LLMProvider.OLLAMA
    await router.aclose()


@pytest.mark.anyio
async def test_raising_mode_raises_the_first_failure_after_every_request_ran(make_router, ollama):
    router = make_router(ollama_base_url=ollama.url, default_provider="ollama")
    requests = [{"messages": MESSAGES, "force_provider": LLMProvider.CLAUDE}, {"messages": MESSAGES}]
    with pytest.raises(ConfigError, match="claude is not configured"):
        await router.complete_batch(requests, raise_errors=True)
    assert ollama.calls("/api/chat") == 1  # the good request still ran
    await router.aclose()


# --- the original's module helpers ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_query_multiple_packages_keys_answers_by_package(make_router, ollama):
    router = make_router(ollama_base_url=ollama.url, default_provider="ollama")
    answers = await query_multiple_packages(router, ["nginx", "redis"], max_concurrent=1)
    assert list(answers) == ["nginx", "redis"]
    assert all(isinstance(r, LLMResponse) and r.content for r in answers.values())
    prompts = sent(ollama)
    assert [user for _, user in prompts] == [
        "What are the installation requirements for nginx?",
        "What are the installation requirements for redis?",
    ]
    custom = await query_multiple_packages(router, ["curl"], system_prompt="Be brief.")
    assert custom["curl"].content and sent(ollama)[-1][0] == "Be brief."
    await router.aclose()


@pytest.mark.anyio
async def test_diagnose_errors_parallel_keeps_order_and_passes_the_context(make_router, ollama):
    router = make_router(ollama_base_url=ollama.url, default_provider="ollama")
    errors = ["E: Unable to locate package foo", "Permission denied: /etc/x"]
    diagnoses = await diagnose_errors_parallel(router, errors, context="Ubuntu 24.04", max_concurrent=1)
    assert len(diagnoses) == 2 and all(d.provider is LLMProvider.OLLAMA for d in diagnoses)
    prompts = sent(ollama)
    assert [user for _, user in prompts] == [f"Diagnose and fix this error: {e}" for e in errors]
    assert all("Ubuntu 24.04" in system for system, _ in prompts)
    await router.aclose()


@pytest.mark.anyio
async def test_check_hardware_configs_parallel_sends_the_hardware_info(make_router, ollama):
    router = make_router(ollama_base_url=ollama.url, default_provider="ollama")
    info = {"nvidia_gpu": {"model": "RTX 4090", "driver": "550.1"}}
    configs = await check_hardware_configs_parallel(router, ["nvidia_gpu", "intel_cpu"], info)
    assert set(configs) == {"nvidia_gpu", "intel_cpu"}
    assert all(json.dumps(info, indent=2) in system for system, _ in sent(ollama))
    await router.aclose()


def test_complete_task_returns_text_and_reuses_one_router(monkeypatch, tmp_path, ollama):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("OLLAMA_BASE_URL", ollama.url)
    monkeypatch.setenv("CORTEX_PROVIDER", "ollama")
    monkeypatch.setattr(_helpers, "_shared", None)
    text = complete_task("hello", task_type=TaskType.SYSTEM_OPERATION, system_prompt="You are terse.", max_tokens=50)
    assert text == "Hello from the fake"
    assert sent(ollama) == [("You are terse.", "hello")]
    first = _helpers._shared
    assert complete_task("again") == "Hello from the fake"
    assert _helpers._shared is first  # no new router, no new HTTP clients per call
    assert ollama.requests[-1].body["options"]["num_predict"] == 1024  # kwargs are per call only; the local bound
    first.close()


def test_the_helpers_are_exported():
    for name in ("complete_task", "query_multiple_packages", "diagnose_errors_parallel"):
        assert name in cortex_client.__all__
    assert "check_hardware_configs_parallel" in cortex_client.__all__


# --- configuration the host application owns ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "provider"),
    [("kimi", LLMProvider.KIMI_K2), ("Moonshot", LLMProvider.KIMI_K2), ("anthropic", LLMProvider.CLAUDE)],
)
def test_provider_aliases(isolated, make_router, name, provider):
    assert isolated.merged({"CORTEX_PROVIDER": name}).provider is provider
    assert make_router(default_provider=name).default_provider is provider


def test_a_cortex_provider_of_another_program_warns_and_uses_the_routing_table(isolated, make_router, caplog):
    settings = isolated.merged({"CORTEX_PROVIDER": "fake"})
    assert settings.provider is None
    with caplog.at_level(logging.WARNING, logger="cortex_client"):
        router = make_router(settings=settings, claude_api_key="sk-ant-x")
    assert router.default_provider is None
    assert router.route_task(TaskType.CODE_GENERATION).reasoning.endswith("(kimi_k2 not configured: fallback)")
    assert any("CORTEX_PROVIDER" in w and "routing table decides" in w for w in router.warnings)
    assert "fake" not in caplog.text  # warnings never print a value
    assert "CORTEX_PROVIDER" in caplog.text


def test_an_explicit_unknown_default_provider_is_the_callers_error(make_router):
    with pytest.raises(ConfigError, match="default_provider must be one of"):
        make_router(default_provider="gemini")


def test_local_only_with_a_cloud_default_builds_and_routes_to_ollama(make_router, ollama, caplog):
    with caplog.at_level(logging.WARNING, logger="cortex_client"):
        router = make_router(
            local_only=True, default_provider="claude", claude_api_key="sk-ant-x", ollama_base_url=ollama.url
        )
    assert "every request goes to Ollama" in caplog.text
    assert router.complete(MESSAGES).provider is LLMProvider.OLLAMA
    with pytest.raises(LocalOnlyViolation):
        router.complete(MESSAGES, force_provider=LLMProvider.CLAUDE)


def test_all_providers_failed_is_caused_by_the_last_error(make_router, ollama):
    from cortex_client import AllProvidersFailed, ProviderError

    ollama.default = Reply.fail(503)
    router = make_router(ollama_base_url=ollama.url, default_provider="ollama", enable_fallback=False)
    with pytest.raises(AllProvidersFailed) as caught:
        router.complete(MESSAGES)
    cause = caught.value.__cause__
    assert isinstance(cause, ProviderError) and cause.status == 503 and cause.provider is LLMProvider.OLLAMA


def test_force_provider_by_name(make_router, ollama):
    router = make_router(ollama_base_url=ollama.url)
    assert router.complete(MESSAGES, force_provider="ollama").provider is LLMProvider.OLLAMA
    with pytest.raises(ConfigError, match="force_provider must be one of"):
        router.complete(MESSAGES, force_provider="gemini")


def test_asyncio_run_without_aclose_leaves_no_noise(tmp_path, ollama, openai_fake):
    """Each asyncio.run() ends its loop; the router's async clients of that loop are closed before it, so
    nothing warns about unclosed transports or a closed event loop, even with every warning shown."""
    import subprocess
    import sys

    from tests.support.archives import REPO

    script = f"""
import asyncio
from cortex_client import LLMRouter, Settings
settings = Settings.load(environ={{}}, cwd={str(tmp_path)!r}, home={str(tmp_path)!r}, etc_dir={str(tmp_path)!r})
router = LLMRouter(settings=settings, ollama_base_url={ollama.url!r}, openai_api_key="sk-x",
                   openai_base_url={openai_fake.url + "/v1"!r})
for provider in ("ollama", "openai", "ollama"):
    print(asyncio.run(router.acomplete([{{"role": "user", "content": "hi"}}], force_provider=provider)).content)
"""
    proc = subprocess.run(
        [sys.executable, "-W", "default", "-X", "dev", "-c", script],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["Hello from the fake"] * 3
    assert "unclosed" not in proc.stderr and "Event loop is closed" not in proc.stderr, proc.stderr
