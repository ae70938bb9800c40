"""REST simple-chat against the real model: one JSON reply, stored, and the SSE form."""

import json

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from chat.models import Message

pytestmark = [pytest.mark.real_model, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def headers(make_user, make_key) -> dict:
    """An API key header, made outside the test's event loop (as the API tests do)."""
    return {"Authorization": f"Bearer {make_key(make_user())}"}


async def test_simple_chat_answers_and_stores_the_reply(headers):
    """POST /api/simple-chat/ returns the model's reply, the same text that is stored."""
    response = await AsyncClient().post(
        "/api/simple-chat/",
        {"message": "Name three colours."},
        content_type="application/json",
        headers=headers,
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["reply"].strip()
    assert body["finish_reason"] in ("stop", "length")
    stored = await sync_to_async(Message.objects.get)(pk=body["message_id"])
    assert stored.status == "complete" and stored.content == body["reply"]


async def test_simple_chat_stream_sends_frames_then_done(headers):
    """With stream, token frames arrive as SSE and a `done` event closes the stream."""
    response = await AsyncClient().post(
        "/api/simple-chat/",
        {"message": "Say hello.", "stream": True},
        content_type="application/json",
        headers=headers,
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/event-stream")
    raw = b"".join([chunk async for chunk in response.streaming_content]).decode()
    frames = [
        json.loads(line[len("data: ") :])
        for line in raw.splitlines()
        if line.startswith("data: ")
    ]
    end = next(f for f in frames if f["type"] == "end")
    assert end["status"] == "complete" and end["content"].strip()
    streamed = "".join(f["text"] for f in frames if f["type"] == "token")
    assert streamed == end["content"]
    assert frames[-1] == {**frames[-1], "type": "done", "status": "complete"}
