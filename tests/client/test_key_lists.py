"""OpenAI key lists, as the original accepted them: OPENAI_API_KEYS (preferred) or OPENAI_API_KEY / the argument
split on commas, semicolons or whitespace; a rejected or rate-limited key hands over to the next within the same
request; every key is a secret."""

from __future__ import annotations

import pytest

from cortex_client import AllProvidersFailed, LLMProvider
from tests.support.fakes import Reply

MESSAGES = [{"role": "user", "content": "hi"}]
K1, K2, K3 = "sk-proj-first-key-000000001", "sk-proj-second-key-00000002", "sk-proj-third-key-000000003"


def bearers(fake):
    return [seen.headers["authorization"].removeprefix("Bearer ") for seen in fake.requests]


@pytest.fixture
def openai_router(make_router, openai_fake):
    def make(keys, **kwargs):
        return make_router(
            openai_api_key=keys, openai_base_url=openai_fake.url + "/v1", default_provider="openai", **kwargs
        )

    return make


def test_a_rejected_key_hands_over_to_the_next_and_stays_disabled(openai_router, openai_fake):
    openai_fake.queue(Reply.fail(401))
    router = openai_router(f"{K1}, {K2}")
    response = router.complete(MESSAGES)
    assert response.provider is LLMProvider.OPENAI
    assert [(a.endpoint.endswith("(key 1/2)"), a.outcome) for a in response.attempts] == [(True, "auth"), (False, "ok")]
    assert response.attempts[1].endpoint.endswith("(key 2/2)")
    assert bearers(openai_fake) == [K1, K2]
    router.complete(MESSAGES)
    assert bearers(openai_fake)[-1] == K2  # the rejected key is not tried again for a while


def test_a_rate_limited_key_hands_over_at_once(openai_router, openai_fake):
    openai_fake.queue(Reply.fail(429, headers={"retry-after": "30"}))
    router = openai_router(f"{K1};{K2}")
    response = router.complete(MESSAGES)
    assert [a.outcome for a in response.attempts] == ["rate_limit", "ok"]
    assert response.latency_seconds < 5  # no 30 s wait: the next key has its own limits
    assert bearers(openai_fake) == [K1, K2]


def test_keys_split_on_commas_semicolons_and_whitespace_in_order(openai_router, openai_fake):
    openai_fake.default = Reply.fail(401)
    router = openai_router(f" {K1},{K2}\n{K3} ;{K1}", enable_fallback=False)
    with pytest.raises(AllProvidersFailed):
        router.complete(MESSAGES)
    assert bearers(openai_fake) == [K1, K2, K3]  # each key once, in the listed order


def test_openai_api_keys_wins_over_openai_api_key(isolated, make_router, openai_fake):
    settings = isolated.merged(
        {"OPENAI_API_KEY": K3, "OPENAI_API_KEYS": f"{K1} {K2}", "OPENAI_BASE_URL": openai_fake.url + "/v1"}
    )
    router = make_router(settings=settings, default_provider="openai")
    router.complete(MESSAGES)
    assert bearers(openai_fake) == [K1]
    assert set(settings.secrets()) == {K1, K2}


def test_every_key_of_a_list_is_a_secret(openai_router, openai_fake, isolated):
    echo = {"error": {"message": f"Incorrect API key provided: {K1} and {K2}", "type": "invalid_request_error"}}
    openai_fake.default = Reply.fail(401, body=echo)
    router = openai_router(f"{K1},{K2}", enable_fallback=False)
    with pytest.raises(AllProvidersFailed) as caught:
        router.complete(MESSAGES)
    text = str(caught.value) + repr(router) + repr(router.settings) + repr(router.providers[LLMProvider.OPENAI])
    assert K1 not in text and K2 not in text
    assert K1[:12] not in text
