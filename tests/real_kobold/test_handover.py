"""A reply handed over against a real KoboldCpp: the giving-up job really stops the
generation, and the taker's generation carries the stored text on (native API: the
prompt ends inside the assistant's turn, with the partial answer)."""

import pytest
from asgiref.sync import sync_to_async

from chat import services
from chat.models import Message
from chat.replies import handover
from chat.replies.job import local_job
from tests.chat.conftest import frames_until, is_end, open_socket, streamed_text
from tests.real_kobold.conftest import perf, wait_idle

pytestmark = [pytest.mark.real_kobold, pytest.mark.django_db(transaction=True)]


async def test_a_handed_over_reply_is_carried_on_by_the_real_model(
    make_user, make_key, kobold_url, settings
):
    settings.REPLY_PROFILES = {i: {"max_tokens": 48} for i in settings.REPLY_PROFILES}
    user = await sync_to_async(make_user)()
    conversation = await sync_to_async(services.conversation_create)(owner=user)
    await sync_to_async(services.conversation_update_settings)(
        conversation=conversation, max_tokens=48
    )
    comm = await open_socket(await sync_to_async(make_key)(user))
    await comm.send_json_to(
        {
            "type": "message",
            "text": "Write a story about a dragon who learns to bake bread.",
            "conversation_id": conversation.pk,
        }
    )
    tokens = []
    frames = await frames_until(
        comm,
        lambda f: f["type"] == "token" and len(tokens.append(f) or tokens) >= 8,
        timeout=120,
    )
    message_id = frames[-1]["message_id"]
    await local_job(message_id).hand_over()
    assert await wait_idle(kobold_url, deadline_s=2.0) < 2.0  # really stopped
    checkpoint = (await sync_to_async(Message.objects.get)(pk=message_id)).content
    assert checkpoint and (await perf(kobold_url))["idle"]

    assert await handover.take_over_stale() == 1
    frames += await frames_until(comm, is_end, timeout=120)
    stored = await sync_to_async(Message.objects.get)(pk=message_id)
    assert stored.status == "complete", stored.error_code
    assert stored.content.startswith(checkpoint) and len(stored.content) > len(
        checkpoint
    )
    assert streamed_text(frames, message_id) == stored.content
    await comm.disconnect()
