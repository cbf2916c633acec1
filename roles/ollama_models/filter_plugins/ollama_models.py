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


def _bundle_manifest(name: str, entry: Any) -> str:
    """The manifest path a bundle's index gives for a model, which must be the model's own place in the bundle
    (`manifests/<host>/<namespace>/<model>/<tag>`): the role reads that file on the controller, so an index that
    points anywhere else (`../../etc/...`, an absolute path, another model's manifest) is refused."""
    path, _, tag = name.rpartition(":")
    expected = "/".join(["manifests", *path.split("/"), tag])
    given = entry.get("manifest") if isinstance(entry, dict) else None
    if given != expected:
        raise AnsibleFilterError(
            f"the bundle's index.json gives {given!r} as the manifest of {name}, not {expected!r}: the bundle is "
            "damaged or was altered; build it again with playbooks/airgap_bundle.yml"
        )
    return expected


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
                manifest=_bundle_manifest(name, bundled[name]) if source == "bundle" else "",
            )
        )
    if prune:
        keep = {item["name"] for item in plan if item["state"] == "present"}
        for listed in present:
            name = ollama_model_name(listed)
            if name not in keep and name not in seen:
                plan.append(_action(name, "absent", "pull"))
    return plan


def ollama_models_space_problem(planned: list[dict[str, Any]], store: str) -> str:
    """Whether all the planned imports and creates fit in the store together: the sum of what each writes (a blob
    two models share counted once), against the free space ollama_model reported in its plan. "" if they fit.
    Each model's plan was checked alone; staging several must not fill the filesystem between them."""
    needs: dict[str, int] = {}
    free = spare = None
    for result in planned:
        if "free_bytes" in result:
            free, spare = int(result["free_bytes"]), int(result["spare_bytes"])
        for need in result.get("needs") or []:
            needs[need["digest"]] = max(needs.get(need["digest"], 0), int(need["bytes"]))
    total = sum(needs.values())
    if free is None or total == 0 or total + (spare or 0) <= free:
        return ""
    names = [r["__ollama_models_item"]["name"] for r in planned if r.get("needs")]
    return (
        f"not enough free space for {len(names)} models together ({', '.join(map(ollama_model_short, names))}): they "
        f"need {total} bytes plus {spare} spare, {store} has {free} free; each would fit alone, so add fewer at a "
        "time or free space there. Nothing was copied"
    )


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "ollama_model_name": ollama_model_name,
            "ollama_model_short": ollama_model_short,
            "ollama_api_url": ollama_api_url,
            "ollama_models_plan": ollama_models_plan,
            "ollama_models_space_problem": ollama_models_space_problem,
        }
