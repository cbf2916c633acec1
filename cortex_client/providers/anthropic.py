"""Claude through the anthropic SDK, translating OpenAI-format messages and tools both ways.

OpenAI -> Anthropic: system messages are hoisted into `system`; assistant `tool_calls` become
`tool_use` blocks (arguments parsed from JSON); `tool` messages become `tool_result` blocks in one user
turn; tools get `input_schema`; tool_choice maps auto/required/none/named. Back: `text` blocks join
into content, `tool_use` blocks become ToolCalls with JSON arguments, stop_reason maps to OpenAI's
finish_reason.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from .._errors import ConfigError, ErrorKind
from .._pool import Endpoint
from .._types import LLMProvider, LLMResponse, Message, Tool, ToolCall
from ._base import ChatRequest, Reasoning, ToolChoice, sdk_transport_errors, text_of
from ._sdk import SDKProvider, sdk_http_client

# Extended thinking's token budget per `think` level (True: medium); Claude's minimum is 1024.
THINKING_BUDGETS = {"low": 1024, "medium": 4096, "True": 4096, "high": 16384}

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


_CLAUDE_TOOL_ID = re.compile(r"[a-zA-Z0-9_-]+")


def claude_tool_id(call_id: str) -> str:
    """A tool-call id as Claude's API takes it (only [a-zA-Z0-9_-]): another provider's id kept when it fits, else
    its characters replaced and a digest of the original added, the same on the call and on its result. Kimi K2's
    `functions.<name>:<n>` ids are kept as they are everywhere else (K2 needs them exactly)."""
    if _CLAUDE_TOOL_ID.fullmatch(call_id):
        return call_id
    digest = hashlib.sha256(call_id.encode()).hexdigest()[:8]
    return f"{re.sub(r'[^a-zA-Z0-9_-]', '_', call_id)}_{digest}"


def to_anthropic_messages(messages: list[Message]) -> tuple[str | None, list[dict[str, Any]]]:
    """Split OpenAI-format messages into Anthropic's (system, messages)."""
    system: list[str] = []
    out: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if out and out[-1]["role"] == role:  # Anthropic wants alternating turns: merge
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})

    for message in messages:
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            system.append(text_of(content))
        elif role == "tool":
            result: dict[str, Any] = {
                "type": "tool_result",
                "tool_use_id": claude_tool_id(message.get("tool_call_id", "")),
                "content": text_of(content),
            }
            if message.get("is_error"):
                result["is_error"] = True
            add("user", [result])
        elif role in ("user", "assistant"):
            blocks: list[dict[str, Any]] = []
            text = text_of(content)
            if text:
                blocks.append({"type": "text", "text": text})
            for call in message.get("tool_calls") or ():
                function = call.get("function", {})
                arguments = function.get("arguments") or "{}"
                try:
                    parsed = json.loads(arguments) if isinstance(arguments, str) else arguments
                except ValueError:
                    raise ConfigError(f"tool call {call.get('id')!r} has arguments that are not JSON") from None
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": claude_tool_id(call.get("id", "")),
                        "name": function.get("name", ""),
                        "input": parsed,
                    }
                )
            if blocks:
                add(role, blocks)
        else:
            raise ConfigError(f"unsupported message role {role!r}")
    return ("\n\n".join(s for s in system if s) or None), out


def to_anthropic_tools(tools: list[Tool]) -> list[dict[str, Any]]:
    converted = []
    for tool in tools:
        function = tool.get("function", tool)
        entry: dict[str, Any] = {
            "name": function["name"],
            "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
        }
        if function.get("description"):
            entry["description"] = function["description"]
        converted.append(entry)
    return converted


def to_anthropic_tool_choice(choice: ToolChoice) -> dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, str):
        mapped = {"auto": "auto", "required": "any", "none": "none"}.get(choice)
        if mapped is None:
            raise ConfigError(f"unsupported tool_choice {choice!r}")
        return {"type": mapped}
    name = choice.get("function", {}).get("name") or choice.get("name")
    if not name:
        raise ConfigError(f"unsupported tool_choice {choice!r}")
    return {"type": "tool", "name": name}


class AnthropicProvider(SDKProvider):
    kind = LLMProvider.CLAUDE
    status_errors_in_stream = False  # SSE `error` events after a 200 (e.g. overloaded_error) are stream failures

    def __init__(self, *, api_key: str, **kwargs: Any) -> None:
        super().__init__(api_key=api_key, **kwargs)
        self._takes_temperature = False
        self._takes_thinking = False

    def _create(self, client: Any) -> Callable[..., Any]:
        return client.messages.create  # type: ignore[no-any-return]

    def _make_client(self, asynchronous: bool, endpoint: Endpoint) -> Any:
        import anthropic  # noqa: PLC0415 - a slow import; only when Claude is used

        cls = anthropic.AsyncAnthropic if asynchronous else anthropic.Anthropic
        # anthropic 2.x removed `temperature` from messages.create (the API no longer takes it for
        # current models); older SDKs still take it, so send it only where the SDK knows it.
        parameters = inspect.signature(anthropic.resources.Messages.create).parameters
        self._takes_temperature = "temperature" in parameters
        self._takes_thinking = "thinking" in parameters  # anthropic >= 0.47; older ones send it as extra_body
        timeout = anthropic.Timeout(self.timeouts.cloud_read, connect=self.timeouts.cloud_connect)
        return cls(
            api_key=endpoint.credential,
            base_url=endpoint.url,
            max_retries=0,
            timeout=timeout,
            http_client=sdk_http_client(anthropic, asynchronous),
        )

    def _params(self, request: ChatRequest, budget: float, stream: bool) -> dict[str, Any]:
        system, messages = to_anthropic_messages(request.messages)
        if not messages:
            raise ConfigError("Claude needs at least one user or assistant message besides system messages")
        params: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": self.max_tokens(request),
        }
        if self._takes_temperature:
            params["temperature"] = min(max(request.temperature, 0.0), 1.0)  # Claude's range is [0, 1]
        if system:
            params["system"] = system
        if request.structure is not None:  # structured output: one tool Claude must call, its input the answer
            structure = request.structure
            params["tools"] = [
                {"name": structure.name, "description": "Give the answer.", "input_schema": structure.schema}
            ]
            params["tool_choice"] = {"type": "tool", "name": structure.name}
        if request.tools:
            params["tools"] = to_anthropic_tools(request.tools)
            choice = to_anthropic_tool_choice(request.tool_choice)
            if choice is not None:
                params["tool_choice"] = choice
        if request.think:  # extended thinking: its budget is spent from max_tokens, so the answer keeps its bound
            thinking_budget = THINKING_BUDGETS.get(str(request.think), THINKING_BUDGETS["medium"])
            thinking = {"type": "enabled", "budget_tokens": thinking_budget}
            if self._takes_thinking:
                params["thinking"] = thinking
            else:
                params["extra_body"] = {"thinking": thinking}
            params["max_tokens"] += thinking_budget
            params.pop("temperature", None)  # Claude takes only its default temperature with thinking
        if stream:
            params["stream"] = True
        if budget < self.timeouts.cloud_read:
            params["timeout"] = max(budget, 0.001)
        return params

    def _sdk_errors(self) -> tuple[type[Exception], ...]:
        import anthropic  # noqa: PLC0415

        return (anthropic.AnthropicError, OSError, *sdk_transport_errors())

    def _stream_state(self, endpoint: Endpoint, request: ChatRequest) -> _StreamState:
        return _StreamState(self, endpoint)

    def _response(self, message: Any, request: ChatRequest) -> LLMResponse:
        texts: list[str] = []
        thoughts: list[str] = []
        calls: list[ToolCall] = []
        for block in message.content:
            if block.type == "thinking":
                thoughts.append(block.thinking)
            elif block.type == "text":
                texts.append(block.text)
            elif block.type == "tool_use" and request.structure is not None and block.name == request.structure.name:
                texts = [json.dumps(block.input)]  # the forced tool's input is the structured answer
            elif block.type == "tool_use":
                calls.append(ToolCall(id=block.id, name=block.name, arguments=json.dumps(block.input)))
        prompt = int(message.usage.input_tokens or 0)
        output = int(message.usage.output_tokens or 0)
        return LLMResponse(
            content="".join(texts),
            provider=LLMProvider.CLAUDE,
            model=message.model or self.model,
            tokens_used=prompt + output,
            cost_usd=0.0,
            latency_seconds=0.0,
            raw_response=message.model_dump(),
            input_tokens=prompt,
            output_tokens=output,
            tool_calls=calls,
            finish_reason=FINISH_REASONS.get(message.stop_reason or "", message.stop_reason),
            reasoning="".join(thoughts),
        )


class _StreamState:
    """Collects Messages SSE events: text deltas out; tool_use blocks and usage kept for the end."""

    def __init__(self, provider: AnthropicProvider, endpoint: Endpoint) -> None:
        self.provider = provider
        self.endpoint = endpoint
        self.parts: list[str] = []
        self.thoughts: list[str] = []
        self.blocks: dict[int, dict[str, str]] = {}
        self.model = provider.model
        self.input_tokens = 0
        self.output_tokens = 0
        self.stop_reason: str | None = None
        self.stopped = False

    def feed(self, event: Any) -> Iterator[str]:
        kind = event.type
        if kind == "message_start":
            self.model = event.message.model or self.model
            self.input_tokens = int(event.message.usage.input_tokens or 0)
            self.output_tokens = int(event.message.usage.output_tokens or 0)
        elif kind == "content_block_start" and event.content_block.type == "tool_use":
            block = event.content_block
            self.blocks[event.index] = {"id": block.id, "name": block.name, "arguments": ""}
        elif kind == "content_block_delta":
            delta = event.delta
            if delta.type == "text_delta" and delta.text:
                self.parts.append(delta.text)
                yield delta.text
            elif delta.type == "thinking_delta" and delta.thinking:
                self.thoughts.append(delta.thinking)
                yield Reasoning(delta.thinking)
            elif delta.type == "input_json_delta" and event.index in self.blocks:
                self.blocks[event.index]["arguments"] += delta.partial_json
        elif kind == "message_delta":
            self.stop_reason = event.delta.stop_reason or self.stop_reason
            if event.usage is not None and event.usage.output_tokens is not None:
                self.output_tokens = int(event.usage.output_tokens)
        elif kind == "message_stop":
            self.stopped = True

    def finish(self) -> LLMResponse:
        if not self.stopped:
            raise self.provider.error("stream ended before message_stop", ErrorKind.STREAM, self.endpoint)
        calls = [ToolCall(b["id"], b["name"], b["arguments"] or "{}") for _, b in sorted(self.blocks.items())]
        return LLMResponse(
            content="".join(self.parts),
            provider=LLMProvider.CLAUDE,
            model=self.model,
            tokens_used=self.input_tokens + self.output_tokens,
            cost_usd=0.0,
            latency_seconds=0.0,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            tool_calls=calls,
            finish_reason=FINISH_REASONS.get(self.stop_reason or "", self.stop_reason),
            reasoning="".join(self.thoughts),
        )
