"""Configuration: precedence chain, .env parsing, routing from CORTEX_PROVIDER, clear errors, redaction."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from cortex_client import ConfigError, LLMProvider, LLMRouter, Settings, TaskType
from cortex_client._config import parse_dotenv
from tests.support.fakes import Reply


def layout(tmp_path: Path) -> dict[str, Path]:
    dirs = {name: tmp_path / name for name in ("cwd", "home", "etc")}
    (dirs["home"] / ".cortex").mkdir(parents=True)
    dirs["cwd"].mkdir()
    dirs["etc"].mkdir()
    return dirs


def write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def load(dirs: dict[str, Path], environ: dict[str, str] | None = None, **overrides: str) -> Settings:
    return Settings.load(overrides, environ=environ or {}, cwd=dirs["cwd"], home=dirs["home"], etc_dir=dirs["etc"])


def test_precedence_argument_env_cwd_home_etc(tmp_path):
    dirs = layout(tmp_path)
    write(
        dirs["etc"] / ".env",
        "OLLAMA_MODEL=from-etc\nKIMI_MODEL=k-etc\nCLAUDE_MODEL=c-etc\nOPENAI_MODEL=o-etc\nOLLAMA_BASE_URL=http://etc:1\n",
    )
    write(
        dirs["home"] / ".cortex" / ".env",
        "OLLAMA_MODEL=from-home\nKIMI_MODEL=k-home\nCLAUDE_MODEL=c-home\nOPENAI_MODEL=o-home\n",
    )
    write(dirs["cwd"] / ".env", "OLLAMA_MODEL=from-cwd\nKIMI_MODEL=k-cwd\nCLAUDE_MODEL=c-cwd\n")
    environ = {"OLLAMA_MODEL": "from-env", "KIMI_MODEL": "k-env"}
    settings = load(dirs, environ, OLLAMA_MODEL="from-arg")
    assert settings.models == {
        LLMProvider.OLLAMA: "from-arg",
        LLMProvider.KIMI_K2: "k-env",
        LLMProvider.CLAUDE: "c-cwd",
        LLMProvider.OPENAI: "o-home",
    }
    assert settings.ollama_base_urls == ("http://etc:1",)
    assert settings.sources == {
        "OLLAMA_MODEL": "argument",
        "KIMI_MODEL": "environment",
        "CLAUDE_MODEL": str(dirs["cwd"] / ".env"),
        "OPENAI_MODEL": str(dirs["home"] / ".cortex" / ".env"),
        "OLLAMA_BASE_URL": str(dirs["etc"] / ".env"),
    }


def test_router_arguments_beat_the_environment(tmp_path):
    dirs = layout(tmp_path)
    settings = load(dirs, {"OPENAI_API_KEY": "sk-env", "OPENAI_MODEL": "gpt-env"})
    router = LLMRouter(openai_model="gpt-arg", settings=settings)
    assert router.models[LLMProvider.OPENAI] == "gpt-arg"
    assert router.settings.sources["OPENAI_MODEL"] == "argument"
    assert router.settings.api_keys[LLMProvider.OPENAI] == "sk-env"


def test_dotenv_syntax():
    text = """
# a comment
export CORTEX_PROVIDER=ollama
OLLAMA_MODEL = "qwen3:8b"
CLAUDE_MODEL='claude-sonnet-4-6'
KIMI_MODEL=kimi-k2.6   # trailing comment
OPENAI_MODEL="gpt-4o # not a comment"
"""
    assert parse_dotenv(text) == (
        {
            "CORTEX_PROVIDER": "ollama",
            "OLLAMA_MODEL": "qwen3:8b",
            "CLAUDE_MODEL": "claude-sonnet-4-6",
            "KIMI_MODEL": "kimi-k2.6",
            "OPENAI_MODEL": "gpt-4o # not a comment",
        },
        [],
    )


def test_dotenv_files_as_people_write_them():
    """python-dotenv's rules: a BOM, a multi-line quoted value, a comment after a quoted value, escapes."""
    text = (
        '\ufeffOLLAMA_MODEL="llama3.2" # the small one\nANTHROPIC_API_KEY="sk-ant-\nsplit"\nexport KIMI_MODEL=\'k2\'\n'
    )
    values, warnings = parse_dotenv(text, "f")
    assert values == {"OLLAMA_MODEL": "llama3.2", "ANTHROPIC_API_KEY": "sk-ant-\nsplit", "KIMI_MODEL": "k2"}
    assert warnings == []


def test_a_malformed_line_warns_names_the_line_never_the_value_and_is_skipped(tmp_path, caplog):
    dirs = layout(tmp_path)
    secret = "sk-ant-SECRET-in-a-broken-line"
    write(
        dirs["home"] / ".cortex" / ".env",
        f"OLLAMA_MODEL=x\n{secret} oops\nCORTEX_PROVDER=ollama\nOPENAI_MODEL\nDATABASE_URL=postgres://u:p@h/db\n",
    )
    settings = load(dirs)  # never stops construction
    assert settings.models == {LLMProvider.OLLAMA: "x"}
    home_env = str(dirs["home"] / ".cortex" / ".env")
    assert settings.warnings == (
        f"{home_env}:2: not a KEY=value line (python-dotenv syntax); skipped",
        f"{home_env}:3: CORTEX_PROVDER is not a setting cortex_client reads; ignored",
        f"{home_env}:4: OPENAI_MODEL has no '=value'; skipped",
    )  # another program's key (DATABASE_URL) is not ours to warn about
    with caplog.at_level(logging.DEBUG, logger="cortex_client"):
        router = LLMRouter(settings=settings)
    assert "CORTEX_PROVDER" in caplog.text
    assert secret not in caplog.text and "postgres" not in caplog.text
    router.close()


def test_a_bad_value_is_an_error_that_does_not_echo_it(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load(layout(tmp_path), {"OPENAI_BASE_URL": "sk-proj-pasted-into-the-wrong-key"})
    assert "OPENAI_BASE_URL (from environment) must be an http" in str(caught.value)
    assert "sk-proj" not in str(caught.value)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("CORTEX_LOCAL_ONLY", "maybe", r"CORTEX_LOCAL_ONLY \(from environment\) must be true or false"),
        ("OLLAMA_BASE_URL", "ftp://host", r"OLLAMA_BASE_URL \(from environment\) must be an http"),
        ("OPENAI_BASE_URL", "api.openai.com", r"OPENAI_BASE_URL \(from environment\) must be an http"),
    ],
)
def test_bad_values_are_rejected_with_the_key_named(tmp_path, key, value, message):
    with pytest.raises(ConfigError, match=message):
        load(layout(tmp_path), {key: value})


def test_unreadable_env_file_is_reported_not_fatal(tmp_path):
    dirs = layout(tmp_path)
    (dirs["etc"] / ".env").mkdir()  # reading a directory fails like a permission problem would
    settings = load(dirs)
    assert len(settings.unreadable) == 1 and "not readable" in settings.unreadable[0]


def test_ollama_host_is_a_fallback_for_ollama_base_url(tmp_path):
    dirs = layout(tmp_path)
    assert load(dirs, {"OLLAMA_HOST": "0.0.0.0:11434"}).ollama_base_urls == ("http://127.0.0.1:11434",)
    assert load(dirs, {"OLLAMA_HOST": "gpu1"}).ollama_base_urls == ("http://gpu1:11434",)
    both = load(dirs, {"OLLAMA_HOST": "gpu1", "OLLAMA_BASE_URL": "http://gpu2:11434/"})
    assert both.ollama_base_urls == ("http://gpu2:11434",)
    assert load(dirs).ollama_base_urls == ("http://localhost:11434",)


def test_comma_separated_ollama_urls_make_a_pool(tmp_path):
    settings = load(layout(tmp_path), {"OLLAMA_BASE_URL": "http://a:11434, http://b:11434,http://a:11434"})
    assert settings.ollama_base_urls == ("http://a:11434", "http://b:11434")


def test_original_routing_table_without_a_default_provider(make_router):
    router = make_router(claude_api_key="sk-ant-x", kimi_api_key="sk-kimi-x", openai_api_key="sk-openai-x")
    assert router.route_task(TaskType.USER_CHAT).provider is LLMProvider.CLAUDE
    assert router.route_task(TaskType.REQUIREMENT_PARSING).provider is LLMProvider.CLAUDE
    assert router.route_task(TaskType.CODE_GENERATION).provider is LLMProvider.KIMI_K2
    chain = [p.kind for p in router._chain(TaskType.CODE_GENERATION, None)]
    assert chain == [LLMProvider.KIMI_K2, LLMProvider.CLAUDE, LLMProvider.OPENAI, LLMProvider.OLLAMA]


def test_cortex_provider_ollama_makes_every_task_local_first(tmp_path, ollama):
    dirs = layout(tmp_path)
    write(dirs["etc"] / ".env", f"CORTEX_PROVIDER=ollama\nOLLAMA_BASE_URL={ollama.url}\nANTHROPIC_API_KEY=sk-ant-x\n")
    router = LLMRouter(settings=load(dirs))
    for task in TaskType:
        chain = [p.kind for p in router._chain(task, None)]
        assert chain == [LLMProvider.OLLAMA, LLMProvider.CLAUDE]
    assert router.complete([{"role": "user", "content": "hi"}]).provider is LLMProvider.OLLAMA


def test_unconfigured_providers_are_left_out_of_the_chain(make_router):
    router = make_router(openai_api_key="sk-openai-x")
    chain = [p.kind for p in router._chain(TaskType.USER_CHAT, None)]
    assert chain == [LLMProvider.OPENAI, LLMProvider.OLLAMA]


def test_model_env_keys_reach_the_wire(tmp_path, openai_fake):
    settings = load(
        layout(tmp_path),
        {"OPENAI_API_KEY": "sk-openai-x", "OPENAI_MODEL": "gpt-4.1-mini", "OPENAI_BASE_URL": openai_fake.url + "/v1"},
    )
    router = LLMRouter(settings=settings)
    router.complete([{"role": "user", "content": "hi"}], force_provider=LLMProvider.OPENAI)
    assert openai_fake.requests[0].body["model"] == "gpt-4.1-mini"
    assert openai_fake.requests[0].headers["authorization"] == "Bearer sk-openai-x"


def test_secrets_are_not_in_repr(tmp_path):
    key = "sk-ant-supersecret-0123456789"
    settings = load(layout(tmp_path), {"ANTHROPIC_API_KEY": key, "MOONSHOT_API_KEY": "sk-moon-secret-987"})
    router = LLMRouter(settings=settings)
    for text in (repr(settings), str(settings), repr(router), repr(router.providers[LLMProvider.CLAUDE])):
        assert "supersecret" not in text and "moon-secret" not in text
    assert "api_keys={'claude': '<set>', 'kimi_k2': '<set>'}" in repr(settings)


def test_a_key_echoed_by_the_server_is_redacted_from_errors_and_logs(make_router, openai_fake, ollama, caplog):
    key = "sk-openai-supersecret-0123456789"
    openai_fake.default = Reply.fail(
        401, body={"error": {"message": f"Incorrect API key provided: {key[:20]}...{key[-4:]} {key}"}}
    )
    router = make_router(
        openai_api_key=key,
        openai_base_url=openai_fake.url + "/v1",
        default_provider="openai",
        ollama_base_url=ollama.url,
    )
    with caplog.at_level(logging.DEBUG, logger="cortex_client"):
        response = router.complete([{"role": "user", "content": "hi"}])
    error = response.attempts[0].error or ""
    assert "Incorrect API key provided" in error
    assert "supersecret" not in error
    assert "supersecret" not in caplog.text


# --- issue 27, item 11: every bad value named at once ---------------------------------------------------------------

BAD = {"CORTEX_LOCAL_ONLY": "maybe", "OLLAMA_API": "grpc", "OPENAI_BASE_URL": "api.openai.com"}


def test_every_bad_value_is_named_at_once(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load(layout(tmp_path), BAD)
    assert str(caught.value).startswith("3 configuration problems:")
    for key in BAD:
        assert f"{key} (from environment)" in str(caught.value)


def test_lenient_loading_lists_the_problems_and_keeps_what_works(tmp_path):
    dirs = layout(tmp_path)
    settings = Settings.load(
        environ={**BAD, "OLLAMA_BASE_URL": "http://127.0.0.1:1,ftp://x", "OPENAI_API_KEY": "sk-x"},
        cwd=dirs["cwd"],
        home=dirs["home"],
        etc_dir=dirs["etc"],
        lenient=True,
    )
    assert len(settings.problems) == 4
    assert settings.local_only  # unreadable: the safe side
    assert settings.ollama_api == "auto" and settings.ollama_base_urls == ("http://127.0.0.1:1",)
    assert LLMProvider.OPENAI not in settings.base_urls and LLMProvider.OPENAI in settings.api_keys
    assert settings.files == (
        str(dirs["cwd"] / ".env"),
        str(dirs["home"] / ".cortex" / ".env"),
        str(dirs["etc"] / ".env"),
    )
