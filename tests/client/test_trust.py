"""Issue 9, items 9-12: what is sent where. OpenAI's identity only to OpenAI, no credential across a redirect, a
`.env` in the working directory cannot redirect a key or lift local-only, local-only never reaches a cloud host."""

from __future__ import annotations

from pathlib import Path

import pytest

from cortex_client import ConfigError, LLMProvider, LLMRouter, LocalOnlyViolation, Settings
from cortex_client.providers.openai_compat import OpenAIProvider
from tests.support.fakes import ConnectionRecorder, FakeAnthropic, FakeOpenAI, Reply

from .conftest import FAST_TIMEOUTS, cloud_router_kwargs

MESSAGES = [{"role": "user", "content": "hi"}]
CLAUDE_KEY = "sk-ant-test-key-000000000000"


FAKES = {
    LLMProvider.CLAUDE: "anthropic_fake",
    LLMProvider.KIMI_K2: "kimi_fake",
    LLMProvider.OPENAI: "openai_fake",
    LLMProvider.OLLAMA: "ollama",
}


def all_providers(make_router, request: pytest.FixtureRequest, primary: LLMProvider) -> LLMRouter:
    fakes = {kind: request.getfixturevalue(name) for kind, name in FAKES.items()}
    kwargs = cloud_router_kwargs(fakes[LLMProvider.CLAUDE], fakes[LLMProvider.KIMI_K2], fakes[LLMProvider.OPENAI])
    return make_router(**kwargs, ollama_base_url=fakes[LLMProvider.OLLAMA].url, default_provider=primary)


# --- item 9: OPENAI_ORG_ID / OPENAI_PROJECT_ID go to OpenAI only ------------------------------------------------


@pytest.mark.parametrize("provider", [LLMProvider.KIMI_K2, LLMProvider.OPENAI])
def test_openai_identity_from_the_environment_is_not_sent_to_another_host(make_router, request, monkeypatch, provider):
    monkeypatch.setenv("OPENAI_ORG_ID", "org-secret-identity")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-secret-identity")
    all_providers(make_router, request, provider).complete(MESSAGES)
    headers = request.getfixturevalue(FAKES[provider]).requests[-1].headers  # OpenAI's is a loopback gateway here
    assert "openai-organization" not in headers
    assert "openai-project" not in headers


def test_openai_identity_is_kept_for_openai_itself(make_router, monkeypatch, isolated):
    monkeypatch.setenv("OPENAI_ORG_ID", "org-mine")
    router = make_router(openai_api_key="sk-openai-x")  # the default base URL: api.openai.com (no request is made)
    provider = router.providers[LLMProvider.OPENAI]
    assert isinstance(provider, OpenAIProvider)
    client = provider._sync_client(provider.pool.endpoints[0])
    assert client.organization == "org-mine"


# --- item 10: credentials never follow a redirect ---------------------------------------------------------------


@pytest.mark.parametrize("provider", list(FAKES), ids=[p.value for p in FAKES])
def test_no_request_follows_a_redirect_to_another_host(make_router, request, provider):
    elsewhere = FakeAnthropic() if provider is LLMProvider.CLAUDE else FakeOpenAI()
    try:
        # Another host name for the same loopback: an HTTP client that followed would keep x-api-key there
        # (Anthropic's SDK before 2.x sends it, and httpx drops only Authorization across hosts).
        target = elsewhere.url.replace("127.0.0.1", "localhost")
        request.getfixturevalue(FAKES[provider]).default = Reply.fail(307, headers={"Location": f"{target}/v1/x"})
        response = all_providers(make_router, request, provider).complete(MESSAGES)
    finally:
        elsewhere.close()
    assert elsewhere.requests == []
    assert response.provider is not provider  # a redirect is a failed call: the next provider answered
    assert response.attempts[0].status == 307


# --- item 11: a .env in the working directory is trusted only with what it sets itself --------------------------


def files(tmp_path: Path, **layers: str) -> dict[str, Path]:
    dirs = {name: tmp_path / name for name in ("cwd", "home", "etc")}
    for name, path in dirs.items():
        path.mkdir()
        if name in layers:
            config = path / ".cortex" if name == "home" else path
            config.mkdir(exist_ok=True)
            (config / ".env").write_text(layers[name])
    return dirs


def load(dirs: dict[str, Path], environ: dict[str, str] | None = None) -> Settings:
    return Settings.load(environ=environ or {}, cwd=dirs["cwd"], home=dirs["home"], etc_dir=dirs["etc"])


def test_a_working_directory_env_cannot_send_anothers_key_to_its_base_url(tmp_path, ollama, anthropic_fake):
    thief = ConnectionRecorder()
    try:
        dirs = files(
            tmp_path,
            etc=f"ANTHROPIC_API_KEY={CLAUDE_KEY}\nANTHROPIC_BASE_URL={anthropic_fake.url}\n",
            cwd=f"ANTHROPIC_BASE_URL={thief.url}\nOLLAMA_BASE_URL={ollama.url}\n",
        )
        settings = load(dirs)
        with LLMRouter(settings=settings, timeouts=FAST_TIMEOUTS) as router:
            response = router.complete(MESSAGES)  # Claude is not configured: its key and URL disagree on a source
        assert LLMProvider.CLAUDE not in settings.api_keys
        assert any("ANTHROPIC_API_KEY" in w and "ignored" in w for w in settings.warnings)
        assert response.provider is LLMProvider.OLLAMA
        assert thief.connections == 0
        assert anthropic_fake.requests == []
    finally:
        thief.close()


def test_key_base_url_and_model_from_one_file_work_together(tmp_path, anthropic_fake):
    dirs = files(
        tmp_path,
        etc=f"ANTHROPIC_API_KEY={CLAUDE_KEY}\nANTHROPIC_BASE_URL={anthropic_fake.url}\nCLAUDE_MODEL=claude-x\n",
    )
    with LLMRouter(settings=load(dirs), timeouts=FAST_TIMEOUTS) as router:
        response = router.complete(MESSAGES, force_provider="claude")
    assert response.content == "Hello from the fake"
    assert anthropic_fake.requests[0].body["model"] == "claude-x"


def test_a_model_from_another_source_keeps_the_key_and_base_url_together(tmp_path, anthropic_fake):
    # Issue 26, item 9a: CLAUDE_MODEL in the environment used to make /etc/cortex/.env's key ignored.
    dirs = files(tmp_path, etc=f"ANTHROPIC_API_KEY={CLAUDE_KEY}\nANTHROPIC_BASE_URL={anthropic_fake.url}\n")
    settings = load(dirs, {"CLAUDE_MODEL": "claude-from-env"})
    assert settings.api_keys[LLMProvider.CLAUDE] == CLAUDE_KEY
    assert not [w for w in settings.warnings if "ignored" in w]
    with LLMRouter(settings=settings, timeouts=FAST_TIMEOUTS) as router:
        response = router.complete(MESSAGES, force_provider="claude")
    assert response.content == "Hello from the fake"
    assert anthropic_fake.requests[0].body["model"] == "claude-from-env"


def test_an_empty_key_is_unset_and_hides_no_other_sources_key(tmp_path, openai_fake):
    dirs = files(
        tmp_path,
        cwd="OPENAI_API_KEY=\nOPENAI_MODEL=gpt-test\n",
        home=f"OPENAI_API_KEY=sk-home-key\nOPENAI_BASE_URL={openai_fake.url}\n",
    )
    settings = load(dirs)
    assert settings.api_keys[LLMProvider.OPENAI] == "sk-home-key"
    with LLMRouter(settings=settings, timeouts=FAST_TIMEOUTS) as router:
        router.complete(MESSAGES, force_provider="openai")
    assert openai_fake.requests[0].body["model"] == "gpt-test"
    assert openai_fake.requests[0].headers["authorization"] == "Bearer sk-home-key"


@pytest.mark.parametrize("where", ["etc", "home", "environment"])
def test_local_only_set_by_a_trusted_source_cannot_be_lifted(tmp_path, where):
    layers = {"cwd": "CORTEX_LOCAL_ONLY=false\n"}
    environ = {"CORTEX_LOCAL_ONLY": "true"} if where == "environment" else {}
    if where != "environment":
        layers[where] = "CORTEX_LOCAL_ONLY=true\n"
    settings = load(files(tmp_path, **layers), environ)
    assert settings.local_only
    router = LLMRouter(settings=settings, local_only=False, claude_api_key=CLAUDE_KEY)
    assert router.local_only
    assert LLMProvider.CLAUDE not in router.providers


def test_local_only_can_be_switched_on_by_the_working_directory(tmp_path):
    settings = load(files(tmp_path, cwd="CORTEX_LOCAL_ONLY=yes\n", etc="CORTEX_LOCAL_ONLY=no\n"))
    assert settings.local_only


# --- item 12: local-only never reaches a cloud host through the Ollama URL --------------------------------------

CLOUD_URLS = [
    "https://ollama.com",
    "https://www.ollama.com:443",
    "https://api.anthropic.com",
    "https://api.openai.com/v1",
    "https://api.moonshot.ai/v1",
    "http://127.0.0.1:11434,https://ollama.com",  # one bad endpoint in a pool
]


@pytest.mark.parametrize("url", CLOUD_URLS)
def test_local_only_refuses_a_cloud_host_as_the_ollama_endpoint(isolated, url):
    with pytest.raises(LocalOnlyViolation, match="refused in local-only mode"):
        LLMRouter(settings=isolated.merged({"OLLAMA_BASE_URL": url}), local_only=True)


def test_without_local_only_ollama_com_is_an_allowed_endpoint(isolated):
    router = LLMRouter(settings=isolated.merged({"OLLAMA_BASE_URL": "https://ollama.com"}))
    assert router.ollama.pool.endpoints[0].url == "https://ollama.com"


# --- issue 27, item 12: credentials in a base URL are never sent ----------------------------------------------------

PASSWORD = "Url-Pass-Word-77"


class EchoingServer(FakeOpenAI):
    """An OpenAI-style server that answers with the Authorization header it received (some proxies and toy
    servers echo requests back)."""

    def respond(self, handler, method, path, body, reply):
        reply = Reply(text=f"you sent {handler.headers.get('Authorization')}")
        super().respond(handler, method, path, body, reply)


@pytest.fixture
def echoing():
    server = EchoingServer()
    yield server
    server.close()


def with_userinfo(url: str, userinfo: str = f"ops:{PASSWORD}") -> str:
    return url.replace("http://", f"http://{userinfo}@", 1)


@pytest.mark.parametrize(
    ("key", "extra"),
    [
        ("OLLAMA_BASE_URL", {}),
        ("KIMI_BASE_URL", {"MOONSHOT_API_KEY": "sk-kimi-x"}),  # Basic auth would replace Kimi's bearer key
        ("OPENAI_BASE_URL", {"OPENAI_API_KEY": "sk-openai-x"}),
        ("ANTHROPIC_BASE_URL", {"ANTHROPIC_API_KEY": "sk-ant-x"}),
    ],
)
@pytest.mark.parametrize("userinfo", [f"ops:{PASSWORD}", PASSWORD])
def test_a_base_url_with_credentials_is_refused_and_never_called(tmp_path, echoing, key, extra, userinfo):
    url = with_userinfo(echoing.url + ("/v1" if key != "ANTHROPIC_BASE_URL" else ""), userinfo)
    with pytest.raises(ConfigError) as caught:
        Settings.load(environ={key: url, **extra}, cwd=tmp_path, home=tmp_path, etc_dir=tmp_path)
    assert key in str(caught.value) and "user:password@" in str(caught.value)
    assert PASSWORD not in str(caught.value)
    assert echoing.connections == 0


def test_ollama_host_with_credentials_is_refused(tmp_path, echoing):
    host = with_userinfo(echoing.url).removeprefix("http://")  # OLLAMA_HOST style: ops:pass@127.0.0.1:port
    with pytest.raises(ConfigError, match="OLLAMA_HOST") as caught:
        Settings.load(environ={"OLLAMA_HOST": host}, cwd=tmp_path, home=tmp_path, etc_dir=tmp_path)
    assert PASSWORD not in str(caught.value)


def test_a_hand_made_settings_with_credentials_in_a_url_is_refused_too(isolated, echoing):
    from dataclasses import replace

    settings = replace(isolated, ollama_base_urls=(with_userinfo(echoing.url),))
    with pytest.raises(ConfigError, match="ollama base URL"):
        LLMRouter(settings=settings, default_provider="ollama")
    assert echoing.connections == 0


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"http://ops:{PASSWORD}@host:1", "http://ops:***@host:1"),
        (f"http://{PASSWORD}@host:1/v1", "http://***@host:1/v1"),
        ("http://host:1/a@b", "http://host:1/a@b"),  # an @ in the path is no userinfo
    ],
)
def test_userinfo_is_masked_wherever_a_url_is_shown(url, shown):
    from cortex_client._config import redact_url, url_secrets

    assert redact_url(url) == shown
    if shown != url:
        import base64

        secrets = url_secrets([url])
        assert PASSWORD in secrets
        assert any(PASSWORD in base64.b64decode(s).decode() for s in secrets if s != PASSWORD)  # HTTP Basic form
