"""Public value types: the Cortex-compatible enums and response, plus tool calls and stream chunks."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

Message = dict[str, Any]
"""One chat message in OpenAI format: role system|user|assistant|tool, content, tool_calls, tool_call_id."""

Tool = dict[str, Any]
"""One tool in OpenAI format: {"type": "function", "function": {"name", "description", "parameters"}}."""


class TaskType(Enum):
    USER_CHAT = "user_chat"
    REQUIREMENT_PARSING = "requirement_parsing"
    SYSTEM_OPERATION = "system_operation"
    ERROR_DEBUGGING = "error_debugging"
    CODE_GENERATION = "code_generation"
    DEPENDENCY_RESOLUTION = "dependency_resolution"
    CONFIGURATION = "configuration"
    TOOL_EXECUTION = "tool_execution"


class LLMProvider(Enum):
    CLAUDE = "claude"
    KIMI_K2 = "kimi_k2"
    OPENAI = "openai"
    OLLAMA = "ollama"

    @property
    def is_cloud(self) -> bool:
        return self is not LLMProvider.OLLAMA


@dataclass(frozen=True)
class ToolCall:
    """A tool the model wants called. `arguments` is a JSON string, as in the OpenAI format."""

    id: str
    name: str
    arguments: str

    def parsed_arguments(self) -> Any:
        return json.loads(self.arguments) if self.arguments else {}

    def to_openai(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass(frozen=True)
class Attempt:
    """One upstream call (or one skipped candidate) made while serving a request."""

    provider: LLMProvider
    endpoint: str | None
    outcome: str  # "ok", an ErrorKind value, or "skipped: <why>"
    status: int | None = None
    error: str | None = None
    seconds: float = 0.0


@dataclass
class LLMResponse:
    content: str
    provider: LLMProvider
    model: str
    tokens_used: int
    cost_usd: float
    latency_seconds: float
    raw_response: dict[str, Any] | None = field(default=None, repr=False)
    input_tokens: int = 0
    output_tokens: int = 0
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    tokens_per_second: float | None = None
    usage_estimated: bool = False  # the server reported no usage; token counts (and cost) are estimates
    # complete_batch only: a failed request's slot is a response with content "Error: ..." and model "error"
    # (as in the original); this holds the exception itself.
    error: Exception | None = field(default=None, repr=False)
    # Structured output (json_schema=...): the answer parsed and validated: a dict, or the pydantic model's instance.
    parsed: Any = None
    # The model's reasoning (Ollama message.thinking, Claude thinking blocks, Kimi reasoning_content), apart from
    # `content`; "" when the model gave none.
    reasoning: str = ""

    def to_message(self) -> Message:
        """The assistant message to append to the conversation (keeps tool calls for the next turn)."""
        message: Message = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            message["tool_calls"] = [call.to_openai() for call in self.tool_calls]
        return message


@dataclass(frozen=True)
class StreamChunk:
    """A streamed text delta; the last chunk of a stream has empty text and carries the full `response`
    (usage, cost, tool calls, finish reason)."""

    text: str = ""
    response: LLMResponse | None = None
    reasoning: str = ""  # a reasoning delta (its `text` is then "")

    @property
    def done(self) -> bool:
        return self.response is not None


@dataclass
class Embeddings:
    """`embed` / `aembed`: one vector per text, in input order, and who made them."""

    vectors: list[list[float]]
    provider: LLMProvider
    model: str  # vectors of different models are not comparable: check this where it matters
    input_tokens: int = 0
    cost_usd: float = 0.0
    latency_seconds: float = 0.0
    attempts: list[Attempt] = field(default_factory=list)
