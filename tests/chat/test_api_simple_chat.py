"""POST /api/simple-chat/ against the fake KoboldCpp: the seed's JSON answer, the
event stream, each validation case (nothing stored), the rate limit, backend errors,
and users kept apart."""

import json
import socket

import pytest
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.test import AsyncClient

from chat.models import Conversation, Message

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/api/simple-chat/"


@pytest.fixture
def ada(make_user):
    return make_user("ada")


class KeyClient(AsyncClient):
    """An AsyncClient that sends an API key with every request, each request in its
    own ThreadSensitiveContext as Django's ASGIHandler (so Daphne) runs it."""

    def __init__(self, raw_key: str):
        super().__init__()
        self.auth_header = {"Authorization": f"Bearer {raw_key}"}

    async def post(self, path, data=None, **extra):
        extra["headers"] = self.auth_header | extra.get("headers", {})
        async with ThreadSensitiveContext():
            return await super().post(path, data, **extra)


@pytest.fixture
def client(ada, make_key) -> AsyncClient:
    return KeyClient(make_key(ada))


async def post(client: AsyncClient, body) -> tuple[int, dict, object]:
    response = await client.post(URL, body, content_type="application/json")
    return response.status_code, response.json(), response


@sync_to_async
def stored() -> list[tuple[str, str, str]]:
    return list(Message.objects.values_list("role", "content", "status"))


async def test_seed_coucou_gets_a_reply(client, kobold_settings):
    """{"message": "coucou"} with an API key answers the reply and its metadata."""
    status, body, _ = await post(client, {"message": "coucou"})
    assert status == 200, body
    assert body["reply"] == "Hello there!"
    assert body["finish_reason"] == "stop" and body["intent_source"] == "heuristic"
    assert body["intent"] and set(body["metrics"]) >= {"ttft_ms", "completion_tokens"}
    assert await stored() == [
        ("user", "coucou", "complete"),
        ("assistant", "Hello there!", "complete"),
    ]
    assert body["message_id"] == (await sync_to_async(Message.objects.last)()).pk


async def test_conversation_id_continues_that_conversation(
    client, ada, kobold_settings
):
    """A given conversation_id receives the exchange, with the history sent along."""
    conversation = await sync_to_async(Conversation.objects.create)(owner=ada)
    await sync_to_async(Conversation.objects.create)(owner=ada, title="newer")
    status, body, _ = await post(
        client, {"message": "first", "conversation_id": conversation.pk}
    )
    assert status == 200 and body["conversation_id"] == conversation.pk
    await post(client, {"message": "second", "conversation_id": conversation.pk})
    count = await sync_to_async(
        Message.objects.filter(conversation=conversation).count
    )()
    assert count == 4


async def test_stream_sends_frames_then_done(client, kobold_settings, fake_kobold):
    """stream: true answers text/event-stream: frames that rebuild the reply, `end`,
    then a `done` event."""
    response = await client.post(
        URL, {"message": "coucou", "stream": True}, content_type="application/json"
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/event-stream")
    raw = b"".join([chunk async for chunk in response.streaming_content]).decode()
    events = [e for e in raw.split("\n\n") if e]
    assert events[-1].startswith("event: done\n")
    frames = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    text = ""
    for frame in frames:
        if frame["type"] == "snapshot":
            text = frame["content"]
        elif frame["type"] == "token":
            assert frame["offset"] == len(text)
            text += frame["text"]
    end = frames[-1]
    assert end["type"] == "end" and end["status"] == "complete"
    assert text == end["content"] == "Hello there!"
    assert json.loads(events[-1].split("data: ", 1)[1])["status"] == "complete"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"message": ""}, "empty"),
        ({"message": "   \n\t"}, "empty"),
        ({"message": "x" * 101}, "longer than 100"),
        ({"message": 5}, "message"),
        ({"message": "hi", "conversation_id": "abc"}, "conversation_id"),
        ({"message": "hi", "stream": "often"}, "stream"),
        ({}, "message"),
        (["hi"], ""),
        ({"message": "hi", "conversation_id": 999999}, "No such conversation"),
    ],
)
async def test_bad_requests_are_4xx_json_and_store_nothing(
    client, kobold_settings, fake_kobold, body, fragment
):
    """Each invalid body gets a clear JSON error; no message is written."""
    kobold_settings.CHAT_MAX_MESSAGE_CHARS = 100
    status, answer, _ = await post(client, body)
    assert 400 <= status < 500
    assert answer["code"] in {"bad_request", "forbidden"}
    assert fragment in answer["message"]
    assert await stored() == [] and fake_kobold.generations == []


async def test_not_json_is_a_400(client, kobold_settings):
    """A body that is not JSON is refused with a JSON error."""
    response = await client.post(URL, "{nope", content_type="application/json")
    assert response.status_code == 400 and response.json()["code"] == "bad_request"


async def test_another_users_conversation_is_404_and_untouched(
    client, make_user, kobold_settings
):
    """Posting into someone else's conversation looks like an unknown id."""
    bob = await sync_to_async(make_user)("bob")
    theirs = await sync_to_async(Conversation.objects.create)(owner=bob, title="bob's")
    status, body, _ = await post(
        client, {"message": "hi", "conversation_id": theirs.pk}
    )
    assert status == 404 and body["code"] == "forbidden"
    assert await stored() == []


async def test_anonymous_is_401(kobold_settings):
    """No key, no session: 401 JSON."""
    response = await AsyncClient().post(
        URL, {"message": "hi"}, content_type="application/json"
    )
    assert response.status_code == 401 and response.json()["code"] == "unauthorized"


async def test_rate_limit_is_429_with_retry_after(client, kobold_settings):
    """Past CHAT_RATE_LIMIT_PER_MINUTE, 429 with a Retry-After in seconds."""
    kobold_settings.CHAT_RATE_LIMIT_PER_MINUTE = 1
    assert (await post(client, {"message": "one"}))[0] == 200
    status, body, response = await post(client, {"message": "two"})
    assert status == 429 and body["code"] == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= 61
    assert len(await stored()) == 2


async def test_backend_down_is_502_backend_unreachable(client, kobold_settings):
    """With nothing at KOBOLDCPP_URL the answer names the failure; the message is kept."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    kobold_settings.KOBOLDCPP_URL = f"http://127.0.0.1:{port}"
    status, body, _ = await post(client, {"message": "coucou"})
    assert status == 502 and body["code"] == "backend_unreachable"
    assert [row[2] for row in await stored()] == ["complete", "error"]
