"""The chat socket against a real KoboldCpp: a reply streamed and stored, and a stop
that aborts the real generation."""

import pytest
from asgiref.sync import sync_to_async

from chat import services
from tests.chat.conftest import (
    frames_until,
    is_end,
    message_row,
    open_socket,
    streamed_text,
)
from tests.real_kobold.conftest import perf, wait_idle

pytestmark = [pytest.mark.real_kobold, pytest.mark.django_db(transaction=True)]
LONG_REPLY_TOKENS = 1000  # far more than the first tokens read before the stop


async def _socket_for(user, make_key):
    comm = await open_socket(await sync_to_async(make_key)(user), path="/api/ws/chat")
    assert comm.connected
    return comm


async def test_bonjour_is_streamed_with_offsets_and_stored(make_user, make_key):
    """'Bonjour' on /api/ws/chat: token frames with contiguous offsets, then `end`
    complete; the stored reply is the concatenated tokens, not empty."""
    comm = await _socket_for(await sync_to_async(make_user)(), make_key)
    await comm.send_to(text_data="Bonjour")
    frames = await frames_until(comm, is_end, timeout=90)
    end = frames[-1]
    assert end["status"] == "complete", end
    tokens = [f for f in frames if f["type"] == "token"]
    assert tokens and tokens[0]["offset"] == 0
    assert streamed_text(frames, end["message_id"]) == end["content"]
    reply = await message_row(end["message_id"])
    assert reply.status == "complete" and reply.content.strip()
    assert reply.content == "".join(f["text"] for f in tokens) == end["content"]
    assert reply.finish_reason in ("stop", "length") and reply.genkey
    await comm.disconnect()


async def test_stop_aborts_the_real_generation(make_user, make_key, kobold_url):
    """Stop after the first tokens of a long story: KoboldCpp, busy with it, is idle
    again within 2 s (1,000 tokens take it many seconds), and the reply is stored
    `stopped` with the partial text that was streamed."""
    user = await sync_to_async(make_user)()
    conversation = await sync_to_async(services.conversation_create)(owner=user)
    await sync_to_async(services.conversation_update_settings)(
        conversation=conversation, max_tokens=LONG_REPLY_TOKENS
    )
    comm = await _socket_for(user, make_key)
    await comm.send_json_to(
        {
            "type": "message",
            "text": "Write a very long story about a dragon and a knight.",
            "conversation_id": conversation.pk,
        }
    )
    frames = await frames_until(comm, lambda f: f["type"] == "token", timeout=90)
    message_id = frames[-1]["message_id"]
    assert (await perf(kobold_url))["idle"] == 0  # the story is being written
    await comm.send_json_to({"type": "stop", "message_id": message_id})
    # Not perf's last_token_count: after an abort by genkey 1.76 reports the whole
    # budget there ("Amt:1000/1000" in 0.3 s in its log).
    took = await wait_idle(kobold_url, deadline_s=2.0)
    rest = await frames_until(comm, is_end, timeout=10)
    end = rest[-1]
    assert end["status"] == "stopped", (end, took)
    reply = await message_row(message_id)
    assert reply.status == "stopped" and reply.content.strip()
    assert reply.content == end["content"] == streamed_text(frames + rest, message_id)
    await comm.disconnect()
