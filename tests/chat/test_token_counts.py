"""Each message is counted once, after its reply ends, and the count is kept on its row:
later prompts (in any process, after any restart) never count it again."""

import asyncio

import pytest
from asgiref.sync import sync_to_async

from agents.llm_service import LLMService
from chat.models import Message
from kobold_fake.server import Script
from tests.chat.conftest import frames_until, is_end, open_socket

pytestmark = pytest.mark.django_db(transaction=True)


async def counted(*message_ids, timeout=5.0) -> list[Message]:
    async with asyncio.timeout(timeout):
        while True:
            rows = await sync_to_async(list)(Message.objects.filter(pk__in=message_ids))
            if len(rows) == len(message_ids) and all(
                r.token_count is not None for r in rows
            ):
                return rows
            await asyncio.sleep(0.02)


def tokencount_texts(fake) -> list[str]:
    return [
        r.json.get("prompt", "")
        for r in fake.requests
        if r.path.rstrip("/").endswith("tokencount") and isinstance(r.json, dict)
    ]


async def test_counts_are_stored_and_history_is_not_counted_again(
    kobold_settings, fake_kobold, make_user, make_key
):
    kobold_settings.CHAT_MAX_MESSAGE_CHARS = 16000
    fake_kobold.default_script = Script(tokens=["A reply ", "that is remembered."])
    user = await sync_to_async(make_user)()
    comm = await open_socket(await sync_to_async(make_key)(user))
    first_text = "A first question, long enough to be worth counting: " + "x " * 40
    await comm.send_to(text_data=first_text)
    end = (await frames_until(comm, is_end))[-1]
    reply = await sync_to_async(Message.objects.get)(pk=end["message_id"])
    question = await sync_to_async(
        lambda: reply.conversation.messages.filter(role="user").get()
    )()
    rows = await counted(question.pk, reply.pk)
    assert all(row.token_count > 0 for row in rows)
    LLMService.forget_all()  # as after a restart: the in-memory count cache is gone
    fake_kobold.requests.clear()
    fake_kobold.default_script = Script(tokens=["Second."])
    await comm.send_json_to(
        {
            "type": "message",
            # Many bytes, few tokens: the prompt is measured (no byte bound proves it
            # fits), and it fits.
            "text": "and " + "supercalifragilistic " * 150,
            "conversation_id": end["conversation_id"],
        }
    )
    second = (await frames_until(comm, is_end))[-1]
    assert second["status"] == "complete"
    counted_again = [t for t in tokencount_texts(fake_kobold) if "first question" in t]
    assert counted_again == []
    await comm.disconnect()
