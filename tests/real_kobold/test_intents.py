"""Intent detection by the real model: every intent request's answer is a label."""

import pytest
from asgiref.sync import sync_to_async

from agents.intents import INTENTS
from chat.models import Message
from tests.chat.conftest import frames_until, is_end, message_row, open_socket

pytestmark = [pytest.mark.real_kobold, pytest.mark.django_db(transaction=True)]

MESSAGES = [
    "Hello there, how is your day going?",
    "Bonjour, comment allez-vous aujourd'hui ?",
    "What is the capital of Australia?",
    "Pourquoi le ciel est-il bleu ?",
    "Write a short poem about the autumn rain.",
    "Écris une petite histoire sur un chat qui parle.",
    "Write a Python function that reverses a linked list.",
    "Comment trier une liste en JavaScript ?",
    "Summarize our conversation so far in three points.",
    "Peux-tu résumer ce texte : la réunion est reportée à jeudi, salle B.",
]


async def _socket(make_user, make_key):
    user = await sync_to_async(make_user)()
    comm = await open_socket(await sync_to_async(make_key)(user), path="/api/ws/chat")
    assert comm.connected
    return user, comm


@pytest.mark.timeout(300)  # ten replies: the suite's 120 s is for one
async def test_every_message_is_classified_by_the_model(settings, make_user, make_key):
    """INTENT_DETECTION=llm on ten varied messages (English and French; greetings,
    questions, creative, code, summarize): every decision comes from the model, none
    from the heuristic fallback that a format failure (or a timeout) would cause."""
    settings.INTENT_DETECTION = "llm"
    settings.REPLY_PROFILES = {intent: {"max_tokens": 8} for intent in INTENTS}
    user, comm = await _socket(make_user, make_key)
    decided = {}
    for text in MESSAGES:
        await comm.send_to(text_data=text)
        frames = await frames_until(comm, is_end, timeout=120)
        start = next(f for f in frames if f["type"] == "start")
        decided[text] = (start["intent"], start["intent_source"], frames[-1]["status"])
    await comm.disconnect()
    failed = {text: d for text, d in decided.items() if d[1] != "llm"}
    assert not failed, f"{len(failed)}/{len(MESSAGES)} not from the model: {failed}"
    stored = await sync_to_async(list)(
        Message.objects.filter(conversation__owner=user, role="assistant").values_list(
            "intent_source", flat=True
        )
    )
    assert stored == ["llm"] * len(MESSAGES)


async def test_auto_asks_the_model_for_an_ambiguous_message(
    settings, make_user, make_key
):
    """INTENT_DETECTION=auto: a question the heuristic is unsure of is routed by the
    model, and the reply that follows completes, stored with that source."""
    settings.INTENT_DETECTION = "auto"
    _, comm = await _socket(make_user, make_key)
    await comm.send_to(text_data="How do bees make honey?")
    frames = await frames_until(comm, is_end, timeout=120)
    start = next(f for f in frames if f["type"] == "start")
    end = frames[-1]
    assert end["status"] == "complete" and end["content"].strip()
    reply = await message_row(end["message_id"])
    assert reply.intent_source == start["intent_source"] == "llm"
    await comm.disconnect()
