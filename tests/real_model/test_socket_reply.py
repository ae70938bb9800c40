"""The chat socket against the real model: a reply streamed, stored, and stoppable."""

import asyncio

import pytest
from asgiref.sync import sync_to_async

from tests.chat.conftest import (
    frames_until,
    is_end,
    message_row,
    open_socket,
    streamed_text,
)

pytestmark = [pytest.mark.real_model, pytest.mark.django_db(transaction=True)]


async def _socket_for(make_user, make_key):
    user = await sync_to_async(make_user)()
    comm = await open_socket(await sync_to_async(make_key)(user))
    assert comm.connected
    return comm


async def test_socket_reply_is_streamed_and_stored(make_user, make_key):
    """A message gives start, tokens and end; the stored reply is the streamed text."""
    comm = await _socket_for(make_user, make_key)
    await comm.send_to(text_data="Hello! What is the capital of France?")
    frames = await frames_until(comm, is_end, timeout=90)
    end = frames[-1]
    assert end["status"] == "complete", end
    assert end["content"].strip()
    assert end["finish_reason"] in ("stop", "length")
    assert streamed_text(frames, end["message_id"]) == end["content"]
    assert end["metrics"]["ttft_ms"] is not None
    reply = await message_row(end["message_id"])
    assert reply.status == "complete" and reply.content == end["content"]
    await comm.disconnect()


async def test_stop_ends_the_reply_and_frees_the_model(make_user, make_key):
    """Stop mid-reply: `stopped` with the partial text kept, and the next reply completes."""
    comm = await _socket_for(make_user, make_key)
    await comm.send_to(text_data="Write a very long story about a dragon and a knight.")
    frames = await frames_until(comm, lambda f: f["type"] == "token", timeout=60)
    message_id = frames[-1]["message_id"]
    loop = asyncio.get_running_loop()
    asked = loop.time()
    await comm.send_json_to({"type": "stop", "message_id": message_id})
    rest = await frames_until(comm, is_end, timeout=10)
    assert loop.time() - asked < 2.0
    end = rest[-1]
    assert end["status"] == "stopped"
    reply = await message_row(message_id)
    assert reply.status == "stopped"
    assert reply.content == end["content"] == streamed_text(frames + rest, message_id)
    await comm.send_json_to(
        {"type": "message", "text": "Say hi.", "conversation_id": reply.conversation_id}
    )
    after = await frames_until(comm, is_end, timeout=90)
    assert after[-1]["status"] == "complete"
    # Had the stopped generation gone on, this reply would wait for its 400 tokens.
    assert after[-1]["metrics"]["ttft_ms"] < 3000
    await comm.disconnect()
