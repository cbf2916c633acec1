"""The providers, one entry each: what config reads, how the router builds its adapter, how doctor probes it.

Config (`Settings`), the router and the CLI loop over `PROVIDERS`; none of them names a provider's env keys,
default endpoint or adapter class. Adding a provider is: an `LLMProvider` value, an adapter module under
`providers/`, an entry here, and its prices and fallback order in `_defaults.py` (docs/client.md, "Adding a
provider"). Adapters are imported only when a router builds one, so `import cortex_client` stays cheap.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._types import LLMProvider

if TYPE_CHECKING:
    from .providers._base import Provider


@dataclass(frozen=True)
class ProviderSpec:
    kind: LLMProvider
    key_env: str | None  # the API key's env name; None: the provider needs no key (Ollama)
    model_env: str
    base_url_env: str
    default_base_url: str
    default_model: str
    adapter: str  # "module:Class" under cortex_client.providers, imported lazily
    aliases: tuple[str, ...] = ()  # other names CORTEX_PROVIDER and default_provider accept
    key_list_env: str | None = None  # a variable holding several keys, preferred over key_env when set

    def env_keys(self) -> tuple[str, ...]:
        keys = (self.key_env, self.key_list_env, self.model_env, self.base_url_env)
        return tuple(k for k in keys if k)

    @property
    def is_local(self) -> bool:
        return self.kind is LLMProvider.OLLAMA

    def build(self, *, model: str, base_urls: tuple[str, ...], api_key: str | None, **common: Any) -> Provider:
        """The adapter instance; `common` holds the router's timeouts and breaker policy, and the local server's
        settings (local_only, api), which cloud adapters do not take."""
        module_name, _, class_name = self.adapter.partition(":")
        cls = getattr(importlib.import_module(f".providers.{module_name}", __package__), class_name)
        if self.key_env is not None:
            common["api_key"] = api_key
        if not self.is_local:  # settings of the local server only
            for local in ("local_only", "api", "num_ctx", "on_truncation"):
                common.pop(local, None)
        provider: Provider = cls(model=model, base_urls=base_urls, **common)
        return provider


# Dated defaults (model ids) are reviewed with the prices in _defaults.py.
PROVIDERS: tuple[ProviderSpec, ...] = (
    ProviderSpec(
        kind=LLMProvider.OLLAMA,
        key_env=None,
        model_env="OLLAMA_MODEL",
        base_url_env="OLLAMA_BASE_URL",  # also OLLAMA_HOST, Ollama's own name (see _config.py)
        default_base_url="http://localhost:11434",
        default_model="llama3.2",
        adapter="ollama:OllamaProvider",
    ),
    ProviderSpec(
        kind=LLMProvider.CLAUDE,
        key_env="ANTHROPIC_API_KEY",
        model_env="CLAUDE_MODEL",
        base_url_env="ANTHROPIC_BASE_URL",
        default_base_url="https://api.anthropic.com",
        default_model="claude-sonnet-4-6",
        adapter="anthropic:AnthropicProvider",
        aliases=("anthropic",),
    ),
    ProviderSpec(
        kind=LLMProvider.KIMI_K2,
        key_env="MOONSHOT_API_KEY",
        model_env="KIMI_MODEL",
        base_url_env="KIMI_BASE_URL",
        default_base_url="https://api.moonshot.ai/v1",
        default_model="kimi-k2.6",
        adapter="openai_compat:KimiProvider",
        aliases=("kimi", "kimi-k2", "moonshot"),
    ),
    ProviderSpec(
        kind=LLMProvider.OPENAI,
        key_env="OPENAI_API_KEY",
        model_env="OPENAI_MODEL",
        base_url_env="OPENAI_BASE_URL",
        default_base_url="https://api.openai.com/v1",
        default_model="gpt-4o-mini",
        adapter="openai_compat:OpenAIProvider",
        key_list_env="OPENAI_API_KEYS",
    ),
)
SPECS: dict[LLMProvider, ProviderSpec] = {spec.kind: spec for spec in PROVIDERS}
_NAMES: dict[str, LLMProvider] = {name: s.kind for s in PROVIDERS for name in (s.kind.value, *s.aliases)}


def lookup_provider(name: str) -> LLMProvider | None:
    """The provider a name or alias means (case and surrounding space ignored), or None."""
    return _NAMES.get(name.strip().lower())


CLOUD: tuple[ProviderSpec, ...] = tuple(spec for spec in PROVIDERS if not spec.is_local)
# Hosts that are never local, refused as an Ollama endpoint in local-only mode: the cloud providers' APIs, and
# ollama.com, where Ollama's `*-cloud` models run (and its subdomains, with every host listed here).
CLOUD_HOSTS: frozenset[str] = frozenset(
    {"ollama.com", *(spec.default_base_url.split("://", 1)[1].split("/", 1)[0] for spec in CLOUD)}
)
