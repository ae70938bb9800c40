"""Who may use the socket, and what bad frames get: an error, never a closed socket."""

import json

import pytest
from asgiref.sync import sync_to_async

from chat.models import Conversation, Message
from kobold_fake.server import Script
from tests.chat.conftest import frames_until, is_end, open_socket, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


async def test_anonymous_socket_is_refused():
    """No session, no key: the handshake is refused."""
    comm = await open_socket(origin="http://localhost")
    assert not comm.connected


async def test_unknown_api_key_is_refused():
    comm = await open_socket("kc_deadbeef_not-a-real-key")
    assert not comm.connected


async def test_revoked_api_key_is_refused(make_user):
    from django.utils import timezone

    from chat.models import ApiKey

    user = await sync_to_async(make_user)()
    key, raw = await sync_to_async(ApiKey.generate)(user=user)
    key.revoked_at = timezone.now()
    await sync_to_async(key.save)()
    assert not (await open_socket(raw)).connected


async def test_session_socket_needs_an_allowed_origin(make_user):
    """A logged-in browser from our origin connects; from a foreign one, or with no
    Origin at all, the cookie alone is refused (cross-site WebSocket hijacking)."""
    user = await sync_to_async(make_user)()
    cookie = await session_cookie(user)
    ok = await open_socket(cookie=cookie, origin="http://127.0.0.1:8001")
    assert ok.connected
    await ok.disconnect()
    assert not (
        await open_socket(cookie=cookie, origin="http://evil.example")
    ).connected
    assert not (await open_socket(cookie=cookie)).connected


async def test_api_key_with_foreign_origin_is_refused(make_user, make_key):
    user = await sync_to_async(make_user)()
    raw = await sync_to_async(make_key)(user)
    assert not (await open_socket(raw, origin="http://evil.example")).connected


@pytest.mark.parametrize(
    "frame",
    [
        "{not json",
        "[1, 2]",
        json.dumps({"no": "type"}),
        json.dumps({"type": "dance"}),
        json.dumps({"type": "stop"}),
        json.dumps({"type": "stop", "message_id": "12"}),
        json.dumps({"type": "resume", "conversation_id": True}),
        json.dumps({"type": "message", "text": ""}),
        json.dumps({"type": "message", "text": "   "}),
        json.dumps({"type": "message", "text": 42}),
        json.dumps({"type": "message", "text": "nul \u0000 inside"}),
        json.dumps({"type": "message", "text": "hi", "conversation_id": "x"}),
        "x" * (33 * 1024),
    ],
)
async def test_bad_frames_get_bad_request_and_the_socket_stays_open(
    kobold_settings, fake_kobold, make_user, make_key, frame
):
    """Malformed, unknown, incomplete or oversized frames: `bad_request`, nothing stored,
    and the same socket still chats afterwards."""
    user = await sync_to_async(make_user)()
    comm = await open_socket(await sync_to_async(make_key)(user))
    await comm.send_to(text_data=frame)
    error = await comm.receive_json_from(timeout=5)
    assert error["type"] == "error" and error["code"] == "bad_request", error
    assert await sync_to_async(Message.objects.count)() == 0
    await comm.send_to(text_data="still there?")
    assert (await frames_until(comm, is_end))[-1]["status"] == "complete"
    await comm.disconnect()


async def test_binary_frame_is_a_bad_request(make_user, make_key):
    user = await sync_to_async(make_user)()
    comm = await open_socket(await sync_to_async(make_key)(user))
    await comm.send_to(bytes_data=b"\x00\x01")
    assert (await comm.receive_json_from(timeout=5))["code"] == "bad_request"
    await comm.disconnect()


async def test_other_users_ids_are_forbidden(
    kobold_settings, fake_kobold, make_user, make_key
):
    """User B cannot post into, resume, regenerate or stop user A's conversation."""
    fake_kobold.default_script = Script(tokens=[f"a{i}" for i in range(30)], delay=0.05)
    alice, bob = await sync_to_async(make_user)(), await sync_to_async(make_user)()
    a = await open_socket(await sync_to_async(make_key)(alice))
    b = await open_socket(await sync_to_async(make_key)(bob))
    await a.send_to(text_data="alice's secret")
    start = (await frames_until(a, lambda f: f["type"] == "start"))[-1]
    conversation_id, message_id = start["conversation_id"], start["message_id"]
    for frame in (
        {"type": "message", "text": "hi", "conversation_id": conversation_id},
        {"type": "resume", "conversation_id": conversation_id},
        {"type": "regenerate", "conversation_id": conversation_id},
        {"type": "stop", "message_id": message_id},
    ):
        await b.send_json_to(frame)
        error = await b.receive_json_from(timeout=5)
        assert error["type"] == "error" and error["code"] == "forbidden", (frame, error)
        assert "secret" not in json.dumps(error)
    end = (await frames_until(a, is_end))[-1]
    assert end["status"] == "complete"
    assert await b.receive_nothing(timeout=0.2)
    assert await sync_to_async(Conversation.objects.filter(owner=bob).count)() == 0
    await a.disconnect()
    await b.disconnect()
