"""REST simple-chat against the real model: one JSON reply, stored, and the SSE form."""

import json

import pytest
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.test import AsyncClient

from chat.models import Message

pytestmark = [pytest.mark.real_model, pytest.mark.django_db(transaction=True)]
URL = "/api/simple-chat/"


@pytest.fixture
def headers(make_user, make_key) -> dict:
    """An API key header for a fresh user."""
    return {"Authorization": f"Bearer {make_key(make_user())}"}


async def post(body: dict, headers: dict):
    # Django's ASGIHandler (so Daphne) runs each request in its own
    # ThreadSensitiveContext; the test client does not, and deadlocks without it.
    async with ThreadSensitiveContext():
        return await AsyncClient().post(
            URL, body, content_type="application/json", headers=headers
        )


async def test_simple_chat_answers_and_stores_the_reply(headers):
    """POST /api/simple-chat/ returns the model's reply, the same text that is stored."""
    response = await post({"message": "Name three colours."}, headers)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["reply"].strip()
    assert body["finish_reason"] in ("stop", "length")
    stored = await sync_to_async(Message.objects.get)(pk=body["message_id"])
    assert stored.status == "complete" and stored.content == body["reply"]


async def test_simple_chat_stream_sends_frames_then_done(headers):
    """With stream, token frames arrive as SSE and a `done` event closes the stream."""
    response = await post({"message": "Say hello.", "stream": True}, headers)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/event-stream")
    raw = b"".join([chunk async for chunk in response.streaming_content]).decode()
    events = [event for event in raw.split("\n\n") if event]
    assert events[-1].startswith("event: done\n")
    assert json.loads(events[-1].split("data: ", 1)[1])["status"] == "complete"
    frames = [json.loads(event.removeprefix("data: ")) for event in events[:-1]]
    end = frames[-1]
    assert (
        end["type"] == "end" and end["status"] == "complete" and end["content"].strip()
    )
    streamed = "".join(f["text"] for f in frames if f["type"] == "token")
    assert streamed == end["content"]
