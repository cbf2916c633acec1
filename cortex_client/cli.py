"""`cortex-llm`: check the setup (`doctor`), ask one question (`ask`), list and pull Ollama models (`models`).

Startup stays light: httpx is imported only when a command talks to a server, the cloud SDKs only when a
cloud provider answers a question. Every line printed goes through `_Out`, which removes the
configured API keys, so no secret reaches the terminal or a log, even when a server echoes one back.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TextIO

from . import __version__
from ._config import PROVIDER_CHOICES, SECRET_KEYS, Settings, redact_url
from ._errors import CortexLLMError, ErrorKind, ProviderError
from ._pool import Endpoint
from ._registry import CLOUD, lookup_provider
from ._router import LLMRouter
from ._types import LLMProvider, TaskType
from .providers._base import redact
from .providers._sdk import SDKProvider
from .providers.ollama import is_cloud_model

_PROBE_TIMEOUT = 5.0
_START_OLLAMA = "is Ollama running? systemctl start ollama (or: ollama serve); else set OLLAMA_BASE_URL to its URL"
_BAR_WIDTH = 30


class _Out:
    """Redacting printer for one command run."""

    def __init__(self, secrets: Iterable[str] = (), stream: TextIO | None = None) -> None:
        self.secrets = tuple(s for s in secrets if s)
        self.stream = stream or sys.stdout

    def clean(self, text: str) -> str:
        return redact(text, self.secrets)

    def line(self, text: str = "") -> None:
        print(self.clean(text), file=self.stream, flush=True)

    def write(self, text: str) -> None:
        self.stream.write(self.clean(text))
        self.stream.flush()

    def error(self, text: str) -> None:
        print(f"cortex-llm: error: {self.clean(text)}", file=sys.stderr, flush=True)


def _human_bytes(size: float) -> str:
    if size < 1000:
        return f"{size:.0f} B"
    for unit in ("KB", "MB"):
        size /= 1000
        if size < 1000:
            return f"{size:.1f} {unit}"
    return f"{size / 1000:.1f} GB"


def _model_key(name: str) -> str:
    """`llama3.2` and `llama3.2:latest` name the same Ollama model."""
    name = name.strip().lower()
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


# --- doctor ------------------------------------------------------------------------------------------------


class _Report:
    def __init__(self, out: _Out) -> None:
        self.out = out
        self.problems = 0

    def row(self, status: str, provider: str, text: str) -> None:
        """One finding, on one line: role cortex_env shows doctor's output line by line."""
        if status == "FAIL":
            self.problems += 1
        self.out.line(f"  {status:<5} {provider:<8} {' '.join(text.split())}")


def _probe_cloud(provider: SDKProvider, endpoint: Endpoint) -> tuple[str, str]:
    """(status, text) for one model listing with the endpoint's key, made the way requests are made."""
    try:
        provider.check(endpoint, _PROBE_TIMEOUT)
    except ProviderError as exc:
        if exc.kind is ErrorKind.AUTH:
            return "FAIL", f"{endpoint.label} rejected the key (HTTP {exc.status})"
        if exc.status is not None:
            return "FAIL", f"{endpoint.label} answered HTTP {exc.status}: {exc}"
        return "FAIL", f"{endpoint.label} unreachable ({exc})"
    return "ok", f"{endpoint.label} reachable, key accepted"


def _doctor_ollama(router: LLMRouter, report: _Report, required: bool) -> None:
    ollama = router.ollama
    failed = "FAIL" if required else "warn"
    wanted = _model_key(ollama.model)
    for endpoint in ollama.pool.endpoints:
        try:
            native = ollama.dialect(endpoint) == "native"
            server = f"version {ollama.version(endpoint) or 'unknown'}" if native else "an OpenAI-compatible server"
            served = [str(m.get("name", "")) for m in ollama.list_models(endpoint)]
        except CortexLLMError as exc:
            report.row(failed, "ollama", f"{endpoint.label} unreachable: {exc} ({_START_OLLAMA})")
            continue
        names = {_model_key(name) for name in served}
        report.row("ok", "ollama", f"{endpoint.label} {server}, {len(names)} model(s)")
        if wanted in names:
            report.row("ok", "ollama", f"model {wanted} present")
        elif native:
            report.row(failed, "ollama", f"model {wanted} not pulled (run: cortex-llm models pull {ollama.model})")
        else:  # `models pull` speaks Ollama's /api/pull, which this server does not have
            report.row(
                failed,
                "ollama",
                f"model {ollama.model} not served by {endpoint.label}, which is not an Ollama: load it in that server, "
                f"or set OLLAMA_MODEL to one it serves ({', '.join(served) or 'none'})",
            )


def _cmd_doctor(args: argparse.Namespace, settings: Settings, out: _Out) -> int:
    """Every finding at once (the settings were loaded leniently): each bad value, unreadable file and warning is
    a row naming where it came from, and the checks of the servers still run with the values that could be used."""
    report = _Report(out)
    out.line(f"config (highest precedence first: environment, {', '.join(settings.files)})")
    if not settings.sources:
        out.line("  no configuration found: using defaults")
    for key, source in settings.sources.items():
        value = "<set>" if key in SECRET_KEYS else redact_url(settings.raw[key])
        out.line(f"  {key}={value}  (from {source})")
    for note in settings.unreadable:
        report.row("FAIL", "config", note)
    for problem in settings.problems:
        report.row("FAIL", "config", problem)
    try:
        router = LLMRouter(settings=settings)
    except CortexLLMError as exc:
        report.row("FAIL", "config", str(exc))
        out.line(f"{report.problems} problem(s)")
        return 1
    for warning in router.warnings:
        report.row("warn", "config", warning)
    with router:
        _doctor_providers(router, settings, report)
    out.line(f"{report.problems} problem(s)")
    return 1 if report.problems else 0


def _doctor_providers(router: LLMRouter, settings: Settings, report: _Report) -> None:
    default = router.default_provider.value if router.default_provider else "routing table"
    report.out.line(f"providers (default: {default}, local-only: {'yes' if router.local_only else 'no'})")
    ollama_configured = any(k in settings.sources for k in ("OLLAMA_BASE_URL", "OLLAMA_HOST", "OLLAMA_MODEL"))
    # A cloud-only setup works without Ollama; then a missing daemon is worth a warning, not a failure.
    cloud_default = router.default_provider is not None and router.default_provider.is_cloud
    _doctor_ollama(router, report, required=router.local_only or ollama_configured or not cloud_default)
    for spec in CLOUD:
        api_key = settings.api_keys.get(spec.kind)
        if router.local_only:  # never opens a connection to a cloud provider
            report.row("skip", spec.kind.value, "local-only mode: not contacted")
        elif not api_key:
            report.row("-", spec.kind.value, "not configured (no API key)")
        else:
            provider = router.providers[spec.kind]
            assert isinstance(provider, SDKProvider)
            for endpoint in provider.pool.endpoints:  # one per key of a key list
                status, text = _probe_cloud(provider, endpoint)
                report.row(status, spec.kind.value, text)


# --- ask -----------------------------------------------------------------------------------------------------


def _read_prompt(words: list[str]) -> str:
    return sys.stdin.read() if words == ["-"] else " ".join(words)


def _cmd_ask(args: argparse.Namespace, settings: Settings, out: _Out) -> int:
    prompt = _read_prompt(args.prompt).strip()
    if not prompt:
        out.error("the prompt is empty")
        return 2
    force: LLMProvider | None = args.provider
    messages = [{"role": "system", "content": args.system}] if args.system else []
    messages.append({"role": "user", "content": prompt})
    with LLMRouter(settings=settings) as router:
        chunks = router.stream(
            messages,
            task_type=TaskType(args.task),
            force_provider=force,
            temperature=args.temperature,
            max_tokens=args.max_tokens,
        )
        for chunk in chunks:
            if chunk.response is None:
                out.write(chunk.text)
                continue
            r = chunk.response
            out.line()
            summary = (
                f"{r.provider.value} {r.model}, {r.input_tokens}+{r.output_tokens} tokens"
                f"{' (estimated)' if r.usage_estimated else ''}, ${r.cost_usd:.6f}, {r.latency_seconds:.2f}s"
            )
            failed = [f"{a.provider.value}: {a.outcome}" for a in r.attempts if a.outcome != "ok"]
            if failed:  # a fallback is never silent
                summary += f", after {'; '.join(failed)}"
            _Out(out.secrets, sys.stderr).line(f"[{summary}]")
    return 0


# --- models --------------------------------------------------------------------------------------------------


def _cmd_models_list(args: argparse.Namespace, settings: Settings, out: _Out) -> int:
    with LLMRouter(settings=settings) as router:
        endpoints = router.ollama.pool.endpoints
        for endpoint in endpoints:
            if len(endpoints) > 1:
                out.line(f"{endpoint.label}:")
            models = router.ollama.list_models(endpoint)
            if not models:
                out.line("no models (pull one: cortex-llm models pull NAME)")
                continue
            out.line(f"{'NAME':<40} {'SIZE':>10}  MODIFIED")
            for m in models:
                size = _human_bytes(float(m.get("size") or 0))
                out.line(f"{m.get('name', '?'):<40} {size:>10}  {str(m.get('modified_at', ''))[:19]}")
    return 0


class _Progress:
    """Pull progress from Ollama's NDJSON: one bar over all layers (total/completed per digest) on a
    terminal; on a pipe or log, one plain line per status and per finished layer."""

    def __init__(self, out: _Out, tty: bool) -> None:
        self.out = out
        self.tty = tty
        self.layers: dict[str, tuple[int, int]] = {}  # digest -> (completed, total)
        self.status = ""
        self.finished: set[str] = set()
        self.drawn = False

    def update(self, event: dict[str, Any]) -> None:
        status = str(event.get("status", ""))
        digest = event.get("digest")
        if digest and event.get("total") is not None:
            self.layers[str(digest)] = (int(event.get("completed") or 0), int(event["total"]))
        if self.tty:
            self._draw(status)
            return
        if status != self.status and not digest:
            self.out.line(status)
        if digest and digest not in self.finished:
            done, total = self.layers.get(str(digest), (0, -1))
            if done >= total:
                self.finished.add(str(digest))
                self.out.line(f"{status}: {_human_bytes(total)} done")
        self.status = status

    def _draw(self, status: str) -> None:
        done = sum(c for c, _ in self.layers.values())
        total = sum(t for _, t in self.layers.values())
        if total:
            filled = int(_BAR_WIDTH * done / total)
            bar = "#" * filled + "-" * (_BAR_WIDTH - filled)
            text = f"{status:<28} [{bar}] {100 * done // total:3d}% {_human_bytes(done)}/{_human_bytes(total)}"
        else:
            text = status
        self.out.write(f"\r{text:<80}")
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.out.write("\n")


def _cmd_models_pull(args: argparse.Namespace, settings: Settings, out: _Out) -> int:
    with LLMRouter(settings=settings) as router:
        ollama = router.ollama
        if ollama.local_only and is_cloud_model(args.name):
            out.error(f"{args.name!r} runs on ollama.com; refused in local-only mode")
            return 1
        for endpoint in ollama.pool.endpoints:
            if len(ollama.pool.endpoints) > 1:
                out.line(f"{endpoint.label}:")
            if ollama.dialect(endpoint) != "native":
                out.error(f"{endpoint.label} is not an Ollama (no /api/pull): load {args.name} in that server itself")
                return 1
            progress = _Progress(out, sys.stdout.isatty())
            try:
                for event in ollama.pull(args.name, endpoint):
                    progress.update(event)
            finally:
                progress.close()
    return 0


# --- setup -------------------------------------------------------------------------------------------------

SETUP_SCRIPT = Path("scripts") / "setup_ollama.py"


def _cmd_setup(args: argparse.Namespace, settings: Settings, out: _Out) -> int:
    """Run the checkout's scripts/setup_ollama.py (the site playbook on this host), passing the options on."""
    project = args.project or Path(__file__).resolve().parents[1]
    script = project / SETUP_SCRIPT
    if not script.is_file():
        out.error(
            f"no {SETUP_SCRIPT} under {project}: setup runs the provisioning playbook of a checkout of this "
            "project; give its directory with --project DIR"
        )
        return 2
    return subprocess.run([sys.executable, str(script), *args.setup_args], check=False).returncode


# --- entry point ---------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cortex-llm", description="Cortex LLM router: check, ask, manage models.")
    parser.add_argument("--version", action="version", version=f"cortex-llm {__version__}")
    parser.add_argument(
        "--etc-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="system configuration directory holding .env (default: /etc/cortex)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    doctor = sub.add_parser("doctor", help="check configuration, providers and models; non-zero exit on problems")
    doctor.set_defaults(func=_cmd_doctor)

    ask = sub.add_parser("ask", help="ask one question; the answer is streamed")
    ask.add_argument("prompt", nargs="+", help="the prompt; '-' reads it from stdin")
    ask.add_argument(
        "--provider",
        type=_provider,
        metavar="P",
        help=f"use exactly this provider, no fallback: {PROVIDER_CHOICES} (or an alias: kimi, anthropic, ...)",
    )
    ask.add_argument("--system", help="system prompt")
    ask.add_argument("--task", default="user_chat", choices=[t.value for t in TaskType], help="task type for routing")
    ask.add_argument(
        "--max-tokens", type=int, default=None, help="bound of the answer (default: the provider's, 1024 for Ollama)"
    )
    ask.add_argument("--temperature", type=float, default=0.7)
    ask.set_defaults(func=_cmd_ask)

    models = sub.add_parser("models", help="list local Ollama models (default) or pull one")
    models.set_defaults(func=_cmd_models_list)
    models_sub = models.add_subparsers(dest="models_command", metavar="{list,pull}")
    models_sub.add_parser("list", help="list installed models").set_defaults(func=_cmd_models_list)
    pull = models_sub.add_parser("pull", help="pull a model, with progress")
    pull.add_argument("name", help="model name, e.g. llama3.2:1b")
    pull.set_defaults(func=_cmd_models_pull)

    setup = sub.add_parser(
        "setup",
        help="install Ollama, a model and this configuration on this host (runs the checkout's setup_ollama.py)",
    )
    setup.add_argument("--project", type=Path, default=None, metavar="DIR", help="the checkout (default: this one)")
    setup.add_argument(
        "setup_args",
        nargs=argparse.REMAINDER,
        help="options for setup_ollama.py (--model NAME, --non-interactive, ...)",
    )
    setup.set_defaults(func=_cmd_setup)
    return parser


def _provider(name: str) -> LLMProvider:
    """--provider takes what force_provider= takes: a provider's value or one of its aliases."""
    provider = lookup_provider(name)
    if provider is None:
        raise argparse.ArgumentTypeError(f"{name!r} is none of {PROVIDER_CHOICES} (nor an alias of one)")
    return provider


def _command_index(argv: list[str]) -> int | None:
    """Where the command word is: the first argument that is neither a global option nor its value."""
    i = 0
    while i < len(argv):
        if argv[i] == "--etc-dir":
            i += 2
        elif argv[i].startswith("-"):
            i += 1
        else:
            return i
    return None


_SETUP_PARSER = argparse.ArgumentParser(add_help=False)
_SETUP_PARSER.add_argument("--project", type=Path, default=None)

Command = Callable[[argparse.Namespace, Settings, _Out], int]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # `setup` hands its options to setup_ollama.py; only --project is its own (a flat parser keeps their order).
    setup_args: list[str] = []
    command_at = _command_index(argv)
    if command_at is not None and argv[command_at] == "setup":
        cut = command_at + 1
        argv, setup_args = argv[:cut], argv[cut:]
        own, setup_args = _SETUP_PARSER.parse_known_args(setup_args)
        argv += ["--project", str(own.project)] if own.project else []
    args = _parser().parse_args(argv)
    args.setup_args = setup_args
    out = _Out()
    try:
        # doctor reports bad values (all of them) rather than stopping at the first
        settings = Settings.load(etc_dir=args.etc_dir, lenient=args.func is _cmd_doctor)
        out.secrets = settings.secrets()
        command: Command = args.func
        return command(args, settings, out)
    except CortexLLMError as exc:  # messages may quote a server: _Out redacts them
        out.error(str(exc))
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader left (`cortex-llm ask ... | head`): stop quietly, with the status a SIGPIPE gives (128 + 13).
        # Python flushes stdout once more at exit; point it at /dev/null so that does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
