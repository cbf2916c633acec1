"""The original `cortex.llm_router` module helpers, same signatures and results, on top of `LLMRouter`.

`complete_task` shares one router per process (built from the configuration on first use) instead of building
a router, and its HTTP clients, on every call; the parallel helpers run through `complete_batch`, so a failed
item is an `LLMResponse` with content "Error: ..." in its slot and the others keep their answers.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from ._defaults import HELPER_MAX_TOKENS
from ._router import LLMRouter
from ._types import LLMResponse, Message, TaskType

_shared: LLMRouter | None = None
_shared_lock = threading.Lock()


def _default_router() -> LLMRouter:
    global _shared  # noqa: PLW0603 - one lazily built router per process, as documented
    with _shared_lock:
        if _shared is None:
            _shared = LLMRouter()
        return _shared


def _conversation(system: str | None, user: str) -> list[Message]:
    messages: list[Message] = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": user})
    return messages


async def _ask_each(
    router: LLMRouter, system: str, prompts: list[str], task_type: TaskType, max_concurrent: int, *, max_tokens: int
) -> list[LLMResponse]:
    """One request per prompt, same system prompt and task type, through complete_batch (order kept)."""
    requests = [
        {"messages": _conversation(system, prompt), "task_type": task_type, "max_tokens": max_tokens}
        for prompt in prompts
    ]
    return await router.complete_batch(requests, max_concurrent=max_concurrent)


def complete_task(
    prompt: str, task_type: TaskType = TaskType.USER_CHAT, system_prompt: str | None = None, **kwargs: Any
) -> str:
    """One completion, its text only; `kwargs` go to `LLMRouter.complete` (temperature, max_tokens, ...). Without
    max_tokens the router's default bound for the provider that answers applies."""
    return _default_router().complete(_conversation(system_prompt, prompt), task_type=task_type, **kwargs).content


async def query_multiple_packages(
    router: LLMRouter,
    package_names: list[str],
    system_prompt: str | None = None,
    max_concurrent: int = 10,
    *,
    max_tokens: int = HELPER_MAX_TOKENS,
) -> dict[str, LLMResponse]:
    """Installation requirements of each package (DEPENDENCY_RESOLUTION), keyed by package name."""
    system = system_prompt or (
        "You are an expert on Linux packages. Give the installation requirements and dependencies of packages."
    )
    prompts = [f"What are the installation requirements for {name}?" for name in package_names]
    answers = await _ask_each(
        router, system, prompts, TaskType.DEPENDENCY_RESOLUTION, max_concurrent, max_tokens=max_tokens
    )
    return dict(zip(package_names, answers, strict=True))


async def diagnose_errors_parallel(
    router: LLMRouter,
    error_messages: list[str],
    context: str | None = None,
    max_concurrent: int = 10,
    *,
    max_tokens: int = HELPER_MAX_TOKENS,
) -> list[LLMResponse]:
    """A diagnosis and fix for each error message (ERROR_DEBUGGING), in input order."""
    system = "You are an expert at debugging Linux systems. Analyse error messages and give solutions."
    if context:
        system += f"\n\nSystem context: {context}"
    prompts = [f"Diagnose and fix this error: {error}" for error in error_messages]
    return await _ask_each(router, system, prompts, TaskType.ERROR_DEBUGGING, max_concurrent, max_tokens=max_tokens)


async def check_hardware_configs_parallel(
    router: LLMRouter,
    hardware_components: list[str],
    hardware_info: dict[str, Any] | None = None,
    max_concurrent: int = 10,
    *,
    max_tokens: int = HELPER_MAX_TOKENS,
) -> dict[str, LLMResponse]:
    """Configuration advice for each hardware component (CONFIGURATION), keyed by component."""
    system = "You are an expert on hardware configuration. Recommend the best configuration for each component."
    if hardware_info:
        system += f"\n\nHardware information: {json.dumps(hardware_info, indent=2)}"
    prompts = [f"Check the configuration requirements for {component}" for component in hardware_components]
    answers = await _ask_each(router, system, prompts, TaskType.CONFIGURATION, max_concurrent, max_tokens=max_tokens)
    return dict(zip(hardware_components, answers, strict=True))
