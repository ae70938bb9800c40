"""Replies whose process died: a surviving process (or the same one, restarted) takes
each one over and continues it from its last checkpoint, so that a reply is finished, not
left `interrupted`. Only one process may take a reply: the claim is a compare-and-set on
the reply's heartbeat in the database. Watchers get a `rewind` to the checkpoint first
(they may have seen up to a second more), then the new text."""

import asyncio
import logging
import os
import socket
from datetime import timedelta

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from agents.events import ChatTurn
from agents.llm_service import LLMService
from chat import protocol
from chat.models import Message
from chat.pool.registry import backend_get, service_for
from chat.replies import exchanges
from chat.replies.continuation import CONTINUE_INSTRUCTION
from chat.replies.job import local_job
from chat.replies.models import Handover
from chat.replies.queue import get_backend_queue

log = logging.getLogger(__name__)

PROCESS = f"{socket.gethostname()}:{os.getpid()}"[:80]


def _give_up(message_id: int, reason: str) -> None:
    Message.objects.filter(pk=message_id).update(
        status=Message.Status.INTERRUPTED,
        error_code="interrupted",
        html="",  # the checkpoint renders on view
        updated_at=timezone.now(),
    )
    log.warning("reply %s interrupted: %s", message_id, reason)


def claim_stale(*, stale_seconds: float) -> list[Message]:
    """The pending replies of dead jobs this process has just taken over (each one's
    heartbeat moved on, in one UPDATE that no other process can also win); those that
    may not continue are marked interrupted instead."""
    now = timezone.now()
    stale = Message.objects.pending().filter(
        heartbeat_at__lt=now - timedelta(seconds=stale_seconds)
    )
    taken = []
    for pk, beat, content in stale.values_list("pk", "heartbeat_at", "content"):
        if local_job(pk) is not None:
            continue  # alive here: a busy event loop, not a dead process
        with transaction.atomic():
            won = Message.objects.pending().filter(pk=pk, heartbeat_at=beat)
            taken_now = won.update(
                heartbeat_at=now, status=Message.Status.QUEUED, html=""
            )
            if not taken_now:
                continue  # another process took it
            earlier = Handover.objects.filter(message_id=pk).count()
            allowed = (
                settings.CHAT_AUTO_CONTINUE and earlier < settings.CHAT_MAX_HANDOVERS
            )
            outcome = (
                Handover.Outcome.CONTINUED if allowed else Handover.Outcome.INTERRUPTED
            )
            Handover.objects.create(
                message_id=pk, process=PROCESS, checkpoint_chars=len(content),
                outcome=outcome,
            )  # fmt: skip
        if not allowed:
            why = "auto-continue is off" if not settings.CHAT_AUTO_CONTINUE else (
                f"{earlier} hand-overs already"
            )  # fmt: skip
            _give_up(pk, why)
            continue
        taken.append(Message.objects.select_related("conversation__owner").get(pk=pk))
    return taken


def _launch_args(message: Message) -> dict:
    """The job of a taken reply: a continuation of its checkpoint (a reply that had not
    started yet starts afresh)."""
    turns = exchanges.history_before(message=message)
    partial = message.content
    question = turns[-1] if turns and turns[-1].role == "user" else None
    if not partial and not message.reasoning:
        if question is None:
            raise LookupError("no user message to answer")
        return {"history": turns[:-1], "text": question.content}
    if question is not None and partial:  # the model carries on from the partial
        history, text, carry_on = turns[:-1], question.content, True
    else:  # reasoning only, or no question: ask for the rest
        history = [*turns, ChatTurn(role="assistant", content=partial)]
        text, carry_on = CONTINUE_INSTRUCTION, False
    return {
        "history": history,
        "text": text,
        "carry_on": carry_on,
        "prefix": partial,
        "reasoning": message.reasoning,
        "earlier_metrics": {
            "completion_tokens": message.completion_tokens or message.token_count,
            "duration_ms": message.duration_ms,
            "ttft_ms": message.ttft_ms,
        },
    }


async def _clear_the_way(message: Message) -> None:
    """The dead job's generation may still run upstream, and its place in the backend
    queue may linger: stop the one, drop the other (best effort)."""
    try:
        await get_backend_queue().forget(message.pk)
        if message.genkey:  # on the backend that was writing it
            backend = await database_sync_to_async(backend_get)(message.backend_id)
            service = service_for(backend) if backend else LLMService.from_settings()
            await asyncio.wait_for(service.abort(message.genkey), timeout=2.0)
    except Exception:
        log.warning(
            "reply %s: the dead job's leftovers stay", message.pk, exc_info=True
        )


async def take_over_stale() -> int:
    """Claim the replies of dead jobs and start their continuation here; how many."""
    from chat.replies.control import (
        launch,
    )  # control starts jobs; it imports the reaper

    taken = await database_sync_to_async(claim_stale)(
        stale_seconds=settings.CHAT_HEARTBEAT_STALE_SECONDS
    )
    for message in taken:
        try:
            args = await database_sync_to_async(_launch_args)(message)
        except LookupError as exc:
            await database_sync_to_async(_give_up)(message.pk, str(exc))
            continue
        await _clear_the_way(message)
        conversation = message.conversation
        launch(
            conversation, message, conversation.owner,
            announce=protocol.rewind(len(message.content)), **args,
        )  # fmt: skip
        log.warning(
            "reply %s taken over by %s from its checkpoint (%s characters)",
            message.pk, PROCESS, len(message.content),
        )  # fmt: skip
    return len(taken)
