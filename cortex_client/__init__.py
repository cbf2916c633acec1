"""Cortex LLM router: prefers the local Ollama model and falls back to cloud providers correctly.

Importing this package is cheap: no network, and neither httpx nor the cloud SDKs are imported until a
provider is first used.
"""

from ._config import BreakerPolicy, RetryPolicy, Settings, Timeouts
from ._defaults import DEFAULT_MAX_TOKENS, DEFAULT_MODELS, LOCAL_FIRST, ORIGINAL_LOCAL_FIRST, PRICES, PRICES_AS_OF
from ._errors import (
    AllProvidersFailed,
    ConfigError,
    CortexLLMError,
    ErrorKind,
    LocalOnlyViolation,
    ProviderError,
    StreamInterrupted,
)
from ._helpers import check_hardware_configs_parallel, complete_task, diagnose_errors_parallel, query_multiple_packages
from ._router import LLMRouter, RoutingDecision
from ._types import Attempt, Embeddings, LLMProvider, LLMResponse, Message, StreamChunk, TaskType, Tool, ToolCall

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_MODELS",
    "LOCAL_FIRST",
    "ORIGINAL_LOCAL_FIRST",
    "PRICES",
    "PRICES_AS_OF",
    "AllProvidersFailed",
    "Attempt",
    "BreakerPolicy",
    "ConfigError",
    "CortexLLMError",
    "Embeddings",
    "ErrorKind",
    "LLMProvider",
    "LLMResponse",
    "LLMRouter",
    "LocalOnlyViolation",
    "Message",
    "ProviderError",
    "RetryPolicy",
    "RoutingDecision",
    "Settings",
    "StreamChunk",
    "StreamInterrupted",
    "TaskType",
    "Timeouts",
    "Tool",
    "ToolCall",
    "__version__",
    "check_hardware_configs_parallel",
    "complete_task",
    "diagnose_errors_parallel",
    "query_multiple_packages",
]
