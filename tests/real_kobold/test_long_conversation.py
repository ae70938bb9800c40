"""A conversation longer than the real server's context: the prompt is trimmed, and the
next reply still completes."""

from datetime import timedelta

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from agents.events import ChatTurn
from agents.profiles import HISTORY_TURNS
from chat import services, tree
from chat.models import Message
from tests.chat.conftest import frames_until, is_end, message_row, open_socket
from tests.real_kobold.conftest import SHORT_REPLY_TOKENS

pytestmark = [pytest.mark.real_kobold, pytest.mark.django_db(transaction=True)]
EXCHANGES = 30
QUESTION = (
    "Question {n}: I am planning a trip through the Alps in spring with two friends; "
    "what should we pack, which passes are open, and where can we sleep cheaply?"
)
ANSWER = (
    "Answer {n}: pack layers, a rain jacket, sturdy boots and a small first-aid kit. "
    "Many high passes stay closed until late May or June, so check the cantonal road "
    "reports before you go. Mountain huts and youth hostels are the cheapest beds; "
    "book ahead on weekends, and carry cash for the huts that take no cards."
)


def _fill(user) -> tuple[int, list[ChatTurn]]:
    """A conversation with EXCHANGES settled exchanges, an hour old (outside the rate
    limit's minute); its id and its turns."""
    conversation = services.conversation_create(owner=user, title="a long trip")
    began = timezone.now() - timedelta(hours=1)
    rows = []
    for n in range(EXCHANGES):
        for offset, role, text in (
            (2 * n, Message.Role.USER, QUESTION),
            (2 * n + 1, Message.Role.ASSISTANT, ANSWER),
        ):
            rows.append(
                Message(
                    conversation=conversation,
                    role=role,
                    content=text.format(n=n),
                    created_at=began + timedelta(seconds=offset),
                )
            )
    tree.bulk_append(conversation, rows)
    return conversation.pk, [ChatTurn(r.role, r.content) for r in rows]


async def test_reply_past_the_context_completes(make_user, make_key, kobold_url):
    """History of more tokens than the server's whole context (2,048): the app trims
    the oldest turns, and the reply streams to `complete`, its prompt within the room
    the context leaves."""
    user = await sync_to_async(make_user)()
    conversation_id, turns = await sync_to_async(_fill)(user)
    # The turns' text alone, without the template's markers: fewer tokens than any
    # prompt that carried them.
    text = "\n".join(turn.content for turn in turns[-HISTORY_TURNS:])
    async with httpx.AsyncClient(base_url=kobold_url, timeout=30) as client:
        counted = await client.post("/api/extra/tokencount", json={"prompt": text})
        context = await client.get("/api/extra/true_max_context_length")
    history_tokens, max_context = counted.json()["value"], context.json()["value"]
    assert history_tokens > max_context  # the history cannot all be sent
    comm = await open_socket(await sync_to_async(make_key)(user), path="/api/ws/chat")
    await comm.send_json_to(
        {
            "type": "message",
            "text": "Which of those tips matters most?",
            "conversation_id": conversation_id,
        }
    )
    frames = await frames_until(comm, is_end, timeout=120)
    end = frames[-1]
    assert end["status"] == "complete" and not end["error_code"], end
    assert end["content"].strip()
    reply = await message_row(end["message_id"])
    assert reply.status == "complete"
    assert 0 < reply.prompt_tokens <= max_context - SHORT_REPLY_TOKENS
    await comm.disconnect()
