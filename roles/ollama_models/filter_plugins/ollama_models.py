"""Filters of role ollama_models: model names as Ollama reads them, and the plan that turns the declared list
into one action per model. Pure functions, tested on their own (tests/test_ollama_models_filters.py)."""

from __future__ import annotations

import re
from typing import Any

from ansible.errors import AnsibleFilterError

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
# types/model/name.go: which characters each part may hold, and how long it may be.
PART_RE = {
    "host": re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,349}$"),
    "namespace": re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,79}$"),
    "model": re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}$"),
    "tag": re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}$"),
}
MODEL_KEYS = {"name", "state", "insecure", "gguf", "template", "system", "parameters"}


def ollama_model_name(raw: Any) -> str:
    """`[scheme://][host/][namespace/]model[:tag][@digest]` -> `host/namespace/model:tag`, with Ollama's defaults
    (`llama3.2` is `registry.ollama.ai/library/llama3.2:latest`, never `llama3.2:1b`)."""
    if not isinstance(raw, str) or not raw.strip():
        raise AnsibleFilterError(f"model name {raw!r} is empty or not a string")
    s = raw.strip()
    for scheme in ("https://", "http://"):
        if s.lower().startswith(scheme):
            s = s[len(scheme) :]
    s = s.split("@", 1)[0]
    tag = DEFAULT_TAG
    slash, colon = s.rfind("/"), s.rfind(":")
    if colon > slash:
        s, tag = s[:colon], s[colon + 1 :]
    pieces = s.split("/")
    if len(pieces) > 3:
        raise AnsibleFilterError(f"model name {raw!r} has more than host/namespace/model")
    parts = {
        "host": pieces[-3] if len(pieces) == 3 else DEFAULT_HOST,
        "namespace": pieces[-2] if len(pieces) >= 2 else DEFAULT_NAMESPACE,
        "model": pieces[-1],
        "tag": tag,
    }
    for kind, value in parts.items():
        if not PART_RE[kind].match(value):
            raise AnsibleFilterError(f"model name {raw!r}: {kind} {value!r} is not valid in an Ollama name")
    return f"{parts['host']}/{parts['namespace']}/{parts['model']}:{parts['tag']}"


def ollama_model_short(name: str) -> str:
    """How Ollama lists a normalised name (`ollama list`, /api/tags): default host and namespace left out."""
    path, _, tag = name.rpartition(":")
    host, namespace, model = path.split("/")
    if host == DEFAULT_HOST and namespace == DEFAULT_NAMESPACE:
        return f"{model}:{tag}"
    if host == DEFAULT_HOST:
        return f"{namespace}/{model}:{tag}"
    return name


def ollama_api_url(bind: str) -> str:
    """The URL a client on the host uses for a server bound to `bind` (OLLAMA_HOST form): a wildcard bind is
    reached on loopback."""
    value = bind.strip() or "127.0.0.1:11434"
    scheme = "http"
    if "://" in value:
        scheme, value = value.split("://", 1)
    host, sep, port = value.rpartition(":")
    if not sep or "]" in port:
        host, port = value, "11434"
    host = host.strip("[]") or "127.0.0.1"
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"{scheme}://{'[' + host + ']' if ':' in host else host}:{port}"


def _action(name: str, state: str, source: str, **details: Any) -> dict[str, Any]:
    """One plan entry; every key present, so the role's tasks never meet an undefined one."""
    base = {"insecure": False, "gguf": "", "template": "", "system": "", "parameters": {}, "manifest": ""}
    return {"name": name, "state": state, "source": source, **base, **details}


def ollama_models_plan(
    declared: list[dict[str, Any]],
    *,
    present: list[str],
    bundle: dict[str, Any] | None,
    prune: bool,
) -> list[dict[str, Any]]:
    """One action per model: {name, state, source, ...} in the declared order, then prunes.

    A present model comes from its GGUF file when it names one, else from the bundle when the bundle holds it,
    else from a pull. With `prune`, present models that are not declared present are removed."""
    if not isinstance(declared, list):
        raise AnsibleFilterError("ollama_models must be a list of {name, state} entries")
    bundled = (bundle or {}).get("models", {})
    plan: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    for item in declared:
        entry = {"name": item} if isinstance(item, str) else item
        if not isinstance(entry, dict) or "name" not in entry:
            raise AnsibleFilterError(f"ollama_models entry {entry!r} needs a name")
        unknown = set(entry) - MODEL_KEYS
        if unknown:
            raise AnsibleFilterError(f"ollama_models entry {entry['name']!r}: unknown keys {sorted(unknown)}")
        name = ollama_model_name(entry["name"])
        state = entry.get("state", "present")
        if state not in ("present", "absent"):
            raise AnsibleFilterError(f"ollama_models entry {entry['name']!r}: state must be present or absent")
        if name in seen:
            raise AnsibleFilterError(
                f"ollama_models lists {name} twice ({seen[name]!r} and {entry['name']!r}); list each model once"
            )
        seen[name] = entry["name"]
        source = "gguf" if entry.get("gguf") else "bundle" if name in bundled else "pull"
        plan.append(
            _action(
                name,
                state,
                source,
                insecure=bool(entry.get("insecure", False)),
                gguf=entry.get("gguf", ""),
                template=entry.get("template", ""),
                system=entry.get("system", ""),
                parameters=entry.get("parameters", {}),
                manifest=bundled[name]["manifest"] if source == "bundle" else "",
            )
        )
    if prune:
        keep = {item["name"] for item in plan if item["state"] == "present"}
        for listed in present:
            name = ollama_model_name(listed)
            if name not in keep and name not in seen:
                plan.append(_action(name, "absent", "pull"))
    return plan


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "ollama_model_name": ollama_model_name,
            "ollama_model_short": ollama_model_short,
            "ollama_api_url": ollama_api_url,
            "ollama_models_plan": ollama_models_plan,
        }
