"""Errors of the OpenAI-compatible endpoint in OpenAI's shape, as the official client
raises them: a wrong or revoked key, limits (with Retry-After), bad values, an unknown
model or path, the backend down."""

import openai
import pytest
from asgiref.sync import sync_to_async

from chat import services
from chat.models import ApiKey, Message
from kobold_fake.script import Script
from tests.gateway.conftest import BASE_URL, asgi_client

pytestmark = pytest.mark.django_db(transaction=True)
MODEL = "koboldcpp"
HELLO = [{"role": "user", "content": "coucou"}]


async def ask(client, **extra):
    return await client.chat.completions.create(
        model=extra.pop("model", MODEL), messages=extra.pop("messages", HELLO), **extra
    )


async def test_wrong_key_is_an_authentication_error(make_client, kobold_settings):
    """A key that is no key: 401 with OpenAI's error body."""
    with pytest.raises(openai.AuthenticationError) as caught:
        await ask(make_client("kc_nothing_here"))
    assert caught.value.status_code == 401
    assert caught.value.body["code"] == "invalid_api_key"
    assert caught.value.body["type"] == "invalid_request_error"
    assert caught.value.body["message"]


async def test_revoked_key_stops_working_at_once(client, ada, kobold_settings):
    """A key answers, is revoked, and the very next request is refused."""
    await ask(client)
    await sync_to_async(services.api_keys_revoke)(keys=ApiKey.objects.filter(user=ada))
    with pytest.raises(openai.AuthenticationError):
        await ask(client)


async def test_rate_limit_is_a_rate_limit_error_with_retry_after(
    client, kobold_settings
):
    """Past CHAT_RATE_LIMIT_PER_MINUTE, a 429 carrying Retry-After."""
    kobold_settings.CHAT_RATE_LIMIT_PER_MINUTE = 1
    await ask(client)
    with pytest.raises(openai.RateLimitError) as caught:
        await ask(client)
    assert caught.value.status_code == 429
    assert int(caught.value.response.headers["Retry-After"]) >= 1
    assert caught.value.body["type"] == "rate_limit_exceeded"


async def test_daily_quota_is_a_rate_limit_error(client, kobold_settings):
    """A daily quota used up is a 429 of type insufficient_quota."""
    kobold_settings.CHAT_DAILY_REPLY_LIMIT = 1
    await ask(client)
    with pytest.raises(openai.RateLimitError) as caught:
        await ask(client)
    assert caught.value.body["type"] == "insufficient_quota"


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({"temperature": 5}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 10**6}, "at most"),
        ({"presence_penalty": 3}, "presence_penalty"),
        ({"frequency_penalty": -3}, "frequency_penalty"),
        ({"seed": "x"}, "seed"),
        ({"stop": ["s"] * 40}, "stop"),
        ({"n": 2}, "n"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "role"),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "url": "x"}]}
                ]
            },
            "not supported",
        ),
        (
            {"tools": [{"type": "function", "function": {"name": "f"}}]},
            "tools (function calling) are not supported",
        ),
    ],
)
async def test_bad_values_are_a_clear_bad_request(
    client, kobold_settings, fake_kobold, extra, fragment
):
    """Each value out of bounds or unsupported: 400 naming it; nothing generated or
    stored."""
    with pytest.raises(openai.BadRequestError) as caught:
        await ask(client, **extra)
    assert fragment in caught.value.body["message"]
    assert caught.value.body["type"] == "invalid_request_error"
    assert fake_kobold.generations == []
    assert await sync_to_async(Message.objects.count)() == 0


async def test_unknown_model_is_not_found(client, kobold_settings):
    """A model the server does not have: 404 model_not_found."""
    with pytest.raises(openai.NotFoundError) as caught:
        await ask(client, model="gpt-4o")
    assert caught.value.body["code"] == "model_not_found"


async def test_unknown_path_is_not_found_in_openai_shape(ada_key, kobold_settings):
    """A path under /v1/ that does not exist: OpenAI's 404 body."""
    async with asgi_client() as http:
        response = await http.get(
            f"{BASE_URL}/embeddings", headers={"Authorization": f"Bearer {ada_key}"}
        )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_backend_down_is_503(client, kobold_settings, fake_kobold):
    """KoboldCpp not answering: 503 from the model list and from a completion."""
    fake_kobold.stop()
    with pytest.raises(openai.InternalServerError) as caught:
        await client.models.list()
    assert caught.value.status_code == 503
    assert caught.value.body["code"] == "backend_unreachable"
    with pytest.raises(openai.InternalServerError) as caught:
        await ask(client)
    assert caught.value.status_code == 503


async def test_upstream_failing_mid_reply_is_an_error(
    client, kobold_settings, fake_kobold
):
    """KoboldCpp cutting the stream: a whole request gets 503, a stream ends with an
    error chunk the client raises."""
    fake_kobold.push(
        Script(tokens=["a", "b", "c"], fault="drop_mid", fault_at=1),
        Script(tokens=["a", "b", "c"], fault="drop_mid", fault_at=1),
    )
    with pytest.raises(openai.InternalServerError) as caught:
        await ask(client)
    assert caught.value.status_code == 503
    stream = await ask(client, stream=True)
    with pytest.raises(openai.APIError):
        [chunk async for chunk in stream]
