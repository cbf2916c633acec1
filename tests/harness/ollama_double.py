#!/usr/bin/env python3
"""TEST DOUBLE of the Ollama binary. It never ships; it exists only so tests run without real `ollama`.

The real Ollama binary cannot be downloaded on the test machines, so `build_double_releases.py` packs this
file as `bin/ollama` into release archives laid out like the real ones. It speaks the subset of the real
CLI and HTTP API that the Ansible roles and the Python client use, faithful to Ollama's documented behaviour
(ollama/ollama docs/api.md, server/routes.go, cmd/cmd.go, envconfig/config.go):

  CLI   ollama --version | -v, serve, list, pull NAME [--insecure], create NAME [-f Modelfile], rm NAME...
  HTTP  GET|HEAD /, GET|HEAD /api/version, GET|HEAD /api/tags, POST /api/pull, POST /api/show,
        DELETE /api/delete, HEAD|POST /api/blobs/sha256:<hex>, POST /api/create, POST /api/chat,
        POST /api/generate, GET /api/ps, POST /v1/chat/completions, GET /v1/models

The model store has the real layout (`$OLLAMA_MODELS/manifests/<host>/<ns>/<model>/<tag>`,
`blobs/sha256-<hex>`). There is no inference: chat replies are deterministic canned text that echoes part
of the last user message, with token counts and nanosecond durations shaped like the real ones.

Knobs that exist only in the double (the real binary has no such variables):
  OLLAMA_DOUBLE_REGISTRY        directory laid out like a model store that `pull` copies from (no network)
  OLLAMA_DOUBLE_LOAD_DELAY_MS   simulated cold-start time when a model is first loaded (default 0)
  OLLAMA_DOUBLE_TOKEN_DELAY_MS  simulated time per generated token (default 0)
  OLLAMA_DOUBLE_DISCOVERY_MS    time `serve` spends on GPU discovery after binding, before it answers (default
                                500: like the real server, the port accepts connections a moment before the API
                                responds, so a readiness check must wait for an answer, not for the port)

A released double (`build_double_releases.py` sets VERSION) also checks its libraries the way the real binary
finds them (ml/path.go): `<dir of the resolved executable>/../lib/ollama`. `serve` exits with an error when that
holds no libggml-base.so of its own version, where a real server would start without working backends.

Standard library only: it runs under python3 3.10-3.13 in minimal Debian and Ubuntu containers.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import http.client
import http.server
import ipaddress
import json
import os
import re
import secrets
import signal
import socket
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any, NamedTuple

# Replaced by build_double_releases.py; a source checkout reports 0.0.0.
VERSION = "@@VERSION@@"

DEFAULT_REGISTRY = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
DEFAULT_PORT = "11434"
MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_MEDIA_TYPE = "application/vnd.docker.container.image.v1+json"
MODEL_MEDIA_TYPE = "application/vnd.ollama.image.model"
TEMPLATE_MEDIA_TYPE = "application/vnd.ollama.image.template"
SYSTEM_MEDIA_TYPE = "application/vnd.ollama.image.system"
PARAMS_MEDIA_TYPE = "application/vnd.ollama.image.params"
LICENSE_MEDIA_TYPE = "application/vnd.ollama.image.license"
# server/modelpath.go: both separators are accepted, nothing else (path traversal, CVE-2024-37032).
DIGEST_RE = re.compile(r"^sha256[:-][0-9a-fA-F]{64}$")
INVALID_MODEL_NAME = "invalid model name"
CHUNK = 1 << 20


def version() -> str:
    return "0.0.0" if VERSION.startswith("@@") else VERSION


# --- names (types/model/name.go) ------------------------------------------------------------------------


class ModelName(NamedTuple):
    host: str
    namespace: str
    model: str
    tag: str

    def shortest(self) -> str:
        """DisplayShortest: drop the default host and namespace."""
        if self.host == DEFAULT_REGISTRY and self.namespace == DEFAULT_NAMESPACE:
            return f"{self.model}:{self.tag}"
        if self.host == DEFAULT_REGISTRY:
            return f"{self.namespace}/{self.model}:{self.tag}"
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"

    def parts(self) -> tuple[str, str, str, str]:
        return (self.host, self.namespace, self.model, self.tag)


_PART_RE = {
    "host": re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,349}$"),
    "namespace": re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,79}$"),
    "model": re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}$"),
    "tag": re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}$"),
}


def parse_name(raw: str) -> ModelName | None:
    """`[host/][namespace/]model[:tag]` with Ollama's defaults; None when a part is invalid."""
    s = raw.strip()
    for scheme in ("https://", "http://"):
        if s.startswith(scheme):
            s = s[len(scheme) :]
    s = s.split("@", 1)[0]
    tag = DEFAULT_TAG
    slash, colon = s.rfind("/"), s.rfind(":")
    if colon > slash:
        s, tag = s[:colon], s[colon + 1 :]
    pieces = s.split("/")
    if len(pieces) > 3:
        return None
    model = pieces[-1]
    namespace = pieces[-2] if len(pieces) >= 2 else DEFAULT_NAMESPACE
    host = pieces[-3] if len(pieces) == 3 else DEFAULT_REGISTRY
    name = ModelName(host, namespace, model, tag)
    checks = zip(("host", "namespace", "model", "tag"), name.parts(), strict=True)
    if not all(_PART_RE[kind].match(value) for kind, value in checks):
        return None
    return name


# --- model store (server/images.go, manifest/paths.go) -------------------------------------------------


class InvalidDigestError(ValueError):
    def __init__(self) -> None:
        super().__init__("invalid digest format")


class Store:
    """An on-disk model store in Ollama's layout; also used read-only for the double's local registry."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs"
        self.manifests = root / "manifests"

    def ensure_dirs(self) -> None:
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.manifests.mkdir(parents=True, exist_ok=True)

    def blob_path(self, digest: str) -> Path:
        if not DIGEST_RE.match(digest):
            raise InvalidDigestError
        return self.blobs / digest.replace(":", "-", 1)

    def manifest_path(self, name: ModelName) -> Path:
        return self.manifests.joinpath(*name.parts())

    def read_manifest(self, name: ModelName) -> tuple[dict[str, Any], bytes]:
        raw = self.manifest_path(name).read_bytes()
        return json.loads(raw), raw

    def write_manifest(self, name: ModelName, raw: bytes) -> None:
        path = self.manifest_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, raw)

    def models(self) -> list[tuple[ModelName, Path]]:
        found = []
        if self.manifests.is_dir():
            for path in sorted(self.manifests.glob("*/*/*/*")):
                if path.is_file() and not path.name.startswith("."):
                    rel = path.relative_to(self.manifests).parts
                    found.append((ModelName(*rel), path))
        return found

    def referenced_digests(self) -> set[str]:
        refs: set[str] = set()
        for name, _ in self.models():
            try:
                manifest, _ = self.read_manifest(name)
            except (OSError, ValueError):
                continue
            for layer in layers_of(manifest):
                refs.add(layer["digest"].replace(":", "-", 1))
        return refs

    def prune(self) -> int:
        """PruneLayers: delete blobs no manifest references (OLLAMA_NOPRUNE turns this off)."""
        refs = self.referenced_digests()
        removed = 0
        for blob in self.blobs.iterdir():
            if blob.name.startswith("sha256-") and blob.name not in refs:
                blob.unlink()
                removed += 1
        return removed

    def fix_blobs(self) -> None:
        """fixBlobs: legacy `sha256:` file names become `sha256-`."""
        for blob in self.blobs.glob("sha256:*"):
            blob.rename(blob.with_name(blob.name.replace(":", "-", 1)))

    def remove_model(self, name: ModelName) -> None:
        manifest, _ = self.read_manifest(name)
        path = self.manifest_path(name)
        path.unlink()
        for parent in list(path.parents)[: len(name.parts()) - 1]:
            if parent == self.manifests or any(parent.iterdir()):
                break
            parent.rmdir()
        still_used = self.referenced_digests()
        for layer in layers_of(manifest):
            blob = self.blob_path(layer["digest"])
            if blob.name not in still_used and blob.exists():
                blob.unlink()

    def size_of(self, manifest: dict[str, Any]) -> int:
        return sum(int(layer.get("size", 0)) for layer in layers_of(manifest))

    def config_of(self, manifest: dict[str, Any]) -> dict[str, Any]:
        digest = manifest.get("config", {}).get("digest", "")
        try:
            data = json.loads(self.blob_path(digest).read_bytes())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def model_blob(self, manifest: dict[str, Any]) -> str:
        for layer in manifest.get("layers", []):
            if layer.get("mediaType") == MODEL_MEDIA_TYPE:
                return str(self.blob_path(layer["digest"]))
        return ""

    def layer_text(self, manifest: dict[str, Any], media_type: str) -> str:
        for layer in manifest.get("layers", []):
            if layer.get("mediaType") == media_type:
                try:
                    return self.blob_path(layer["digest"]).read_text(encoding="utf-8")
                except (OSError, ValueError):
                    return ""
        return ""


def layers_of(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    layers = list(manifest.get("layers", []))
    if manifest.get("config", {}).get("digest"):
        layers.append(manifest["config"])
    return layers


def dumps(obj: Any) -> bytes:
    """Compact JSON like Go's encoding/json."""
    return json.dumps(obj, separators=(",", ":")).encode()


def atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def manifest_bytes(config: dict[str, Any], layers: list[dict[str, Any]]) -> bytes:
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": config,
        "layers": layers,
    }
    return dumps(manifest)


def put_blob(store: Store, data: bytes) -> dict[str, Any]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = store.blob_path(digest)
    if not path.exists():
        atomic_write(path, data)
    return {"digest": digest, "size": len(data)}


# GGUF metadata value types (ggml's gguf.h): their sizes, for skipping values on the way to the chat template.
_GGUF_SCALARS = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_GGUF_STRING, _GGUF_ARRAY = 8, 9
# What the server puts in a template layer when it recognises a GGUF's chat template (Ollama matches the Jinja
# template against the Go templates it knows; the double stands for that with one fixed text).
DETECTED_TEMPLATE = "{{ if .System }}{{ .System }}\n{{ end }}{{ .Prompt }}"


def gguf_chat_template(path: Path) -> str | None:
    """The `tokenizer.chat_template` metadata of a GGUF v2/v3 file, or None (no such key, or not a readable header).
    Ollama's create reads it to pick a template when the request gives none."""
    size = path.stat().st_size
    with path.open("rb") as f:

        def read(n: int) -> bytes:
            if n > size:
                raise ValueError("a length beyond the file")
            data = f.read(n)
            if len(data) != n:
                raise ValueError("truncated")
            return data

        def num(n: int) -> int:
            return int.from_bytes(read(n), "little")

        def string() -> str:
            return read(num(8)).decode("utf-8", "replace")

        def skip(kind: int) -> None:
            if kind in _GGUF_SCALARS:
                read(_GGUF_SCALARS[kind])
            elif kind == _GGUF_STRING:
                read(num(8))
            elif kind == _GGUF_ARRAY:
                inner, count = num(4), num(8)
                for _ in range(count):
                    skip(inner)
            else:
                raise ValueError(f"unknown GGUF type {kind}")

        try:
            if read(4) != b"GGUF" or num(4) not in (2, 3):
                return None
            num(8)  # tensor count
            for _ in range(num(8)):
                key, kind = string(), num(4)
                if key == "tokenizer.chat_template" and kind == _GGUF_STRING:
                    return string()
                skip(kind)
        except ValueError:
            return None
    return None


def model_config(
    *,
    model_format: str = "gguf",
    family: str = "llama",
    parameter_size: str = "",
    quantization: str = "",
    diff_ids: list[str] | None = None,
    architecture: str = "",
    capabilities: list[str] | None = None,
) -> bytes:
    """ConfigV2, the JSON config blob every manifest points to."""
    config: dict[str, Any] = {
        "model_format": model_format,
        "model_family": family,
        "model_families": [family],
        "model_type": parameter_size,
        "file_type": quantization,
        "architecture": architecture or ("amd64" if os.uname().machine == "x86_64" else "arm64"),
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids or []},
    }
    if capabilities:
        config["capabilities"] = capabilities
    return dumps(config)


# --- environment (envconfig/config.go) ------------------------------------------------------------------


def env(key: str) -> str:
    return os.environ.get(key, "").strip().strip("\"'").strip()


def parse_host(raw: str) -> tuple[str, str, int]:
    """envconfig.Host(): (scheme, host, port) from OLLAMA_HOST."""
    scheme, sep, hostport = raw.partition("://")
    default_port = DEFAULT_PORT
    if not sep:
        scheme, hostport = "http", raw
    elif scheme == "http":
        default_port = "80"
    elif scheme == "https":
        default_port = "443"
    hostport = hostport.split("/", 1)[0]
    host, port = "127.0.0.1", default_port
    m = re.match(r"^\[([^\]]+)\]:(.*)$", hostport) or re.match(r"^([^:]*):([^:]*)$", hostport)
    if m:
        host, port = m.group(1) or "", m.group(2)
    elif hostport:
        host = hostport.strip("[]")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        port = default_port
    return scheme, host, int(port)


def server_address() -> tuple[str, int]:
    _, host, port = parse_host(env("OLLAMA_HOST"))
    return host, port


def client_base_url() -> str:
    """ConnectableHost: unspecified addresses are reached over loopback."""
    scheme, host, port = parse_host(env("OLLAMA_HOST"))
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


# --- libraries (ml/path.go) -----------------------------------------------------------------------------

GGML_BASE = "libggml-base.so"


def library_text(version: str, label: str) -> str:
    """The content of the double's stand-in library files (build_double_releases.py writes them)."""
    return f"TEST DOUBLE library {label} for ollama {version}; not a real library\n"


def lib_ollama_path() -> Path:
    """LibOllamaPath on Linux: next to the executable, symlinks resolved (bin/../lib/ollama, then bin/lib/ollama)."""
    exe_dir = Path(os.path.realpath(sys.argv[0] if sys.argv[0] else __file__)).parent
    candidates = [exe_dir.parent / "lib" / "ollama", exe_dir / "lib" / "ollama"]
    return next((c for c in candidates if c.is_dir()), exe_dir)


def check_libraries(lib_dir: Path) -> str:
    """An error when lib_dir lacks this version's base library (stale or missing lib/ollama), else ""."""
    try:
        text = (lib_dir / GGML_BASE).read_text()
    except OSError as e:
        return f"no {GGML_BASE} in {lib_dir} ({os_error_text(e)}): lib/ollama of this release is missing"
    if f" for ollama {version()};" not in text:
        return f"{lib_dir / GGML_BASE} belongs to another release ({text.strip()}); this binary is {version()}"
    return ""


def backends(lib_dir: Path) -> list[str]:
    """The GPU backend directories a release (and its add-ons) put under lib/ollama: cuda_v13, rocm_v7, ..."""
    with contextlib.suppress(OSError):
        return sorted(p.name for p in lib_dir.iterdir() if p.is_dir())
    return []


def models_dir() -> Path:
    configured = env("OLLAMA_MODELS")
    if configured:
        return Path(configured)
    return Path.home() / ".ollama" / "models"


def ms_env(key: str) -> float:
    try:
        return max(float(env(key) or 0), 0.0) / 1000
    except ValueError:
        return 0.0


def parse_duration(value: Any, default: float) -> float:
    """keep_alive: seconds as a number, or a Go duration such as "5m" / "1h30m"; negative means forever."""
    if value is None or value == "":
        return default
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip()
        try:
            seconds = float(text)
        except ValueError:
            units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
            parts = re.findall(r"(-?[0-9.]+)(ms|h|m|s)", text)
            if not parts or "".join(n + u for n, u in parts) != text:
                return default
            seconds = sum(float(n) * units[u] for n, u in parts)
    return float("inf") if seconds < 0 else seconds


# --- CORS set-up (gin-contrib/cors as Ollama configures it: wildcards and browser extensions allowed) ----

CORS_SCHEMES = (
    "http://",
    "https://",
    "chrome-extension://",
    "safari-extension://",
    "moz-extension://",
    "ms-browser-extension://",
)


def split_host_port(value: str) -> str:
    """The host part of a Host header as Go's net.SplitHostPort gives it; the whole value when that fails."""
    bracketed = re.match(r"^\[([^\]]*)\]:[0-9]*$", value)
    if bracketed:
        return bracketed.group(1)
    if value.count(":") == 1 and not value.startswith("["):
        return value.split(":", 1)[0]
    return value


def interface_addresses() -> set[str]:
    """This host's addresses, as Go's net.Interfaces() finds them: over an AF_NETLINK socket. Inside the unit's
    sandbox (RestrictAddressFamilies without AF_NETLINK) that socket is refused, and Go finds none."""
    try:
        socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0).close()  # NETLINK_ROUTE
    except OSError:
        return set()
    found: set[str] = set()
    with contextlib.suppress(OSError):
        trie = Path("/proc/net/fib_trie").read_text().splitlines()
        found |= {trie[i - 1].split()[-1] for i, line in enumerate(trie) if "/32 host LOCAL" in line and i > 0}
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/if_inet6").read_text().splitlines():
            found.add(str(ipaddress.ip_address(int(line.split()[0], 16))))
    return found


def host_allowed(bound: str, host_header: str) -> bool:
    """Ollama's allowedHostsMiddleware (server/routes.go): a server bound to loopback answers only requests whose Host
    is a loopback/private/unspecified IP, one of this host's addresses, localhost, its own name, or *.localhost,
    *.local, *.internal; its DNS-rebinding guard. A server bound elsewhere does not check."""
    try:
        if not ipaddress.ip_address(bound).is_loopback:
            return True
    except ValueError:
        return True
    host = split_host_port(host_header)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None and (ip.is_loopback or ip.is_private or ip.is_unspecified or host in interface_addresses()):
        return True
    host = host.lower()
    if host in ("", "localhost") or host == socket.gethostname().lower():
        return True
    return host.endswith((".localhost", ".local", ".internal"))


def allowed_origins() -> list[str]:
    """OLLAMA_ORIGINS split on commas (not trimmed), then the server's own defaults (envconfig.AllowedOrigins)."""
    origins = env("OLLAMA_ORIGINS").split(",") if env("OLLAMA_ORIGINS") else []
    for host in ("localhost", "127.0.0.1", "0.0.0.0"):
        origins += [f"http://{host}", f"https://{host}", f"http://{host}:*", f"https://{host}:*"]
    return [*origins, "app://*", "file://*", "tauri://*", "vscode-webview://*", "vscode-file://*"]


def cors_panic(origins: list[str]) -> str | None:
    """The message the library panics with at start-up (Config.Validate, then parseWildcardRules), or None."""
    for origin in origins:
        if "*" not in origin and not origin.startswith(CORS_SCHEMES):
            return "bad origin: origins must contain '*' or include " + ",".join(CORS_SCHEMES)
    if any(origin.count("*") > 1 for origin in origins):
        return "only one * is allowed"
    return None


# --- logging (slog text handler + gin request log, like `ollama serve`) ---------------------------------


def log(level: str, msg: str, **attrs: Any) -> None:
    now = datetime.datetime.now().astimezone().isoformat(timespec="milliseconds")
    extra = "".join(f" {k}={json.dumps(v) if isinstance(v, str) and ' ' in v else v}" for k, v in attrs.items())
    sys.stderr.write(f'time={now} level={level} source=ollama_double.py msg="{msg}"{extra}\n')
    sys.stderr.flush()


# --- canned inference -----------------------------------------------------------------------------------


def canned_tokens(messages: list[dict[str, Any]]) -> list[str]:
    """Deterministic reply pieces (one per 'token') echoing the start of the last user message."""
    last: dict[str, Any] = next((m for m in reversed(messages) if m.get("role") == "user"), {})
    content = last.get("content", "")
    if isinstance(content, list):  # OpenAI content parts
        content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    words = str(content).split()[:12]
    reply = "Test double reply to: " + " ".join(words) if words else "Test double reply."
    return re.findall(r"\S+\s*", reply)


class Thought(str):
    """A piece of a thinking model's reasoning: it goes to `thinking`, not to the answer."""


THINKING = ["Okay, ", "the ", "user ", "wants ", "a ", "short ", "answer. ", "I ", "will ", "give ", "it."]


def capabilities(config: dict[str, Any]) -> list[str]:
    """What /api/show reports and the handlers enforce: the config's own list (ConfigV2.Capabilities), plus
    completion unless the model embeds only (Ollama reads the GGUF's pooling_type for that)."""
    caps = [str(c) for c in config.get("capabilities") or []]
    return caps if "embedding" in caps or "completion" in caps else ["completion", *caps]


def embedding(text: str, dimensions: int = 16) -> list[float]:
    """A deterministic unit vector for a text (what an embedding model returns, minus the meaning)."""
    raw = hashlib.sha256(text.encode()).digest()[:dimensions]
    vector = [b - 127.5 for b in raw]
    norm = sum(v * v for v in vector) ** 0.5
    return [round(v / norm, 6) for v in vector]


def prompt_token_count(messages: list[dict[str, Any]]) -> int:
    return sum(len(str(m.get("content", "")).split()) + 4 for m in messages) or 1


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def mtime_rfc3339(path: Path) -> str:
    return datetime.datetime.fromtimestamp(path.stat().st_mtime).astimezone().isoformat()


# --- HTTP server ----------------------------------------------------------------------------------------


class HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], store: Store, registry: Store | None) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, Handler)
        self.store = store
        self.registry = registry
        self.lock = threading.Lock()
        self.loaded: dict[str, float] = {}  # model -> expiry (monotonic)
        self.default_keep_alive = parse_duration(env("OLLAMA_KEEP_ALIVE") or "5m", 300.0)
        self.load_delay = ms_env("OLLAMA_DOUBLE_LOAD_DELAY_MS")
        self.token_delay = ms_env("OLLAMA_DOUBLE_TOKEN_DELAY_MS")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    # -- plumbing --

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request is written by log_request in gin's format instead

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        stamp = time.strftime("%Y/%m/%d - %H:%M:%S")
        elapsed = (time.monotonic() - self._started) * 1000
        sys.stderr.write(
            f"[GIN] {stamp} | {code} | {elapsed:10.3f}ms | {self.client_address[0]:>15} | "
            f'{self.command:<8} "{self.path}"\n'
        )
        sys.stderr.flush()

    def handle_one_request(self) -> None:
        self._started = time.monotonic()
        super().handle_one_request()

    def do_GET(self) -> None:
        self.dispatch()

    def do_HEAD(self) -> None:
        self.dispatch()

    def do_POST(self) -> None:
        self.dispatch()

    def do_DELETE(self) -> None:
        self.dispatch()

    def do_PUT(self) -> None:
        self.dispatch()

    def dispatch(self) -> None:
        self._body_read = False
        if not host_allowed(self.server.server_address[0], self.headers.get("Host", "")):
            self.close_connection = True  # its body, if any, is not read
            self.send_bytes(403, b"", "text/plain")  # gin's AbortWithStatus: no body
            return
        path = self.path.split("?", 1)[0]
        routes = {
            "/": {"GET": self.root, "HEAD": self.root},
            "/api/version": {"GET": self.api_version, "HEAD": self.api_version},
            "/api/tags": {"GET": self.api_tags, "HEAD": self.api_tags},
            "/api/pull": {"POST": self.api_pull},
            "/api/show": {"POST": self.api_show},
            "/api/delete": {"DELETE": self.api_delete},
            "/api/create": {"POST": self.api_create},
            "/api/chat": {"POST": self.api_chat},
            "/api/generate": {"POST": self.api_generate},
            "/api/embed": {"POST": self.api_embed},
            "/api/ps": {"GET": self.api_ps},
            "/v1/chat/completions": {"POST": self.openai_chat},
            "/v1/models": {"GET": self.openai_models},
        }
        methods = routes.get(path)
        if methods is None and path.startswith("/api/blobs/"):
            methods = {"HEAD": self.head_blob, "POST": self.create_blob}
        try:
            if methods is None:
                self.send_text(404, "404 page not found")
            elif self.command not in methods:
                self.send_text(405, "405 method not allowed")
            else:
                methods[self.command]()
        except HTTPError as e:
            self.send_json(e.status, {"error": e.message})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:  # a server keeps serving; the client gets a 500 like gin's recovery
            log("ERROR", "handler failed", error=repr(e))
            self.send_json(500, {"error": str(e)})
        finally:
            if not self._body_read and not self.close_connection:
                for _ in self.body_chunks():  # an unread body would be parsed as the next request
                    pass

    def send_bytes(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status: int, obj: Any) -> None:
        self.send_bytes(status, dumps(obj), "application/json; charset=utf-8")

    def send_text(self, status: int, text: str) -> None:
        self.send_bytes(status, text.encode(), "text/plain; charset=utf-8")

    def start_stream(self, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def body_chunks(self) -> Any:
        """Yield the request body (Content-Length or chunked transfer encoding)."""
        self._body_read = True
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return
                remaining = size
                while remaining:
                    data = self.rfile.read(min(remaining, CHUNK))
                    if not data:
                        return
                    remaining -= len(data)
                    yield data
                self.rfile.readline()
        remaining = int(self.headers.get("Content-Length") or 0)
        while remaining > 0:
            data = self.rfile.read(min(remaining, CHUNK))
            if not data:
                return
            remaining -= len(data)
            yield data

    def json_body(self) -> dict[str, Any]:
        raw = b"".join(self.body_chunks())
        if not raw.strip():
            raise HTTPError(400, "missing request body")
        try:
            body = json.loads(raw)
        except ValueError as e:
            raise HTTPError(400, f"invalid request body: {e}") from None
        if not isinstance(body, dict):
            raise HTTPError(400, "json: cannot unmarshal into Go value of type api.Request")
        return body

    def stream_or_single(self, body: dict[str, Any], events: Any) -> None:
        """Progress endpoints: NDJSON by default; with stream:false only the last status (or the error)."""
        if body.get("stream", True) is False:
            last: dict[str, Any] = {}
            try:
                for event in events:
                    last = event
            except HTTPError as e:
                self.send_json(e.status, {"error": e.message})
                return
            self.send_json(200, last)
            return
        started = False
        try:
            for event in events:
                if not started:
                    self.start_stream("application/x-ndjson")
                    started = True
                self.write_chunk(dumps(event) + b"\n")
        except HTTPError as e:
            if not started:
                self.send_json(e.status, {"error": e.message})
                return
            self.write_chunk(dumps({"error": e.message}) + b"\n")
        if not started:
            self.start_stream("application/x-ndjson")
        self.end_stream()

    def model_name(self, body: dict[str, Any]) -> tuple[str, ModelName]:
        raw = str(body.get("model") or body.get("name") or "")
        if not raw:
            raise HTTPError(400, "model is required")
        name = parse_name(raw)
        if name is None:
            raise HTTPError(400, INVALID_MODEL_NAME)
        return raw, name

    # -- general --

    def root(self) -> None:
        self.send_text(200, "Ollama is running")

    def api_version(self) -> None:
        self.send_json(200, {"version": version()})

    def model_entry(self, name: ModelName, path: Path) -> dict[str, Any] | None:
        store = self.server.store
        try:
            manifest, raw = store.read_manifest(name)
        except (OSError, ValueError):
            log("WARN", "bad manifest", name=name.shortest())
            return None
        config = store.config_of(manifest)
        return {
            "name": name.shortest(),
            "model": name.shortest(),
            "modified_at": mtime_rfc3339(path),
            "size": store.size_of(manifest),
            "digest": hashlib.sha256(raw).hexdigest(),
            "details": {
                "parent_model": "",
                "format": config.get("model_format", ""),
                "family": config.get("model_family", ""),
                "families": config.get("model_families"),
                "parameter_size": config.get("model_type", ""),
                "quantization_level": config.get("file_type", ""),
            },
        }

    def api_tags(self) -> None:
        entries = [self.model_entry(n, p) for n, p in self.server.store.models()]
        models = [e for e in entries if e is not None]
        models.sort(key=lambda e: e["modified_at"], reverse=True)
        self.send_json(200, {"models": models})

    # -- model management --

    def api_pull(self) -> None:
        body = self.json_body()
        _, name = self.model_name(body)
        self.stream_or_single(body, self.pull_events(name))

    def pull_events(self, name: ModelName) -> Any:
        store, registry = self.server.store, self.server.registry
        yield {"status": "pulling manifest"}
        if registry is None:
            raise HTTPError(500, "pull model manifest: no OLLAMA_DOUBLE_REGISTRY set (test double has no network)")
        try:
            manifest, raw = registry.read_manifest(name)
        except FileNotFoundError:
            raise HTTPError(500, "pull model manifest: file does not exist") from None
        layers = layers_of(manifest)
        for layer in layers:
            digest, total = layer["digest"], int(layer["size"])
            target = store.blob_path(digest)
            short = f"pulling {digest[7:19]}"
            if target.exists():
                yield {"status": short, "digest": digest, "total": total, "completed": total}
                continue
            source = registry.blob_path(digest)
            if not source.exists():
                raise HTTPError(500, f"pull model manifest: blob {digest} not found in registry")
            partial = target.with_name(target.name + "-partial")
            done = 0
            # Like download.go, a layer's size is announced before its bytes arrive (a client can check space).
            yield {"status": short, "digest": digest, "total": total, "completed": 0}
            with source.open("rb") as src, partial.open("wb") as dst:
                while chunk := src.read(CHUNK):
                    dst.write(chunk)
                    done += len(chunk)
                    yield {"status": short, "digest": digest, "total": total, "completed": done}
            if total == 0:
                yield {"status": short, "digest": digest, "total": total, "completed": 0}
        yield {"status": "verifying sha256 digest"}
        for layer in layers:
            digest = layer["digest"]
            target = store.blob_path(digest)
            partial = target.with_name(target.name + "-partial")
            if not partial.exists():
                continue
            got = sha256_file(partial)
            if got != digest:
                partial.unlink()
                raise HTTPError(500, f"digest mismatch, file must be downloaded again: want {digest}, got {got}")
            os.replace(partial, target)
        yield {"status": "writing manifest"}
        store.write_manifest(name, raw)
        yield {"status": "success"}

    def api_show(self) -> None:
        body = self.json_body()
        raw, name = self.model_name(body)
        store = self.server.store
        try:
            manifest, _ = store.read_manifest(name)
        except FileNotFoundError:
            raise HTTPError(404, f"model '{raw}' not found") from None
        config = store.config_of(manifest)
        template = store.layer_text(manifest, TEMPLATE_MEDIA_TYPE)
        system = store.layer_text(manifest, SYSTEM_MEDIA_TYPE)
        params_text = store.layer_text(manifest, PARAMS_MEDIA_TYPE)
        params = json.loads(params_text) if params_text else {}
        modelfile = (
            '# Modelfile generated by "ollama show"\n'
            "# To build a new Modelfile based on this, replace FROM with:\n"
            f"# FROM {name.shortest()}\n\nFROM {store.model_blob(manifest)}\n"
        )
        if template:
            modelfile += f'TEMPLATE """{template}"""\n'
        if system:
            modelfile += f'SYSTEM """{system}"""\n'
        for key, value in params.items():
            for v in value if isinstance(value, list) else [value]:
                modelfile += f"PARAMETER {key} {v}\n"
        family = config.get("model_family", "")
        self.send_json(
            200,
            {
                "license": store.layer_text(manifest, LICENSE_MEDIA_TYPE),
                "modelfile": modelfile,
                "parameters": "\n".join(f"{k:<30} {json.dumps(v)}" for k, v in params.items()),
                "template": template,
                "system": system,
                "details": {
                    "parent_model": "",
                    "format": config.get("model_format", ""),
                    "family": family,
                    "families": config.get("model_families"),
                    "parameter_size": config.get("model_type", ""),
                    "quantization_level": config.get("file_type", ""),
                },
                "model_info": {"general.architecture": family, f"{family}.context_length": 2048},
                "capabilities": capabilities(config),
                "modified_at": mtime_rfc3339(store.manifest_path(name)),
            },
        )

    def api_delete(self) -> None:
        body = self.json_body()
        raw = str(body.get("model") or body.get("name") or "")
        name = parse_name(raw)
        if name is None:
            raise HTTPError(400, f'name "{raw}" is invalid')
        try:
            self.server.store.remove_model(name)
        except FileNotFoundError:
            raise HTTPError(404, f"model '{raw}' not found") from None
        with self.server.lock:
            self.server.loaded.pop(name.shortest(), None)
        self.send_bytes(200, b"", "text/plain; charset=utf-8")

    def head_blob(self) -> None:
        digest = self.path.split("?", 1)[0][len("/api/blobs/") :]
        try:
            path = self.server.store.blob_path(digest)
        except InvalidDigestError as e:
            raise HTTPError(400, str(e)) from None
        if not path.exists():
            raise HTTPError(404, f'blob "{digest}" not found')
        self.send_bytes(200, b"", "text/plain; charset=utf-8")

    def create_blob(self) -> None:
        digest = self.path.split("?", 1)[0][len("/api/blobs/") :]
        try:
            path = self.server.store.blob_path(digest)
        except InvalidDigestError as e:
            raise HTTPError(400, str(e)) from None
        if path.exists():
            for _ in self.body_chunks():
                pass
            self.send_bytes(200, b"", "text/plain; charset=utf-8")
            return
        h = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in self.body_chunks():
                    h.update(chunk)
                    f.write(chunk)
            got = "sha256:" + h.hexdigest()
            if got != digest.replace("sha256-", "sha256:", 1).lower():
                raise HTTPError(400, f'digest mismatch, expected "{digest}", got "{got}"')
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
        self.send_bytes(201, b"", "text/plain; charset=utf-8")

    def api_create(self) -> None:
        body = self.json_body()
        _, name = self.model_name(body)
        if not body.get("from") and not body.get("files"):
            raise HTTPError(400, "neither 'from' or 'files' was specified")
        self.stream_or_single(body, self.create_events(name, body))

    def create_events(self, name: ModelName, body: dict[str, Any]) -> Any:
        store = self.server.store
        yield {"status": "gathering model components"}
        layers: list[dict[str, Any]] = []
        config = json.loads(model_config())
        if body.get("files"):
            files = body["files"]
            if not isinstance(files, dict):
                raise HTTPError(400, "files must be an object of file name to digest")
            for file_name, digest in files.items():
                try:
                    blob = store.blob_path(str(digest))
                except InvalidDigestError:
                    raise HTTPError(400, f"invalid digest for {file_name}") from None
                if not blob.exists():
                    raise HTTPError(400, f"blob {digest} for {file_name} does not exist, upload it first")
                with blob.open("rb") as f:
                    if f.read(4) != b"GGUF":
                        raise HTTPError(400, "unsupported content type: not a GGUF file")
                yield {"status": "parsing GGUF"}
                canonical = str(digest).replace("sha256-", "sha256:", 1)
                yield {"status": f"using existing layer {canonical}"}
                layers.append({"mediaType": MODEL_MEDIA_TYPE, "digest": canonical, "size": blob.stat().st_size})
                # Without a template in the request, the server picks one from the file's chat template.
                if not body.get("template") and gguf_chat_template(blob):
                    layer = put_blob(store, DETECTED_TEMPLATE.encode())
                    yield {"status": f"creating new layer {layer['digest']}"}
                    layers.append({"mediaType": TEMPLATE_MEDIA_TYPE, **layer})
            config["model_type"] = "unknown"
            config["file_type"] = "unknown"
        else:
            base_raw = str(body["from"])
            base = parse_name(base_raw)
            if base is None:
                raise HTTPError(400, INVALID_MODEL_NAME)
            try:
                base_manifest, _ = store.read_manifest(base)
            except FileNotFoundError:
                raise HTTPError(404, f"model '{base_raw}' not found") from None
            config = store.config_of(base_manifest) or config
            for layer in base_manifest.get("layers", []):
                if body.get("template") and layer["mediaType"] == TEMPLATE_MEDIA_TYPE:
                    continue
                if body.get("system") and layer["mediaType"] == SYSTEM_MEDIA_TYPE:
                    continue
                if body.get("parameters") and layer["mediaType"] == PARAMS_MEDIA_TYPE:
                    continue
                yield {"status": f"using existing layer {layer['digest']}"}
                layers.append(layer)
        for key, media_type in (
            ("template", TEMPLATE_MEDIA_TYPE),
            ("system", SYSTEM_MEDIA_TYPE),
            ("license", LICENSE_MEDIA_TYPE),
        ):
            value = body.get(key)
            if value:
                text = "\n".join(value) if isinstance(value, list) else str(value)
                layer = put_blob(store, text.encode())
                yield {"status": f"creating new layer {layer['digest']}"}
                layers.append({"mediaType": media_type, **layer})
        if body.get("parameters"):
            layer = put_blob(store, dumps(body["parameters"]))
            yield {"status": f"creating new layer {layer['digest']}"}
            layers.append({"mediaType": PARAMS_MEDIA_TYPE, **layer})
        config["rootfs"] = {"type": "layers", "diff_ids": [layer["digest"] for layer in layers]}
        config_layer = put_blob(store, dumps(config))
        yield {"status": "writing manifest"}
        store.write_manifest(name, manifest_bytes({"mediaType": CONFIG_MEDIA_TYPE, **config_layer}, layers))
        yield {"status": "success"}

    # -- inference --

    def load(self, raw: str, name: ModelName, keep_alive: Any) -> tuple[ModelName, int]:
        """Schedule the model: 404 if absent; the first load costs OLLAMA_DOUBLE_LOAD_DELAY_MS."""
        if not self.server.store.manifest_path(name).is_file():
            raise HTTPError(404, f'model "{raw}" not found, try pulling it first')
        key = name.shortest()
        started = time.monotonic()
        with self.server.lock:
            expiry = self.server.loaded.get(key)
            cold = expiry is None or expiry < started
        if cold and self.server.load_delay:
            time.sleep(self.server.load_delay)
        keep = parse_duration(keep_alive, self.server.default_keep_alive)
        with self.server.lock:
            if keep == 0:
                self.server.loaded.pop(key, None)
            else:
                self.server.loaded[key] = time.monotonic() + keep
        return name, int((time.monotonic() - started) * 1e9) or 1

    def generate(self, body: dict[str, Any], messages: list[dict[str, Any]]) -> Any:
        """Yield (piece, None) per token, then (None, metrics)."""
        started = time.monotonic()
        raw, name = self.model_name(body)
        think = self.check_capabilities(raw, name, body, "chat" if body.get("messages") is not None else "generate")
        _, load_ns = self.load(raw, name, body.get("keep_alive"))
        # A thinking model reasons first (num_predict counts those tokens too), then answers.
        tokens = [*(Thought(t) for t in THINKING if think), *canned_tokens(messages)]
        limit = (body.get("options") or {}).get("num_predict")
        done_reason = "stop"
        if isinstance(limit, int) and 0 <= limit < len(tokens):
            tokens, done_reason = tokens[:limit], "length"
        prompt_count = prompt_token_count(messages)
        eval_started = time.monotonic()
        for token in tokens:
            if self.server.token_delay:
                time.sleep(self.server.token_delay)
            yield token, None
        end = time.monotonic()
        yield (
            None,
            {
                "done_reason": done_reason,
                "total_duration": int((end - started) * 1e9) or 1,
                "load_duration": load_ns,
                "prompt_eval_count": prompt_count,
                "prompt_eval_duration": prompt_count * 1000,
                "eval_count": len(tokens),
                "eval_duration": int((end - eval_started) * 1e9) or 1,
            },
        )

    def check_capabilities(self, raw: str, name: ModelName, body: dict[str, Any], kind: str) -> bool:
        """Ollama's checks before scheduling (server/routes.go): 400 for a model that cannot do the request; whether
        it thinks (a thinking model does unless `think` is false)."""
        try:
            manifest, _ = self.server.store.read_manifest(name)
        except FileNotFoundError:
            return False  # load() answers 404
        caps = capabilities(self.server.store.config_of(manifest))
        think = body.get("think")
        if "thinking" not in caps and think not in (None, False):
            raise HTTPError(400, f'"{raw}" does not support thinking')
        if "completion" not in caps:
            raise HTTPError(400, f'"{raw}" does not support {kind}')
        return "thinking" in caps and think is not False

    def native_inference(self, chat: bool) -> None:
        body = self.json_body()
        raw, name = self.model_name(body)
        if chat:
            messages = body.get("messages") or []
            if not isinstance(messages, list):
                raise HTTPError(400, "messages must be a list")
            empty = not messages
        else:
            messages = [{"role": "user", "content": str(body.get("prompt", ""))}]
            empty = not body.get("prompt")
        model_field = body.get("model") or body.get("name")

        def shaped(piece: str, done: bool, thinking: str = "") -> dict[str, Any]:
            if isinstance(piece, Thought):
                piece, thinking = "", piece
            out: dict[str, Any] = {"model": model_field, "created_at": now_rfc3339()}
            if chat:
                out["message"] = {"role": "assistant", "content": piece, **({"thinking": thinking} if thinking else {})}
            else:
                out["response"] = piece
                if thinking:
                    out["thinking"] = thinking
            out["done"] = done
            return out

        if empty:  # an empty request only loads (or, with keep_alive 0, unloads) the model
            self.check_capabilities(raw, name, body, "chat" if chat else "generate")
            self.load(raw, name, body.get("keep_alive"))
            reason = "unload" if parse_duration(body.get("keep_alive"), 1) == 0 else "load"
            self.send_json(200, {**shaped("", True), "done_reason": reason})
            return
        events = self.generate(body, messages)
        if body.get("stream", True) is False:
            text, thought, metrics = "", "", dict[str, Any]()
            for piece, final in events:
                if isinstance(piece, Thought):
                    thought += piece
                else:
                    text += piece or ""
                metrics = final or metrics
            self.send_json(200, {**shaped(text, True, thought), **metrics})
            return
        first_piece, first_final = next(events)  # raises HTTPError (404) before the stream starts
        self.start_stream("application/x-ndjson")
        for piece, final in [(first_piece, first_final), *events]:
            line = shaped(piece, False) if final is None else {**shaped("", True), **final}
            self.write_chunk(dumps(line) + b"\n")
        self.end_stream()

    def api_chat(self) -> None:
        self.native_inference(chat=True)

    def api_generate(self) -> None:
        self.native_inference(chat=False)

    def api_embed(self) -> None:
        """POST /api/embed: one vector per input; no input only loads the model (what a warm-up sends)."""
        started = time.monotonic()
        body = self.json_body()
        raw, name = self.model_name(body)
        given = body.get("input")
        inputs = [given] if isinstance(given, str) and given else given if isinstance(given, list) else []
        if (given is not None and not isinstance(given, (str, list))) or not all(isinstance(i, str) for i in inputs):
            raise HTTPError(400, "invalid input type")
        if not self.server.store.manifest_path(name).is_file():
            raise HTTPError(404, f"model '{raw}' not found")
        _, load_ns = self.load(raw, name, body.get("keep_alive"))
        out: dict[str, Any] = {"model": body.get("model"), "embeddings": [embedding(text) for text in inputs]}
        if inputs:
            out.update(
                total_duration=int((time.monotonic() - started) * 1e9) or 1,
                load_duration=load_ns,
                prompt_eval_count=sum(len(text.split()) for text in inputs),
            )
        self.send_json(200, out)

    def api_ps(self) -> None:
        now = time.monotonic()
        models = []
        with self.server.lock:
            loaded = dict(self.server.loaded)
        for key, expiry in loaded.items():
            if expiry < now:
                continue
            name = parse_name(key)
            entry = self.model_entry(name, self.server.store.manifest_path(name)) if name else None
            if entry is None:
                continue
            remaining = min(expiry - now, 10 * 365 * 86400)
            expires = datetime.datetime.now().astimezone() + datetime.timedelta(seconds=remaining)
            entry.pop("modified_at")
            entry.update(expires_at=expires.isoformat(), size_vram=0, context_length=4096)
            models.append(entry)
        self.send_json(200, {"models": models})

    # -- OpenAI compatibility (openai/openai.go) --

    def openai_error(self, status: int, message: str) -> None:
        kind = {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")
        self.send_json(status, {"error": {"message": message, "type": kind, "param": None, "code": None}})

    def openai_chat(self) -> None:
        try:
            body = self.json_body()
            messages = body.get("messages")
            if not isinstance(messages, list) or not messages:
                raise HTTPError(400, "[] is too short - 'messages'")
            options = {"num_predict": body["max_tokens"]} if isinstance(body.get("max_tokens"), int) else {}
            native = {"model": body.get("model"), "keep_alive": None, "options": options}
            events = self.generate(native, messages)
            first = next(events)
        except HTTPError as e:
            self.openai_error(e.status, e.message)
            return
        ident = f"chatcmpl-{secrets.randbelow(1000)}"
        created = int(time.time())
        model = body.get("model")
        base = {"id": ident, "created": created, "model": model, "system_fingerprint": "fp_ollama"}

        def finish(metrics: dict[str, Any]) -> tuple[str, dict[str, int]]:
            reason = "length" if metrics["done_reason"] == "length" else "stop"
            usage = {
                "prompt_tokens": metrics["prompt_eval_count"],
                "completion_tokens": metrics["eval_count"],
                "total_tokens": metrics["prompt_eval_count"] + metrics["eval_count"],
            }
            return reason, usage

        if not body.get("stream"):
            text, thought, metrics = "", "", dict[str, Any]()
            for piece, final in [first, *events]:
                if isinstance(piece, Thought):
                    thought += piece
                else:
                    text += piece or ""
                metrics = final or metrics
            reason, usage = finish(metrics)
            message = {"role": "assistant", "content": text, **({"reasoning": thought} if thought else {})}
            self.send_json(
                200,
                {
                    **base,
                    "object": "chat.completion",
                    "choices": [{"index": 0, "message": message, "finish_reason": reason}],
                    "usage": usage,
                },
            )
            return
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        self.start_stream("text/event-stream")

        def sse(obj: Any) -> None:
            self.write_chunk(b"data: " + dumps(obj) + b"\n\n")

        for piece, final in [first, *events]:
            chunk = {**base, "object": "chat.completion.chunk"}
            if final is None:
                # Ollama's OpenAI layer sends a thinking model's reasoning in its own field, never as content.
                is_thought = isinstance(piece, Thought)
                delta = {"role": "assistant", "content": "" if is_thought else piece}
                if is_thought:
                    delta["reasoning"] = str(piece)
                sse({**chunk, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
                continue
            reason, usage = finish(final)
            done_delta = {"role": "assistant", "content": ""}
            sse({**chunk, "choices": [{"index": 0, "delta": done_delta, "finish_reason": reason}]})
            if include_usage:
                sse({**chunk, "choices": [], "usage": usage})
        self.write_chunk(b"data: [DONE]\n\n")
        self.end_stream()

    def openai_models(self) -> None:
        data = []
        for name, path in self.server.store.models():
            created = int(path.stat().st_mtime)
            data.append({"id": name.shortest(), "object": "model", "created": created, "owned_by": name.namespace})
        self.send_json(200, {"object": "list", "data": data})


# --- serve ----------------------------------------------------------------------------------------------


def initialize_keypair() -> None:
    """Like cmd.initializeKeypair: the server needs a writable HOME to create ~/.ollama/id_ed25519."""
    home = Path.home()
    priv = home / ".ollama" / "id_ed25519"
    if priv.exists():
        return
    print(f"Couldn't find '{priv}'. Generating new private key.", flush=True)
    try:
        priv.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    except OSError as e:
        reason = f"mkdir {e.filename}: {os_error_text(e)}"
        raise SystemExit(f"Error: could not create directory {reason}") from None
    # Not a real ed25519 key (no crypto in the stdlib); nothing reads it, only its creation matters.
    seed = base64.b64encode(secrets.token_bytes(32)).decode()
    try:
        fd = os.open(priv, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"# ollama TEST DOUBLE placeholder key, not usable for signing\n{seed}\n")
        pub = priv.with_name("id_ed25519.pub")
        pub.write_text(f"ssh-ed25519 {seed} ollama-test-double\n")
        pub.chmod(0o644)
    except OSError as e:
        raise SystemExit(f"Error: open {e.filename}: {os_error_text(e)}") from None
    print(f"Your new public key is: \n\nssh-ed25519 {seed} ollama-test-double\n", flush=True)


def os_error_text(e: OSError) -> str:
    """Go's wording for common errno values (e.g. "read-only file system")."""
    return (e.strerror or str(e)).lower()


def serve(_args: list[str]) -> int:
    initialize_keypair()
    store = Store(models_dir())
    try:
        store.ensure_dirs()
        store.fix_blobs()
        if not env("OLLAMA_NOPRUNE"):
            store.prune()
    except OSError as e:
        print(f"Error: mkdir {e.filename}: {os_error_text(e)}", file=sys.stderr)
        return 1
    registry_dir = env("OLLAMA_DOUBLE_REGISTRY")
    registry = Store(Path(registry_dir)) if registry_dir else None
    host, port = server_address()
    settings = " ".join(f"{k}:{v}" for k, v in sorted(os.environ.items()) if k.startswith("OLLAMA_"))
    log("INFO", "server config", env=f"map[{settings}]")
    panic = cors_panic(allowed_origins())
    if panic:  # the real server panics while building its routes, before it listens: exit status 2
        print(f"panic: {panic}\n\ngoroutine 1 [running]:\ngithub.com/gin-contrib/cors.newCors(...)", file=sys.stderr)
        return 2
    lib_dir = lib_ollama_path()
    problem = check_libraries(lib_dir) if version() != "0.0.0" else ""  # a source checkout has no lib/ollama
    if problem:
        print(f"Error: unable to load the backends: {problem}", file=sys.stderr)
        return 1
    try:
        httpd = Server((host, port), store, registry)
    except OSError as e:
        print(f"Error: listen tcp {host}:{port}: bind: {os_error_text(e)}", file=sys.stderr)
        return 1
    log("INFO", f"Listening on {host}:{httpd.server_address[1]} (version {version()})")
    log("INFO", "discovering available GPUs...", backends=",".join(backends(lib_dir)) or "none")
    time.sleep(int(env("OLLAMA_DOUBLE_DISCOVERY_MS") or 500) / 1000)  # bound and listening, not yet answering
    log("INFO", "inference compute", id="cpu", library="cpu", name="cpu", description="test double: no GPU")

    def stop(_signum: int, _frame: Any) -> None:
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        httpd.serve_forever(poll_interval=0.05)  # quick exit on SIGTERM
    finally:
        httpd.server_close()
    return 0


# --- client commands ------------------------------------------------------------------------------------


class ClientError(Exception):
    pass


def request(
    method: str, path: str, body: Any = None, data: bytes | IO[bytes] | None = None, timeout: float = 30.0
) -> http.client.HTTPResponse:
    url = client_base_url() + path
    headers = {"User-Agent": f"ollama/{version()} ({os.uname().machine} linux) Go/go1.24 (test double)"}
    payload: Any = data
    if body is not None:
        payload = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=payload, method=method, headers=headers)
    try:
        return urllib.request.urlopen(req, timeout=timeout)  # type: ignore[no-any-return]
    except urllib.error.HTTPError as e:
        text = e.read().decode(errors="replace")
        try:
            message = json.loads(text).get("error", text)
        except ValueError:
            message = text.strip() or f"{e.code} {e.reason}"
        raise ClientError(message) from None
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        raise ClientError("could not connect to ollama app, is it running?") from None


def stream_lines(resp: http.client.HTTPResponse) -> Any:
    for line in resp:
        if line.strip():
            event = json.loads(line)
            if "error" in event:
                raise ClientError(event["error"])
            yield event


def cmd_version() -> int:
    try:
        server_version = json.load(request("GET", "/api/version", timeout=5)).get("version", "")
    except ClientError:
        server_version = ""
        print("Warning: could not connect to a running Ollama instance")
    if server_version:
        print(f"ollama version is {server_version}")
    if server_version != version():
        print(f"Warning: client version is {version()}")
    return 0


def human_bytes(n: int) -> str:
    for unit, size in (("GB", 1000**3), ("MB", 1000**2), ("KB", 1000)):
        if n >= size:
            return f"{n / size:.0f} {unit}" if n / size >= 10 else f"{n / size:.1f} {unit}"
    return f"{n} B"


def human_since(stamp: str) -> str:
    when = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    seconds = (datetime.datetime.now(datetime.timezone.utc) - when).total_seconds()
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count > 1 else ''} ago"
    if seconds < 1:
        return "Less than a second ago"
    return "1 second ago" if int(seconds) == 1 else f"{int(seconds)} seconds ago"


def cmd_list(_args: list[str]) -> int:
    models = json.load(request("GET", "/api/tags")).get("models", [])
    rows = [("NAME", "ID", "SIZE", "MODIFIED")]
    for m in models:
        rows.append((m["name"], m["digest"][:12], human_bytes(m["size"]), human_since(m["modified_at"])))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print("    ".join(c.ljust(w) for c, w in zip(r[:3], widths, strict=True)) + "    " + r[3])
    return 0


def print_progress(resp: http.client.HTTPResponse) -> None:
    last = ""
    for event in stream_lines(resp):
        status = event.get("status", "")
        if event.get("total"):
            percent = 100 * event.get("completed", 0) // event["total"]
            line = f"{status}: {percent}% {human_bytes(event['total'])}"
        else:
            line = status
        if line != last:
            print(line, flush=True)
            last = line


def cmd_pull(args: list[str]) -> int:
    names = [a for a in args if not a.startswith("-")]
    if len(names) != 1:
        raise ClientError(f"accepts 1 arg(s), received {len(names)}")
    body = {"model": names[0], "insecure": "--insecure" in args}
    print_progress(request("POST", "/api/pull", body, timeout=3600))
    return 0


def cmd_rm(args: list[str]) -> int:
    if not args:
        raise ClientError("requires at least 1 arg(s), only received 0")
    for name in args:
        request("DELETE", "/api/delete", {"model": name})
        print(f"deleted '{name}'")
    return 0


def parse_modelfile(text: str) -> list[tuple[str, str]]:
    """Commands of a Modelfile: (INSTRUCTION, argument), with triple-quoted multi-line arguments."""
    commands: list[tuple[str, str]] = []
    lines = iter(text.splitlines())
    for line in lines:
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        instruction, _, arg = stripped.partition(" ")
        arg = arg.strip()
        if arg.startswith('"""'):
            arg = arg[3:]
            while not arg.endswith('"""'):
                try:
                    arg += "\n" + next(lines)
                except StopIteration:
                    raise ClientError("unterminated multiline string") from None
            arg = arg[:-3]
        elif len(arg) >= 2 and arg[0] == arg[-1] == '"':
            arg = arg[1:-1]
        commands.append((instruction.upper(), arg))
    return commands


def upload_blob(path: Path) -> str:
    digest = sha256_file(path)
    try:
        request("HEAD", f"/api/blobs/{digest}")
        return digest
    except ClientError:
        pass
    print(f"copying file {digest} 100%", flush=True)
    with path.open("rb") as f:
        request("POST", f"/api/blobs/{digest}", data=f, timeout=3600)
    return digest


def cmd_create(args: list[str]) -> int:
    modelfile_arg = "Modelfile"
    names = []
    it = iter(args)
    for a in it:
        if a in ("-f", "--file"):
            modelfile_arg = next(it, "")
        elif a.startswith("--file="):
            modelfile_arg = a.split("=", 1)[1]
        elif not a.startswith("-"):
            names.append(a)
    if len(names) != 1:
        raise ClientError(f"accepts 1 arg(s), received {len(names)}")
    modelfile = Path(modelfile_arg).expanduser()
    try:
        commands = parse_modelfile(modelfile.read_text())
    except OSError as e:
        raise ClientError(f"open {modelfile}: {os_error_text(e)}") from None
    body: dict[str, Any] = {"model": names[0]}
    parameters: dict[str, Any] = {}
    for instruction, arg in commands:
        if instruction == "FROM":
            source = (modelfile.parent / Path(arg).expanduser()) if not Path(arg).is_absolute() else Path(arg)
            if source.is_file():
                body["files"] = {source.name: upload_blob(source)}
            else:
                body["from"] = arg
        elif instruction in ("TEMPLATE", "SYSTEM"):
            body[instruction.lower()] = arg
        elif instruction == "LICENSE":
            body.setdefault("license", []).append(arg)
        elif instruction == "PARAMETER":
            key, _, value = arg.partition(" ")
            parsed: Any = value.strip()
            with contextlib.suppress(ValueError):
                parsed = json.loads(parsed)
            if key == "stop":
                parameters.setdefault(key, []).append(parsed)
            else:
                parameters[key] = parsed
        else:
            raise ClientError(
                f'command must be one of "from", "license", "template", "system", '
                f'"adapter", "parameter", or "message" (got "{instruction.lower()}")'
            )
    if "from" not in body and "files" not in body:
        raise ClientError("no FROM line")
    if parameters:
        body["parameters"] = parameters
    print_progress(request("POST", "/api/create", body, timeout=3600))
    return 0


USAGE = """Large language model runner (TEST DOUBLE)

Usage:
  ollama [flags]
  ollama [command]

Available Commands:
  serve       Start ollama
  create      Create a model from a Modelfile
  pull        Pull a model from a registry
  list        List models
  rm          Remove a model

Flags:
  -h, --help      help for ollama
  -v, --version   Show version information
"""


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0
    command, args = argv[0], argv[1:]
    if command in ("-v", "--version"):
        return cmd_version()
    commands = {
        "serve": serve,
        "start": serve,
        "list": cmd_list,
        "ls": cmd_list,
        "pull": cmd_pull,
        "rm": cmd_rm,
        "create": cmd_create,
    }
    handler = commands.get(command)
    if handler is None:
        print(f'Error: unknown command "{command}" for "ollama"', file=sys.stderr)
        return 1
    try:
        return handler(args)
    except ClientError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
