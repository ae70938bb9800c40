"""Finding 5: input that crashed instead of being refused. A deeply nested socket frame
closed the socket (RecursionError, 1011); an import nested 100,000 deep or with a token
count of 2**70 answered 500. Each is now a bad_request, with nothing stored."""

import json

import pytest
from asgiref.sync import sync_to_async
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from chat.models import Conversation, Message
from tests.chat.conftest import frames_until, is_end, open_socket


def upload(raw: bytes) -> dict:
    return {"file": SimpleUploadedFile("c.json", raw, content_type="application/json")}


@pytest.fixture
def api(make_user, make_key):
    return Client(headers={"Authorization": f"Bearer {make_key(make_user())}"})


@pytest.mark.django_db(transaction=True)
async def test_a_deeply_nested_frame_is_a_bad_request(
    kobold_settings, make_user, make_key
):
    """`[` * 30000: an error frame, and the same socket still chats."""
    user = await sync_to_async(make_user)()
    comm = await open_socket(await sync_to_async(make_key)(user))
    await comm.send_to(text_data="[" * 30000)
    error = await comm.receive_json_from(timeout=5)
    assert error["type"] == "error" and error["code"] == "bad_request"
    await comm.send_to(text_data="still there?")
    assert (await frames_until(comm, is_end))[-1]["status"] == "complete"
    await comm.disconnect()


@pytest.mark.django_db
def test_an_import_nested_100000_deep_is_a_bad_request(api):
    raw = b'{"format": "koboldchat.conversation", "version": 1, "messages": '
    raw += b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = api.post("/api/conversations/import", upload(raw))
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"
    assert "nested too deeply" in response.json()["message"]
    assert not Conversation.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "field", ["prompt_tokens", "completion_tokens", "ttft_ms", "duration_ms"]
)
def test_an_import_with_a_huge_number_is_a_bad_request(api, field):
    """2**70 does not fit the database: refused by the format, nothing stored."""
    document = {
        "format": "koboldchat.conversation",
        "version": 1,
        "title": "big",
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello", field: 2**70},
        ],
    }
    response = api.post(
        "/api/conversations/import", upload(json.dumps(document).encode())
    )
    assert response.status_code == 400, response.content
    assert f"messages.1.{field}" in response.json()["message"]
    assert not Conversation.objects.exists() and not Message.objects.exists()
