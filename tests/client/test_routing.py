"""The routing table: simple tasks go to the free local model first when Ollama is configured (the original
integration guide's promise), complex ones to the cloud; overridable per task; the original table as a preset."""

from __future__ import annotations

import pytest

from cortex_client import LOCAL_FIRST, ORIGINAL_LOCAL_FIRST, LLMProvider, LLMRouter, TaskType

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture
def guide_router(isolated, anthropic_fake, kimi_fake, ollama):
    """As the guide shows it: a Claude key and a local model (plus Kimi, for the complex tasks' table entry)."""

    def make(**kwargs):
        return LLMRouter(
            settings=isolated,
            claude_api_key="sk-ant-x",
            claude_base_url=anthropic_fake.url,
            kimi_api_key="sk-kimi-x",
            kimi_base_url=kimi_fake.url + "/v1",
            ollama_base_url=ollama.url,
            ollama_model="llama3.2",
            **kwargs,
        )

    return make


def test_user_chat_goes_to_the_local_model_and_system_operations_to_the_cloud(guide_router, anthropic_fake, ollama):
    router = guide_router()
    chat = router.complete(MESSAGES, task_type=TaskType.USER_CHAT)
    assert chat.provider is LLMProvider.OLLAMA and chat.cost_usd == 0.0
    assert anthropic_fake.calls() == 0
    decision = router.route_task(TaskType.USER_CHAT)
    assert decision.reasoning == "user_chat → ollama (local-first: Ollama is configured)"
    assert decision.chain[:2] == (LLMProvider.OLLAMA, LLMProvider.CLAUDE)
    operation = router.route_task(TaskType.SYSTEM_OPERATION)
    assert operation.provider is LLMProvider.KIMI_K2
    assert (operation.reasoning, operation.confidence) == ("system_operation → kimi_k2 (optimal for this task)", 0.95)
    router.close()


def test_every_task_in_the_default_table(guide_router):
    router = guide_router()
    for task in TaskType:
        expected = LLMProvider.OLLAMA if task in LOCAL_FIRST else LLMRouter.ROUTING_RULES[task]
        assert router.route_task(task).provider is expected, task
    router.close()


def test_a_local_first_task_falls_back_to_its_cloud_provider(guide_router, anthropic_fake, ollama):
    from tests.support.fakes import Reply

    ollama.default = Reply.fail(503)
    response = guide_router().complete(MESSAGES)
    assert response.provider is LLMProvider.CLAUDE
    assert [a.provider for a in response.attempts][-1] is LLMProvider.CLAUDE


def test_without_a_configured_ollama_user_chat_stays_in_the_cloud(isolated, anthropic_fake):
    router = LLMRouter(settings=isolated, claude_api_key="sk-ant-x", claude_base_url=anthropic_fake.url)
    assert not router.ollama_configured
    assert router.route_task(TaskType.USER_CHAT).provider is LLMProvider.CLAUDE
    router.close()


def test_per_task_override_and_the_original_preset(guide_router):
    router = guide_router(routing={TaskType.CODE_GENERATION: LLMProvider.OLLAMA}, local_first={TaskType.CONFIGURATION})
    assert router.route_task(TaskType.CODE_GENERATION).provider is LLMProvider.OLLAMA
    assert router.route_task(TaskType.CONFIGURATION).provider is LLMProvider.OLLAMA
    assert router.route_task(TaskType.USER_CHAT).provider is LLMProvider.CLAUDE  # no longer local-first
    assert router.route_task(TaskType.SYSTEM_OPERATION).provider is LLMProvider.KIMI_K2  # untouched entry
    original = guide_router(local_first=ORIGINAL_LOCAL_FIRST)
    assert original.route_task(TaskType.USER_CHAT).provider is LLMProvider.CLAUDE
    router.close()
    original.close()


def test_the_default_provider_wins_over_the_table(guide_router):
    router = guide_router(default_provider="claude")
    assert router.route_task(TaskType.USER_CHAT).provider is LLMProvider.CLAUDE
    router.close()


def test_route_task_reads_as_the_originals(guide_router, isolated, anthropic_fake):
    router = guide_router(local_first=ORIGINAL_LOCAL_FIRST)
    table = router.route_task(TaskType.USER_CHAT)
    assert (table.provider, table.reasoning, table.confidence) == (
        LLMProvider.CLAUDE,
        "user_chat → claude (optimal for this task)",
        0.95,
    )
    forced = router.route_task(TaskType.USER_CHAT, force_provider="kimi")
    assert (forced.provider, forced.reasoning, forced.confidence) == (LLMProvider.KIMI_K2, "Forced by caller", 1.0)
    claude_only = LLMRouter(settings=isolated, claude_api_key="sk-ant-x", claude_base_url=anthropic_fake.url)
    fallback = claude_only.route_task(TaskType.CODE_GENERATION)  # Kimi wanted, not configured
    assert fallback.provider is LLMProvider.CLAUDE
    assert fallback.reasoning == "code_generation → claude (kimi_k2 not configured: fallback)"
    router.close()
    claude_only.close()
