"""The caller's side of a request, checked before anything is sent.

A malformed request fails the same way at every provider: sent anyway, a server answers it with a 400 (no harm) or,
like llama.cpp's Python server, with a 500 that the router would retry and count against the endpoint. So each
argument is checked here and a mistake is a `ConfigError` that names the field, raised before any call.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ._errors import ConfigError
from ._types import Message, TaskType, Tool

_ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
_TOOL_CHOICES = ("auto", "none", "required")
_TOOL_SHAPE = '{"type": "function", "function": {"name": ..., "description": ..., "parameters": {JSON schema}}}'


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def checked_messages(messages: list[Message]) -> list[Message]:
    """The caller's conversation, checked (a mistake here would fail at every provider and must not count against
    any), with tool results given as objects turned into JSON text."""
    if not isinstance(messages, list) or not messages:
        raise ConfigError("messages must be a non-empty list of message dicts")
    out: list[Message] = []
    for index, given in enumerate(messages):
        where = f"messages[{index}]"
        message = given
        if not isinstance(message, dict):
            raise ConfigError(f"{where} is a {type(message).__name__}, not a dict with role and content")
        role = message.get("role")
        if role not in _ROLES:
            raise ConfigError(f"{where} has role {role!r}; expected one of {sorted(_ROLES)}")
        tool_calls = message.get("tool_calls")
        content = message.get("content")
        if content is None and not (role == "assistant" and tool_calls):
            # Only an assistant turn that calls tools may come without text (OpenAI's rule).
            raise ConfigError(f"{where}.content is missing: a {role} message needs text (or content parts)")
        if role == "tool" and not (isinstance(message.get("tool_call_id"), str) and message["tool_call_id"]):
            raise ConfigError(f"{where}.tool_call_id is missing: a tool result names the tool call it answers")
        if role == "tool" and isinstance(content, (dict, list)) and not _is_content_parts(content):
            try:
                message = {**message, "content": json.dumps(content)}  # a tool's result object, as JSON text
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"{where}.content: the tool result cannot be sent as JSON ({exc})") from None
        elif content is not None and not isinstance(content, str) and not _is_content_parts(content):
            raise ConfigError(f"{where}.content must be text or a list of content parts, not {type(content).__name__}")
        if tool_calls is not None and not isinstance(tool_calls, list):
            raise ConfigError(f"{where}.tool_calls must be a list of tool calls")
        for call in tool_calls or ():
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                raise ConfigError(f"{where}.tool_calls: a tool call needs function.name")
            arguments = function.get("arguments")
            if isinstance(arguments, str) and arguments.strip():
                try:
                    parsed = json.loads(arguments)
                except ValueError:
                    parsed = None
                if not isinstance(parsed, dict):
                    raise ConfigError(f"{where}: arguments of tool call {call.get('id')!r} are not a JSON object")
            elif arguments is not None and not isinstance(arguments, (str, dict)):
                raise ConfigError(f"{where}: arguments of tool call {call.get('id')!r} must be JSON text or a dict")
        out.append(message)
    return out


def _is_content_parts(content: object) -> bool:
    return isinstance(content, list) and all(isinstance(part, dict) and "type" in part for part in content)


def checked_tools(tools: list[Tool] | None) -> list[Tool] | None:
    """Tools in the OpenAI chat format, which every adapter translates from; None (or []) for none."""
    if tools is None:
        return None
    if not isinstance(tools, list):
        raise ConfigError(f"tools must be a list of tools like {_TOOL_SHAPE}")
    for index, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not (
            isinstance(tool, dict)
            and tool.get("type", "function") == "function"
            and isinstance(function, dict)
            and isinstance(function.get("name"), str)
            and function["name"]
        ):
            raise ConfigError(f"tools[{index}] is not an OpenAI tool: expected {_TOOL_SHAPE}")
        if not isinstance(function.get("parameters", {}), dict):
            raise ConfigError(f"tools[{index}].function.parameters must be a JSON schema object")
    return tools or None


def checked_tool_choice(choice: Any, tools: list[Tool] | None) -> str | dict[str, Any] | None:
    """None, "auto", "none", "required", or {"type": "function", "function": {"name": NAME}} naming one of the tools
    ({"type": "function", "name": NAME}, the Responses API's form, is taken too and sent in the chat form)."""
    if choice is None or choice in _TOOL_CHOICES:
        if choice == "required" and not tools:
            raise ConfigError('tool_choice "required" needs tools')
        return choice  # type: ignore[no-any-return]
    if isinstance(choice, dict) and choice.get("type", "function") == "function":
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else choice.get("name")
        names = [tool["function"]["name"] for tool in tools or ()]
        if isinstance(name, str) and name in names:
            return {"type": "function", "function": {"name": name}}
        if isinstance(name, str):
            raise ConfigError(
                f"tool_choice names {name!r}, which is not among the tools ({', '.join(names) or 'none'})"
            )
    raise ConfigError(
        f"tool_choice must be None, {', '.join(map(repr, _TOOL_CHOICES))} or "
        f'{{"type": "function", "function": {{"name": ...}}}}, got {_shown(choice)}'
    )


def checked_temperature(value: Any) -> float:
    """A real number; each adapter clamps it to its provider's range (Claude's and Kimi's are [0, 1])."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"temperature must be a number (0 to 2 for OpenAI), got {_shown(value)}")
    return float(value)


def checked_max_tokens(value: Any) -> int | None:
    """None (the provider's default bound) or a positive whole number."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"max_tokens must be a whole number of tokens, got {_shown(value)}")
    if value < 1:
        raise ConfigError(f"max_tokens must be positive, got {value}")
    return value


def checked_num_ctx(value: Any, name: str) -> int | None:
    """None (the model's context window) or a whole number of tokens, at least 256."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 256:
        raise ConfigError(f"{name} must be a whole number of tokens (at least 256), got {_shown(value)}")
    return value


THINK_LEVELS = ("low", "medium", "high")


def checked_think(value: Any) -> bool | str | None:
    """None (the model's default), True/False, or a level."""
    if value is None or isinstance(value, bool) or value in THINK_LEVELS:
        return value  # type: ignore[no-any-return]
    raise ConfigError(f"think must be True, False, None or one of {THINK_LEVELS}, got {_shown(value)}")


def checked_task_type(value: Any) -> TaskType:
    if not isinstance(value, TaskType):
        raise ConfigError(f"task_type must be a TaskType (e.g. TaskType.USER_CHAT), got {_shown(value)}")
    return value


def check_number(owner: str, name: str, value: Any, *, minimum: float, inclusive: bool = True) -> None:
    """A policy field (`Timeouts.deadline`, ...): a real number at or above (or, not inclusive, above) `minimum`."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)
    if not number or value < minimum or (not inclusive and value == minimum):
        bound = f"{'at least' if inclusive else 'more than'} {minimum:g}"
        raise ConfigError(f"{owner}.{name} must be a number {bound}, got {_shown(value)}")


def check_count(owner: str, name: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{owner}.{name} must be a whole number of at least {minimum}, got {_shown(value)}")


def check_instance(name: str, value: Any, cls: type) -> None:
    """An argument that must be one of our value objects (a dict of its fields is the usual mistake)."""
    if value is not None and not isinstance(value, cls):
        raise ConfigError(f"{name} must be a {cls.__name__}(...), not a {type(value).__name__}")
