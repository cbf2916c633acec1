"""Structured output: a JSON schema (or a pydantic model class) per request, and the answer checked against it.

Each adapter maps the schema to its provider's own mechanism (Ollama `format`, OpenAI and Kimi `response_format`,
Claude a forced tool); the router parses the answer and validates it here. An answer that is not JSON or does not
match is that provider's failure (retried, then the next provider answers), never an exception in the caller.

Validation uses `jsonschema` where it is installed (the `structured` extra); otherwise the subset of JSON Schema
that structured output uses (type, properties, required, additionalProperties, items, enum, const, anyOf, the
numeric and length bounds) is checked here. Nothing is imported until a request gives a schema.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from ._errors import ConfigError

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


@dataclass(frozen=True)
class Structure:
    """What a request asked for: the schema sent, its name, and the pydantic model that builds `parsed`."""

    schema: dict[str, Any]
    name: str
    model: Any = None  # a pydantic BaseModel subclass, or None


def structure_of(value: Any) -> Structure | None:
    """A request's `json_schema` argument: None, a JSON schema (dict), or a pydantic model class."""
    if value is None:
        return None
    if isinstance(value, dict):
        if value.get("type") not in (None, "object") and "anyOf" not in value:
            raise ConfigError("json_schema must describe a JSON object (type: object)")
        return Structure(value, _name(str(value.get("title") or "answer")))
    schema_of = getattr(value, "model_json_schema", None)
    if isinstance(value, type) and callable(schema_of):
        schema = schema_of()
        return Structure(schema, _name(str(schema.get("title") or value.__name__)), value)
    raise ConfigError(f"json_schema must be a JSON schema (dict) or a pydantic model class, got {type(value).__name__}")


def _name(title: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "_-" else "_" for c in title)[:64]
    return cleaned or "answer"


def parse(text: str, structure: Structure) -> tuple[Any, str | None]:
    """(the parsed answer, None), or (None, why it does not match)."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        return None, f"not JSON ({exc})"
    if structure.model is not None:
        try:
            return structure.model.model_validate(data), None
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            return None, str(exc).splitlines()[0]
    problem = _check(data, structure.schema)
    return (None, problem) if problem else (data, None)


def _check(data: Any, schema: dict[str, Any]) -> str | None:
    try:
        import jsonschema  # type: ignore[import-untyped]  # noqa: PLC0415 - optional, and slow to import
    except ImportError:
        return _validate(data, schema, schema, "$")
    error = jsonschema.exceptions.best_match(jsonschema.validators.validator_for(schema)(schema).iter_errors(data))
    if error is None:
        return None
    where = "$" + "".join(f"[{p!r}]" for p in error.absolute_path)
    return f"{where}: {error.message}"


def _validate(data: Any, schema: Any, root: dict[str, Any], where: str) -> str | None:
    """The subset of JSON Schema that structured output uses; the first problem found, or None."""
    if not isinstance(schema, dict):
        return None
    if "$ref" in schema and isinstance(schema["$ref"], str) and schema["$ref"].startswith("#/"):
        target: Any = root
        for part in schema["$ref"][2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return _validate(data, target, root, where)
    if "anyOf" in schema and all(_validate(data, option, root, where) for option in schema["anyOf"]):
        return f"{where}: matches none of anyOf"
    kinds = schema.get("type")
    if kinds is not None:
        names = kinds if isinstance(kinds, list) else [kinds]
        allowed = tuple(t for n in names for t in _TYPES.get(n, ()))
        if not isinstance(data, allowed) or (isinstance(data, bool) and bool not in allowed):
            return f"{where}: expected {' or '.join(names)}, got {type(data).__name__}"
        if isinstance(data, float) and "integer" in names and "number" not in names:
            return f"{where}: expected integer"
    if "enum" in schema and data not in schema["enum"]:
        return f"{where}: {data!r} is not one of {schema['enum']}"
    if "const" in schema and data != schema["const"]:
        return f"{where}: expected {schema['const']!r}"
    if isinstance(data, (int, float)) and not isinstance(data, bool):
        if not math.isfinite(data):
            return f"{where}: not a finite number"
        if "minimum" in schema and data < schema["minimum"]:
            return f"{where}: below the minimum {schema['minimum']}"
        if "maximum" in schema and data > schema["maximum"]:
            return f"{where}: above the maximum {schema['maximum']}"
    if isinstance(data, str):
        if len(data) < schema.get("minLength", 0):
            return f"{where}: shorter than {schema['minLength']}"
        if "maxLength" in schema and len(data) > schema["maxLength"]:
            return f"{where}: longer than {schema['maxLength']}"
    if isinstance(data, list):
        if len(data) < schema.get("minItems", 0):
            return f"{where}: fewer than {schema['minItems']} items"
        if "maxItems" in schema and len(data) > schema["maxItems"]:
            return f"{where}: more than {schema['maxItems']} items"
        for index, item in enumerate(data):
            problem = _validate(item, schema.get("items"), root, f"{where}[{index}]")
            if problem:
                return problem
    if isinstance(data, dict):
        properties = schema.get("properties") or {}
        for key in schema.get("required") or ():
            if key not in data:
                return f"{where}: {key!r} is required"
        for key, value in data.items():
            if key in properties:
                problem = _validate(value, properties[key], root, f"{where}[{key!r}]")
            elif schema.get("additionalProperties") is False:
                problem = f"{where}: {key!r} is not allowed"
            else:
                problem = _validate(value, schema.get("additionalProperties"), root, f"{where}[{key!r}]")
            if problem:
                return problem
    return None


def response_format(structure: Structure) -> dict[str, Any]:
    """OpenAI's (and Kimi's, and llama.cpp's server's) `response_format` for this schema."""
    return {"type": "json_schema", "json_schema": {"name": structure.name, "schema": structure.schema}}
