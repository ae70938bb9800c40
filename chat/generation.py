"""Starting, stopping, waiting for and watching replies: what the socket and the REST API
call. The job itself is `chat.reply_job.GenerationJob`."""

import asyncio
import contextvars
import logging
import weakref
from collections.abc import AsyncIterator

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from agents.events import ChatTurn
from agents.orchestrator import ReplyOverrides
from chat import services
from chat.frames import FrameFilter
from chat.models import Conversation, Message
from chat.reply_fanout import GroupListener, reply_group, user_group
from chat.reply_job import GenerationJob, ReplyRequest, local_job

log = logging.getLogger(__name__)

CONTINUE_INSTRUCTION = (
    "Continue your previous answer exactly where it stopped, without repeating it."
)
SNAPSHOT_WAIT_SECONDS = 2.0


def _overrides(conversation: Conversation) -> ReplyOverrides:
    return ReplyOverrides(
        system_prompt=conversation.system_prompt or None,
        temperature=conversation.temperature,
        top_p=conversation.top_p,
        max_tokens=conversation.max_tokens,
    )


def _launch(conversation, assistant, user, **request) -> GenerationJob:
    ensure_reaper()
    job = GenerationJob(
        ReplyRequest(
            message_id=assistant.pk,
            conversation_id=conversation.pk,
            user_id=user.pk,
            overrides=_overrides(conversation),
            **request,
        )
    )
    job.start()
    log.info(
        "user %s: reply %s in conversation %s started (%s)",
        user.pk, assistant.pk, conversation.pk, request["announce"]["type"],
    )  # fmt: skip
    return job


def _exchange(user, text, conversation_id):
    conversation, user_message, assistant = services.exchange_create(
        user=user, text=text, conversation_id=conversation_id
    )
    history = services.history_before(message=user_message)
    return (
        conversation,
        user_message,
        assistant,
        history,
        services.message_payload(user_message),
    )


async def reply_start(*, user, text, conversation_id=None, simple: bool = False):
    """Store the user's message and start the reply job; return (conversation, user
    message, assistant message). Raises ChatError for bad input, busy or rate limit."""
    (
        conversation,
        user_message,
        assistant,
        history,
        payload,
    ) = await database_sync_to_async(_exchange)(user, text, conversation_id)
    announce = {
        "type": "user_message",
        "conversation_title": conversation.title,
        "message": payload,
    }
    _launch(
        conversation, assistant, user,
        history=history, text=text, simple=simple, announce=announce,
    )  # fmt: skip
    return conversation, user_message, assistant


def _regeneration(user, conversation_id):
    conversation, user_message, assistant = services.regeneration_create(
        user=user, conversation_id=conversation_id
    )
    return (
        conversation,
        user_message,
        assistant,
        services.history_before(message=assistant),
    )


async def reply_regenerate(*, user, conversation_id):
    """Answer the last user message of a conversation again, replacing the last reply."""
    conversation, user_message, assistant, turns = await database_sync_to_async(
        _regeneration
    )(user, conversation_id)
    _launch(
        conversation, assistant, user,
        history=turns[:-1], text=user_message.content, announce={"type": "regenerate"},
    )  # fmt: skip
    return conversation, user_message, assistant


def _continuation(user, conversation_id):
    conversation, assistant = services.continuation_prepare(
        user=user, conversation_id=conversation_id
    )
    return conversation, assistant, services.history_before(message=assistant)


async def reply_continue(*, user, conversation_id):
    """Extend the last reply (cut by the length limit); new text is appended to it."""
    conversation, assistant, turns = await database_sync_to_async(_continuation)(
        user, conversation_id
    )
    partial = assistant.content
    _launch(
        conversation, assistant, user,
        history=[*turns, ChatTurn(role="assistant", content=partial)],
        text=CONTINUE_INSTRUCTION,
        prefix=partial,
        announce={"type": "continue", "offset": len(partial)},
    )  # fmt: skip
    return conversation, assistant


async def reply_stop(*, user, message_id) -> Message:
    """Stop a reply of `user` wherever its job runs (this process or another)."""
    message = await database_sync_to_async(services.message_get)(
        user=user, message_id=message_id
    )
    if message.is_pending:
        job = local_job(message.pk)
        if job is not None:
            await job.stop()
        else:
            await get_channel_layer().group_send(
                reply_group(message.pk), {"type": "job.stop"}
            )
    return message


async def reply_wait(message_id: int, *, poll_seconds: float = 0.2) -> Message:
    """Wait until the reply is no longer pending and return its row."""
    job = local_job(message_id)
    if job is not None:
        await job.done.wait()
    while True:
        message = await database_sync_to_async(
            Message.objects.select_related("conversation").get
        )(pk=message_id)
        if not message.is_pending:
            return message
        await asyncio.sleep(poll_seconds)


async def snapshot_request(message_id: int, reply_to: str) -> dict | None:
    """Ask the reply's job for its snapshot. A job of this process answers at once (the
    frame is returned); another process answers on `reply_to` as a `chat.snapshot`."""
    job = local_job(message_id)
    if job is not None:
        return job.snapshot()
    await get_channel_layer().group_send(
        reply_group(message_id), {"type": "job.snapshot", "reply_to": reply_to}
    )
    return None


def snapshot_from_database(message: Message) -> dict:
    """What is known without a job: the last checkpoint, or the final text (then with
    its sanitized html and metrics, as in `end`)."""
    snapshot = {
        "type": "snapshot",
        "conversation_id": message.conversation_id,
        "message_id": message.pk,
        "status": message.status,
        "content": message.content,
        "offset": len(message.content),
        "intent": message.intent,
        "intent_source": message.intent_source,
    }
    if not message.is_pending:
        payload = services.message_payload(message)
        snapshot.update(
            html=payload["html"],
            metrics=payload["metrics"],
            finish_reason=message.finish_reason,
            error_code=message.error_code,
        )
    return snapshot


def end_frame_from_database(message: Message) -> dict:
    payload = services.message_payload(message)
    return {
        "type": "end",
        "conversation_id": message.conversation_id,
        "message_id": message.pk,
        "status": message.status,
        "finish_reason": message.finish_reason,
        "content": message.content,
        "html": payload["html"],
        "metrics": payload["metrics"],
        "error_code": message.error_code,
    }


async def reply_frames(conversation_id: int, message_id: int) -> AsyncIterator[dict]:
    """The frames of one reply for one listener (the REST stream): a snapshot of what was
    already sent, then the live frames after it, ending with `end`."""
    message = await database_sync_to_async(
        Message.objects.select_related("conversation").get
    )(pk=message_id, conversation_id=conversation_id)
    if not message.is_pending:
        yield end_frame_from_database(message)
        return
    frames = FrameFilter()
    async with GroupListener(user_group(message.conversation.owner_id)) as listener:
        frames.expect_snapshot(message_id)
        snapshot = await snapshot_request(message_id, listener.channel)
        if snapshot is None:
            snapshot = await _await_snapshot(listener, frames, message_id)
        for frame in frames.on_snapshot(snapshot):
            yield frame
            if frame["type"] == "end":
                return
        if snapshot["status"] not in Message.PENDING_STATUSES:
            message = await database_sync_to_async(Message.objects.get)(pk=message_id)
            yield end_frame_from_database(message)
            return
        while True:
            event = await listener.get()
            frame = event.get("frame", {})
            if frame.get("message_id") != message_id:
                continue
            for out in frames.on_frame(frame):
                yield out
                if out["type"] == "end":
                    return


async def _await_snapshot(
    listener: GroupListener, frames: FrameFilter, message_id: int
) -> dict:
    try:
        async with asyncio.timeout(SNAPSHOT_WAIT_SECONDS):
            while True:
                event = await listener.get()
                frame = event.get("frame", {})
                if (
                    event.get("type") == "chat.snapshot"
                    and frame["message_id"] == message_id
                ):
                    return frame
                if frame.get("message_id") == message_id:
                    frames.on_frame(frame)  # buffered until the snapshot
    except TimeoutError:
        message = await database_sync_to_async(Message.objects.get)(pk=message_id)
        return snapshot_from_database(message)


_reapers: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task]" = (
    weakref.WeakKeyDictionary()
)


def ensure_reaper() -> None:
    """Start, once per event loop, the task that marks replies of dead jobs interrupted."""
    loop = asyncio.get_running_loop()
    task = _reapers.get(loop)
    if task is None or task.done():
        _reapers[loop] = loop.create_task(
            _reap_forever(), name="reply-reaper", context=contextvars.Context()
        )


async def _reap_forever() -> None:
    while True:
        try:
            count = await database_sync_to_async(services.replies_reap)(
                stale_seconds=settings.CHAT_HEARTBEAT_STALE_SECONDS
            )
            if count:
                log.warning("marked %s replies of dead jobs as interrupted", count)
        except Exception:
            log.exception("the reply reaper failed; it will try again")
        await asyncio.sleep(settings.CHAT_REAPER_INTERVAL_SECONDS)
