"""Every tunable number and every dated fact about providers, in one place.

Timeouts, retry and breaker settings are plain constants (anthropic SDK `_constants.py` style); the
value objects in `_config.py` use them as defaults, so callers and tests override them per router.
Model ids and prices change monthly: they are data with a date, overridable with `LLMRouter(models=...,
prices=...)` and the `*_MODEL` env keys.
"""

from __future__ import annotations

from ._registry import PROVIDERS
from ._types import LLMProvider, TaskType

# --- timeouts (seconds) ------------------------------------------------------------------------------
# A down local daemon must be detected fast, but a loading model sends no byte until it is in memory
# (seconds to minutes); aborting makes Ollama abort the load, so the first-byte limit is generous.
OLLAMA_CONNECT_TIMEOUT = 2.0
OLLAMA_READ_TIMEOUT = 300.0
# Ollama's context window when neither the request, the router nor the Modelfile sets `num_ctx` (and the server's
# OLLAMA_CONTEXT_LENGTH does not): what the truncation guard assumes then.
OLLAMA_DEFAULT_NUM_CTX = 4096
CLOUD_CONNECT_TIMEOUT = 5.0
CLOUD_READ_TIMEOUT = 120.0
# One budget for a whole request: every retry and every fallback together.
REQUEST_DEADLINE = 600.0
# Connections per provider client. A request that finds them all busy waits for one until its deadline.
MAX_CONNECTIONS = 100

# --- retries (owned by the router; SDKs get max_retries=0) ----------------------------------------------
MAX_RETRIES = 2  # extra calls to the same endpoint for retryable errors: 3 calls at most
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
RETRY_JITTER = 0.25  # delay is multiplied by a random factor in [1 - jitter, 1]
MAX_RETRY_AFTER = 60.0  # a longer Retry-After is not waited for: fall back instead

# --- circuit breaker -------------------------------------------------------------------------------------
BREAKER_FAILURE_THRESHOLD = 3  # consecutive failed requests before the circuit opens
BREAKER_COOLDOWN = 15.0  # open -> half-open after this long; one probe request decides
AUTH_DISABLE_SECONDS = 600.0  # 401/403: the key is wrong; do not try it again for a while

# --- output bound (max_tokens) when the caller gives none, per provider -------------------------------------
# A small local model may never emit its stop token and then generates until its context is full (minutes on a
# CPU); cloud models stop by themselves and are billed per token, so their bound only caps a runaway answer.
# `LLMRouter(default_max_tokens=...)` overrides these.
DEFAULT_MAX_TOKENS: dict[LLMProvider, int] = {
    LLMProvider.OLLAMA: 1024,
    LLMProvider.CLAUDE: 4096,
    LLMProvider.KIMI_K2: 4096,
    LLMProvider.OPENAI: 4096,
}
# The module helpers' bound: their answers (requirements, a diagnosis, configuration advice) are a few paragraphs.
HELPER_MAX_TOKENS = 1024

# --- endpoints and default models: per provider, in the registry ------------------------------------------
DEFAULT_BASE_URLS: dict[LLMProvider, str] = {spec.kind: spec.default_base_url for spec in PROVIDERS}

# --- prices --------------------------------------------------------------------------------------------------
# Sources: the providers' published price lists (and the Portkey-AI/models pricing table).
PRICES_AS_OF = "2026-08"
DEFAULT_MODELS: dict[LLMProvider, str] = {spec.kind: spec.default_model for spec in PROVIDERS}
# USD per 1M tokens: (input, output). Ollama is always free and needs no entry.
PRICES: dict[str, tuple[float, float]] = {
    "claude-sonnet-4-20250514": (3.0, 15.0),
    "claude-sonnet-4-0": (3.0, 15.0),
    "claude-sonnet-4-5-20250929": (3.0, 15.0),
    "claude-sonnet-4-5": (3.0, 15.0),
    "claude-sonnet-4-6": (3.0, 15.0),
    "claude-haiku-4-5-20251001": (1.0, 5.0),
    "claude-haiku-4-5": (1.0, 5.0),
    "claude-opus-4-1-20250805": (15.0, 75.0),
    "claude-opus-4-20250514": (15.0, 75.0),
    "claude-opus-4-5-20251101": (5.0, 25.0),
    "claude-opus-4-6": (5.0, 25.0),
    "claude-opus-4-7": (5.0, 25.0),
    "claude-sonnet-5": (2.0, 10.0),
    "claude-opus-5": (5.0, 25.0),
    "claude-3-5-haiku-20241022": (0.8, 4.0),
    "kimi-k2-0711-preview": (0.6, 2.5),
    "kimi-k2-0905-preview": (0.6, 2.5),
    "kimi-k2-thinking": (0.6, 2.5),
    "kimi-k2-turbo-preview": (1.15, 8.0),
    "kimi-k2-thinking-turbo": (1.15, 8.0),
    "kimi-k2.5": (0.6, 3.0),
    "kimi-k2.6": (0.95, 4.0),
    "gpt-4o-mini": (0.15, 0.6),
    "text-embedding-3-small": (0.02, 0.0),
    "gpt-4o": (2.5, 10.0),
    "gpt-4.1": (2.0, 8.0),
    "gpt-4.1-mini": (0.4, 1.6),
    "gpt-4.1-nano": (0.1, 0.4),
    "o4-mini": (1.1, 4.4),
    "gpt-5": (1.25, 10.0),
    "gpt-5-mini": (0.25, 2.0),
    "gpt-5-nano": (0.05, 0.4),
}

# OpenAI's reasoning models (o-series, the gpt-5 family) take `max_completion_tokens` instead of `max_tokens` and reject
# any temperature but the default (OpenAI API reference, chat completions and reasoning guide, 2026-08). Model ids that
# start with one of these prefixes are treated so; `gpt-5-chat*` is the non-reasoning chat model.
REASONING_MODELS_AS_OF = "2026-08"
REASONING_MODEL_PREFIXES: tuple[str, ...] = ("o1", "o3", "o4", "gpt-5")
NON_REASONING_MODEL_PREFIXES: tuple[str, ...] = ("gpt-5-chat",)

# --- routing -------------------------------------------------------------------------------------------
# The cloud provider each task type goes to (the original Cortex table). `LLMRouter(routing=...)` overrides
# entries; `LLMProvider.OLLAMA` as an entry makes that task local-first.
ROUTING_RULES: dict[TaskType, LLMProvider] = {
    TaskType.USER_CHAT: LLMProvider.CLAUDE,
    TaskType.REQUIREMENT_PARSING: LLMProvider.CLAUDE,
    TaskType.SYSTEM_OPERATION: LLMProvider.KIMI_K2,
    TaskType.ERROR_DEBUGGING: LLMProvider.KIMI_K2,
    TaskType.CODE_GENERATION: LLMProvider.KIMI_K2,
    TaskType.DEPENDENCY_RESOLUTION: LLMProvider.KIMI_K2,
    TaskType.CONFIGURATION: LLMProvider.KIMI_K2,
    TaskType.TOOL_EXECUTION: LLMProvider.KIMI_K2,
}
# Simple tasks that go to the free, private local model first when Ollama is configured (OLLAMA_BASE_URL,
# OLLAMA_HOST or OLLAMA_MODEL set, or ollama_base_url/ollama_model given), as the original integration's guide
# promises; their cloud provider above is the first fallback. `LLMRouter(local_first=...)` overrides the set;
# `local_first=ORIGINAL_LOCAL_FIRST` (none) is the original router's behaviour.
LOCAL_FIRST: frozenset[TaskType] = frozenset({TaskType.USER_CHAT, TaskType.REQUIREMENT_PARSING})
ORIGINAL_LOCAL_FIRST: frozenset[TaskType] = frozenset()
# Fallback order after the primary (the original's chains); each provider appears once.
FALLBACK_ORDER: dict[LLMProvider, tuple[LLMProvider, ...]] = {
    LLMProvider.CLAUDE: (LLMProvider.KIMI_K2, LLMProvider.OPENAI, LLMProvider.OLLAMA),
    LLMProvider.KIMI_K2: (LLMProvider.CLAUDE, LLMProvider.OPENAI, LLMProvider.OLLAMA),
    LLMProvider.OPENAI: (LLMProvider.CLAUDE, LLMProvider.KIMI_K2, LLMProvider.OLLAMA),
    LLMProvider.OLLAMA: (LLMProvider.CLAUDE, LLMProvider.KIMI_K2, LLMProvider.OPENAI),
}

# The embedding model per provider that has an embeddings API (`LLMRouter(embedding_models=...)` changes them).
EMBEDDING_MODELS: dict[LLMProvider, str] = {
    LLMProvider.OLLAMA: "nomic-embed-text",
    LLMProvider.OPENAI: "text-embedding-3-small",
}
