"""Configuration: the precedence chain, `.env` parsing (stdlib only) and the policy value objects.

Precedence, highest first: constructor arguments, process environment, `./.env`, `~/.cortex/.env`,
`/etc/cortex/.env`. `Settings.load` takes every source explicitly so tests never read the real files;
`Settings.load()` with no arguments uses the real ones. Each value remembers where it came from
(for `cortex-llm doctor`); secrets never appear in `repr()`.
"""

from __future__ import annotations

import io
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TypeVar

from . import _defaults
from ._checks import check_count, check_number
from ._errors import ConfigError
from ._registry import CLOUD, PROVIDERS, ProviderSpec, lookup_provider
from ._types import LLMProvider

# Every key the client reads: the router's own, then each provider's (the registry's env names).
KEYS: tuple[str, ...] = (
    "CORTEX_PROVIDER",
    "CORTEX_LOCAL_ONLY",
    "OLLAMA_HOST",
    "OLLAMA_API",
    *(key for spec in PROVIDERS for key in spec.env_keys()),
)
SECRET_KEYS = frozenset(key for spec in PROVIDERS for key in (spec.key_env, spec.key_list_env) if key)
ETC_DIR = Path("/etc/cortex")
T = TypeVar("T")

# A key in a .env file with one of these prefixes but not in KEYS is likely a typo of ours (CORTEX_PROVDER);
# other keys belong to other programs sharing the file and are not worth a word.
_OUR_PREFIXES = ("CORTEX_", "OLLAMA_", "ANTHROPIC_", "MOONSHOT_", "OPENAI_", "CLAUDE_", "KIMI_")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def parse_dotenv(text: str, source: str = "<string>") -> tuple[dict[str, str], list[str]]:
    """Values of a .env file by python-dotenv's rules (multi-line quoted values, a comment after a quoted value,
    `export`, a BOM), and a warning for each line it cannot parse or that sets no value. Warnings name the file,
    the line and at most the key, never a value (a line that failed to parse may hold a secret)."""
    from dotenv.parser import parse_stream  # noqa: PLC0415 - only when a .env file exists

    values: dict[str, str] = {}
    warnings: list[str] = []
    for binding in parse_stream(io.StringIO(text.removeprefix("\ufeff"))):
        line = binding.original.line
        if binding.error:
            warnings.append(f"{source}:{line}: not a KEY=value line (python-dotenv syntax); skipped")
        elif binding.key is not None and binding.value is None:
            # A line without '=' may be a pasted secret: name it only when it is one of our keys.
            name = f"{binding.key} has" if binding.key in KEYS else "the line has"
            warnings.append(f"{source}:{line}: {name} no '=value'; skipped")
        elif binding.key is not None and binding.value is not None:
            values[binding.key] = binding.value
            if binding.key not in KEYS and binding.key.startswith(_OUR_PREFIXES):
                warnings.append(f"{source}:{line}: {binding.key} is not a setting cortex_client reads; ignored")
    return values, warnings


def _credential_keys(spec: ProviderSpec) -> tuple[str, ...]:
    """The env names a cloud provider's key and base URL are read from: always from one source together."""
    return tuple(k for k in (spec.key_env, spec.key_list_env, spec.base_url_env) if k)


def split_keys(value: str) -> tuple[str, ...]:
    """A key or a list of keys (separated by commas, semicolons or whitespace, as the original accepted), in
    order, without repeats."""
    return tuple(dict.fromkeys(k for k in re.split(r"[\s,;]+", value) if k))


def parse_bool(value: str, key: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"{key} must be true or false (1/0, yes/no, on/off)")


PROVIDER_CHOICES = "|".join(p.value for p in LLMProvider)


def parse_provider(value: str, key: str = "default_provider") -> LLMProvider:
    """A provider named by the caller (aliases such as `kimi` or `anthropic` included); anything else is the
    caller's error."""
    provider = lookup_provider(value)
    if provider is None:
        raise ConfigError(f"{key} must be one of {PROVIDER_CHOICES} (or an alias), got {value!r}")
    return provider


def normalize_url(value: str, key: str) -> str:
    url = value.strip().rstrip("/")
    if not re.match(r"^https?://[^/\s]+", url):
        raise ConfigError(f"{key} must be an http:// or https:// URL")
    refuse_userinfo(url, key)
    return url


# The userinfo of a URL (`user:password@` or `token@`) up to the host; a password may hold any character but '@'
# and '/' (which the URL syntax would have needed escaped), the user name no ':' either.
_USERINFO = re.compile(r"^(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^/@:]*)(?::(?P<password>[^/@]*))?@")


def refuse_userinfo(url: str, key: str) -> None:
    """A base URL must not carry credentials: httpx turns `user:pass@` into `Authorization: Basic ...` on every
    request, which replaces the API key of a bearer-token provider (Kimi, OpenAI) and reaches any server, echoing
    ones included. Refused rather than stripped, so a URL never silently means something else."""
    if _USERINFO.match(url):
        raise ConfigError(
            f"{key} has a user name or password in the URL ({redact_url(url)}): cortex_client never sends URL "
            "credentials to a provider; remove the 'user:password@' part"
        )


def redact_url(url: str) -> str:
    """The URL with its userinfo masked for anything shown: `http://user:***@host`, `http://***@host`."""

    def masked(m: re.Match[str]) -> str:
        if m["password"] is None:  # a lone user name is often a token
            return f"{m['scheme']}***@"
        return f"{m['scheme']}{m['user']}:***@"

    return _USERINFO.sub(masked, url)


def url_secrets(urls: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The secrets in these URLs' userinfo (the password, a lone user name, and their HTTP Basic form), for
    redaction of text that may quote them."""
    import base64  # noqa: PLC0415 - only for URLs that carry credentials

    found: list[str] = []
    for url in urls:
        m = _USERINFO.match(url)
        if m is None:
            continue
        secret = m["password"] if m["password"] is not None else m["user"]
        basic = f"{m['user']}:{m['password'] or ''}".encode()
        found += [s for s in (secret, base64.b64encode(basic).decode()) if s]
    return tuple(found)


def parse_ollama_urls(value: str, key: str) -> tuple[str, ...]:
    """A comma-separated list of endpoints (a pool). Accepts OLLAMA_HOST style `host:port` too."""
    urls: list[str] = []
    for item in value.split(","):
        part = item.strip()
        if not part:
            continue
        if "://" not in part:
            host, _, port = part.partition(":")
            # 0.0.0.0 is a bind address, not one to connect to (same mapping as ollama-python)
            host = "127.0.0.1" if host in ("", "0.0.0.0") else host
            part = f"http://{host}:{port or 11434}"
        url = normalize_url(part, key)
        if url not in urls:
            urls.append(url)
    if not urls:
        raise ConfigError(f"{key} is empty")
    return tuple(urls)


def _read_env_file(path: Path) -> tuple[dict[str, str], list[str], str | None]:
    """Values from one file, its parse warnings, and a note if it could not be read (a missing file is no
    news)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, [], None
    except UnicodeDecodeError:
        return {}, [], f"{path}: not UTF-8 text; skipped"
    except OSError as exc:  # e.g. /etc/cortex/.env is 0640 root:cortex and we are not in the group
        return {}, [], f"{path}: not readable ({exc.strerror})"
    values, warnings = parse_dotenv(text, str(path))
    return values, warnings, None


@dataclass(frozen=True)
class Settings:
    """Resolved configuration. `sources` maps each set key to where its value came from."""

    provider: LLMProvider | None = None
    local_only: bool = False
    ollama_base_urls: tuple[str, ...] = (_defaults.DEFAULT_BASE_URLS[LLMProvider.OLLAMA],)
    # What the OLLAMA_BASE_URL endpoints speak: auto (Ollama's /api/chat, or /v1 for another server), native, openai
    ollama_api: str = "auto"
    # Per provider, only where configured: API keys, model ids, base URLs (Ollama's are ollama_base_urls).
    api_keys: Mapping[LLMProvider, str] = field(default_factory=dict, repr=False)
    models: Mapping[LLMProvider, str] = field(default_factory=dict)
    base_urls: Mapping[LLMProvider, str] = field(default_factory=dict)
    sources: Mapping[str, str] = field(default_factory=dict)
    unreadable: tuple[str, ...] = ()
    # Settings that were not used, and why (e.g. a CORTEX_PROVIDER meant for another program); never values.
    warnings: tuple[str, ...] = ()
    file_warnings: tuple[str, ...] = field(default=(), repr=False)  # the .env files' part of `warnings`
    raw: Mapping[str, str] = field(default_factory=dict, repr=False)
    # `load(lenient=True)` only (cortex-llm doctor): each value that could not be used, naming its key and source
    # (never the value); the settings hold the default in its place (local-only mode on, for a bad CORTEX_LOCAL_ONLY).
    problems: tuple[str, ...] = ()
    files: tuple[str, ...] = ()  # the .env files read, highest precedence first

    def __repr__(self) -> str:
        parts = []
        for f in fields(self):
            if f.name == "raw":
                continue
            value = getattr(self, f.name)
            if f.name == "api_keys":
                value = {kind.value: "<set>" for kind in value}
            elif f.name == "ollama_base_urls":
                value = tuple(redact_url(url) for url in value)
            elif f.name == "base_urls":
                value = {kind: redact_url(url) for kind, url in value.items()}
            parts.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(parts)})"

    def secrets(self) -> tuple[str, ...]:
        """The configured secret values, for redaction of text that might echo them."""
        keys = tuple(key for value in self.api_keys.values() for key in split_keys(value))
        return keys + url_secrets([*self.ollama_base_urls, *self.base_urls.values()])

    @classmethod
    def load(
        cls,
        overrides: Mapping[str, str | None] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        cwd: Path | str | None = None,
        home: Path | str | None = None,
        etc_dir: Path | str | None = None,
        lenient: bool = False,
    ) -> Settings:
        """Resolve every key through the chain. `None` for a source means the real one
        (os.environ, the current directory, the home directory, /etc/cortex). A value the client cannot use is a
        ConfigError listing every such value; with `lenient=True` they are listed in `problems` instead."""
        env = os.environ if environ is None else environ
        files = [
            Path.cwd() / ".env" if cwd is None else Path(cwd) / ".env",
            (Path.home() if home is None else Path(home)) / ".cortex" / ".env",
            (ETC_DIR if etc_dir is None else Path(etc_dir)) / ".env",
        ]
        layers: list[tuple[str, Mapping[str, str | None]]] = [
            ("argument", overrides or {}),
            ("environment", env),
        ]
        unreadable: list[str] = []
        file_warnings: list[str] = []
        for path in files:
            values, warnings, note = _read_env_file(path)
            layers.append((str(path), values))
            file_warnings += warnings
            if note:
                unreadable.append(note)

        def value(layer: Mapping[str, str | None], key: str) -> str | None:
            found = layer.get(key)
            return found.strip() if found is not None and found.strip() != "" else None

        raw: dict[str, str] = {}
        sources: dict[str, str] = {}
        grouped = {key for spec in CLOUD for key in _credential_keys(spec)}
        for key in KEYS:
            if key in grouped:
                continue
            for source, layer in layers:
                found = value(layer, key)
                if found is not None:
                    raw[key], sources[key] = found, source
                    break
        # A cloud provider's key and base URL come from one source, the first that sets either: a ./.env (say, in
        # a cloned repository) that sets only a base URL must not receive a key from elsewhere. The model carries no
        # secret and goes nowhere by itself: it comes from any source, by precedence, like every other key.
        for spec in CLOUD:
            group = _credential_keys(spec)
            owner = next(((src, layer) for src, layer in layers if any(value(layer, k) for k in group)), None)
            if owner is None:
                continue
            source, layer = owner
            for key in group:
                found = value(layer, key)
                if found is not None:
                    raw[key], sources[key] = found, source
            for other, other_layer in layers:
                ignored = [k for k in group if other != source and value(other_layer, k) and k not in raw]
                if ignored:
                    file_warnings.append(
                        f"{', '.join(ignored)} from {other} ignored: {spec.kind.value}'s key and base URL "
                        f"are taken together from {source}"
                    )
        # Local-only mode can be switched on by any source, and off by none: a lower one only ever tightens it.
        for source, layer in layers:
            found = value(layer, "CORTEX_LOCAL_ONLY")
            if found is None:
                continue
            try:
                on = parse_bool(found, "CORTEX_LOCAL_ONLY")
            except ConfigError:
                on = True  # a value nobody can read is no permission to leave the host; _from_raw reports it
            if on:
                raw["CORTEX_LOCAL_ONLY"], sources["CORTEX_LOCAL_ONLY"] = found, source
                break
        settings = cls._from_raw(raw, sources, tuple(unreadable), tuple(file_warnings), lenient=lenient)
        return replace(settings, files=tuple(str(path) for path in files))

    def merged(self, overrides: Mapping[str, str | None]) -> Settings:
        """These settings with constructor arguments (keyed like the env) on top."""
        given = {k: v.strip() for k, v in overrides.items() if v is not None and v.strip()}
        if not given:
            return self
        unknown = set(given) - set(KEYS)
        if unknown:
            raise ConfigError(f"unknown configuration keys: {sorted(unknown)}")
        sources = {**self.sources, **dict.fromkeys(given, "argument")}
        merged = self._from_raw(
            {**self.raw, **given}, sources, self.unreadable, self.file_warnings, lenient=bool(self.problems)
        )
        return replace(merged, files=self.files)

    @classmethod
    def _from_raw(
        cls,
        raw: dict[str, str],
        sources: dict[str, str],
        unreadable: tuple[str, ...],
        file_warnings: tuple[str, ...],
        *,
        lenient: bool = False,
    ) -> Settings:
        # Every value is parsed, and every one the client cannot use is noted, so that one run names them all
        # (cortex-llm doctor used to need a fix-and-rerun round per bad value).
        problems: list[str] = []

        def parsed(key: str, parse: Callable[[str, str], T], default: T, values: Mapping[str, str] = raw) -> T:
            try:
                return parse(values[key], f"{key} (from {sources.get(key, 'argument')})")
            except ConfigError as exc:
                problems.append(str(exc))
                return default

        # OLLAMA_HOST is the official name, read by Ollama's own CLI. A pool is checked entry by entry, so that a bad
        # one is named and the good ones still serve (and are checked by doctor).
        ollama_urls: tuple[str, ...] = (_defaults.DEFAULT_BASE_URLS[LLMProvider.OLLAMA],)
        pool_key = next((key for key in ("OLLAMA_BASE_URL", "OLLAMA_HOST") if key in raw), None)
        if pool_key is not None:
            good: list[str] = []
            none: tuple[str, ...] = ()
            for item in [item for item in raw[pool_key].split(",") if item.strip()] or [""]:
                good += [url for url in parsed(pool_key, parse_ollama_urls, none, {pool_key: item}) if url not in good]
            ollama_urls = tuple(good) or ollama_urls
        # CORTEX_PROVIDER is shared with the host application (Cortex's own `fake` provider, say): a name that is
        # none of ours is noted and left to the routing table, never a reason to fail.
        provider = lookup_provider(raw["CORTEX_PROVIDER"]) if "CORTEX_PROVIDER" in raw else None
        warnings = list(file_warnings)
        if "CORTEX_PROVIDER" in raw and provider is None:
            warnings.append(
                f"CORTEX_PROVIDER (from {sources['CORTEX_PROVIDER']}) names none of {PROVIDER_CHOICES}: "
                "the routing table decides"
            )
        ollama_api = parsed("OLLAMA_API", _parse_api, "auto") if "OLLAMA_API" in raw else "auto"
        local_only = parsed("CORTEX_LOCAL_ONLY", parse_bool, True) if "CORTEX_LOCAL_ONLY" in raw else False
        base_urls = {
            s.kind: url
            for s in PROVIDERS
            if not s.is_local and s.base_url_env in raw and (url := parsed(s.base_url_env, normalize_url, ""))
        }
        if problems and not lenient:
            raise ConfigError(
                problems[0]
                if len(problems) == 1
                else f"{len(problems)} configuration problems:\n  " + "\n  ".join(problems)
            )
        return cls(
            provider=provider,
            ollama_api=ollama_api,
            warnings=tuple(warnings),
            file_warnings=file_warnings,
            local_only=local_only,
            ollama_base_urls=ollama_urls,
            # A key list (OPENAI_API_KEYS) wins over the single-key variable, as the original documented.
            api_keys={
                s.kind: raw[s.key_list_env] if s.key_list_env in raw else raw[s.key_env]
                for s in PROVIDERS
                if s.key_env and (s.key_env in raw or s.key_list_env in raw)
            },
            models={s.kind: raw[s.model_env] for s in PROVIDERS if s.model_env in raw},
            base_urls=base_urls,
            sources=sources,
            unreadable=unreadable,
            raw=raw,
            problems=tuple(problems),
        )


def _parse_api(value: str, key: str) -> str:
    api = value.lower()
    if api not in ("auto", "native", "openai"):
        raise ConfigError(f"{key} must be auto, native or openai")
    return api


@dataclass(frozen=True)
class Timeouts:
    """Seconds. `deadline` bounds a whole request: all retries and fallbacks together."""

    ollama_connect: float = _defaults.OLLAMA_CONNECT_TIMEOUT
    ollama_read: float = _defaults.OLLAMA_READ_TIMEOUT
    cloud_connect: float = _defaults.CLOUD_CONNECT_TIMEOUT
    cloud_read: float = _defaults.CLOUD_READ_TIMEOUT
    deadline: float = _defaults.REQUEST_DEADLINE
    # Streams only, each under the deadline: the first token (a model load counts; past it, the next endpoint or
    # provider is tried, as no output has been shown) and the wait between tokens after it. None: no such limit.
    first_token: float | None = None
    stream_idle: float | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            if getattr(self, f.name) is not None or f.name not in ("first_token", "stream_idle"):
                check_number("Timeouts", f.name, getattr(self, f.name), minimum=0, inclusive=False)


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = _defaults.MAX_RETRIES
    initial_delay: float = _defaults.INITIAL_RETRY_DELAY
    max_delay: float = _defaults.MAX_RETRY_DELAY
    jitter: float = _defaults.RETRY_JITTER
    max_retry_after: float = _defaults.MAX_RETRY_AFTER

    def __post_init__(self) -> None:
        check_count("RetryPolicy", "max_retries", self.max_retries, minimum=0)
        for name in ("initial_delay", "max_delay", "max_retry_after"):
            check_number("RetryPolicy", name, getattr(self, name), minimum=0)
        check_number("RetryPolicy", "jitter", self.jitter, minimum=0)
        if self.jitter > 1:
            raise ConfigError(f"RetryPolicy.jitter must be from 0 to 1, got {self.jitter}")


@dataclass(frozen=True)
class BreakerPolicy:
    failure_threshold: int = _defaults.BREAKER_FAILURE_THRESHOLD
    cooldown: float = _defaults.BREAKER_COOLDOWN
    auth_disable: float = _defaults.AUTH_DISABLE_SECONDS
    # What "now" is for cooldowns (seconds, monotonic); tests pass a fake clock instead of sleeping.
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_count("BreakerPolicy", "failure_threshold", self.failure_threshold, minimum=1)
        check_number("BreakerPolicy", "cooldown", self.cooldown, minimum=0)
        check_number("BreakerPolicy", "auth_disable", self.auth_disable, minimum=0)
