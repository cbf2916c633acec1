"""Every Python example of docs/client.md, and the README's router example, run as written against the real local
model: llama.cpp's server (Gemma 3 270M) behind OLLAMA_BASE_URL, as a user would point the client at it. An example
marked `<!-- e2e: cloud fakes -->` runs with the cloud providers' keys and base URLs at loopback fakes of their APIs.
The examples read their configuration the way applications do (environment, ./.env, ~/.cortex/.env, the system
file), from an isolated directory; nothing of the developer's own configuration is read."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cortex_client import LLMProvider, _config, _defaults, _helpers
from tests.support.fakes import FakeAnthropic

from .conftest import LlamaServer

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^(?P<marker><!-- e2e: (?P<kind>[a-z ]+) -->\n)?```(?P<lang>\w*)\n(?P<code>.*?)^```$", re.M | re.S)
KINDS = ("cloud fakes",)


@dataclass(frozen=True)
class Example:
    where: str  # doc:line, as tracebacks name it
    code: str
    cloud_fakes: bool


def python_examples(doc: Path, section: str | None = None) -> list[Example]:
    text = doc.read_text(encoding="utf-8")
    if section is not None:  # only the blocks under this heading (the README's other commands are not Python)
        start = text.index(section)
        end = text.find("\n## ", start + len(section))
        text = text[: end if end != -1 else len(text)]
        found = [m for m in FENCE.finditer(text) if m.start() >= start]
    else:
        found = list(FENCE.finditer(text))
    examples = []
    for m in found:
        if m["kind"] is not None and m["kind"] not in KINDS:
            pytest.fail(f"{doc.name}: unknown marker <!-- e2e: {m['kind']} --> (known: {KINDS})")
        if m["lang"] == "python":
            line = text.count("\n", 0, m.start("code")) + 1
            examples.append(Example(f"{doc.relative_to(ROOT)}:{line}", m["code"], m["kind"] == "cloud fakes"))
    return examples


EXAMPLES = [
    *python_examples(ROOT / "docs" / "client.md"),
    *python_examples(ROOT / "README.md", section="## The router in one look"),
]


def test_the_docs_have_the_examples_this_suite_runs() -> None:
    """A parsing slip must not turn the suite below into nothing: the pages hold these many Python examples."""
    client = (ROOT / "docs" / "client.md").read_text(encoding="utf-8")
    assert len([e for e in EXAMPLES if e.where.startswith("docs/")]) == client.count("```python") >= 5
    assert len([e for e in EXAMPLES if e.where.startswith("README")]) == 1
    assert any(e.cloud_fakes for e in EXAMPLES)


@pytest.fixture
def isolated_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An application's view of the configuration, all of it under tmp_path."""
    for key in _config.KEYS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(_config, "ETC_DIR", tmp_path / "etc-cortex")  # the system file, /etc/cortex/.env
    monkeypatch.setattr(_helpers, "_shared", None)  # complete_task's router is built from this configuration
    return tmp_path


@pytest.fixture
def cloud_fakes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    anthropic = FakeAnthropic()
    try:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-doc-example")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", anthropic.url)
        yield
    finally:
        anthropic.close()


@pytest.mark.usefixtures("isolated_user")
@pytest.mark.parametrize("example", EXAMPLES, ids=[e.where for e in EXAMPLES])
def test_the_example_runs_against_the_real_local_model(
    example: Example,
    llama_server: LlamaServer,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # As people set it: the server's root; the client finds out it is not an Ollama and speaks /v1 to it.
    monkeypatch.setenv("OLLAMA_BASE_URL", llama_server.base_url.removesuffix("/v1"))
    monkeypatch.setenv("OLLAMA_MODEL", llama_server.model)
    # The examples that give no max_tokens get the local model's default bound; 1024 tokens of a rambling 270M
    # model take half a minute per answer here, so the suite lowers that bound (tests/client/test_output_bounds.py
    # tests the real one). Everything else runs as written.
    monkeypatch.setitem(_defaults.DEFAULT_MAX_TOKENS, LLMProvider.OLLAMA, 96)
    if example.cloud_fakes:
        request.getfixturevalue("cloud_fakes")
    exec(compile(example.code, example.where, "exec"), {"__name__": "__doc_example__"})
    printed = capsys.readouterr().out
    if "print(" in example.code:
        assert printed.strip(), f"{example.where} printed nothing"
