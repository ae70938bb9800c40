"""Starting, stopping and waiting for replies: what the socket and the REST API call.
The job itself is `chat.replies.job.GenerationJob`; resuming is `chat.replies.listener`."""

import asyncio
import logging

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from agents import start_trace
from agents.events import ChatTurn
from agents.orchestrator import ReplyOverrides
from chat import protocol, services, tree
from chat.models import Conversation, Message
from chat.replies import drain, exchanges
from chat.replies.continuation import CONTINUE_INSTRUCTION
from chat.replies.fanout import reply_group, user_group
from chat.replies.job import GenerationJob, local_job
from chat.replies.reaper import ensure_reaper
from chat.replies.request import ReplyRequest

log = logging.getLogger(__name__)

BRANCH_TAIL = 200  # messages a `branch` frame carries at most (the page shows 50)


def _overrides(conversation: Conversation) -> ReplyOverrides:
    return ReplyOverrides(
        system_prompt=conversation.system_prompt or None,
        temperature=conversation.temperature,
        top_p=conversation.top_p,
        max_tokens=conversation.max_tokens,
        reasoning_effort=conversation.reasoning_effort or None,
    )


def launch(conversation, assistant, user, **request) -> GenerationJob:
    """Start the job of reply `assistant` (ReplyRequest's fields in `request`)."""
    ensure_reaper()
    job = GenerationJob(
        ReplyRequest(
            message_id=assistant.pk,
            conversation_id=conversation.pk,
            user_id=user.pk,
            overrides=_overrides(conversation),
            **({"model": conversation.model} | request),
        )
    )
    if drain.draining():
        drain.defer(job)
    else:
        job.start()
    log.info(
        "user %s: reply %s in conversation %s started (%s)",
        user.pk, assistant.pk, conversation.pk, request["announce"]["type"],
    )  # fmt: skip
    return job


def _exchange(user, text, conversation_id, new_conversation, edit_of=None):
    start_trace.mark("db_thread")
    if edit_of is not None:
        conversation, user_message, assistant = exchanges.edit_create(
            user=user, message_id=edit_of, text=text
        )
    else:
        conversation, user_message, assistant = exchanges.exchange_create(
            user=user,
            text=text,
            conversation_id=conversation_id,
            new_conversation=new_conversation,
        )
    start_trace.mark("committed")
    history = exchanges.history_before(message=user_message)
    start_trace.mark("history_read")
    payload = protocol.message_payload(user_message, tree.siblings_of([user_message]))
    start_trace.mark("payload")
    return conversation, user_message, assistant, history, payload


async def reply_start(
    *,
    user,
    text,
    conversation_id=None,
    new_conversation: bool = False,
    simple: bool = False,
    edit_of: int | None = None,
):
    """Store the user's message and start the reply job; return (conversation, user
    message, assistant message). With `edit_of` (a user message), the text is an edit
    of it: a new branch from there. Raises ChatError for bad input, busy or rate limit."""
    (
        conversation,
        user_message,
        assistant,
        history,
        payload,
    ) = await database_sync_to_async(_exchange)(
        user, text, conversation_id, new_conversation, edit_of
    )
    start_trace.mark("db_done")
    announce = protocol.user_message(conversation.title, payload, edit_of=edit_of)
    launch(
        conversation, assistant, user,
        history=history, text=text, simple=simple, announce=announce,
        user_message_id=user_message.pk,
    )  # fmt: skip
    start_trace.mark("launched")
    return conversation, user_message, assistant


def _regeneration(user, conversation_id, message_id):
    conversation, user_message, assistant = exchanges.regeneration_create(
        user=user, conversation_id=conversation_id, message_id=message_id
    )
    siblings = tree.siblings_of([assistant])[assistant.pk]
    return (
        conversation,
        user_message,
        assistant,
        exchanges.history_before(message=assistant),
        protocol.regenerate(parent_id=user_message.pk, sibling_ids=siblings),
    )


async def reply_regenerate(*, user, conversation_id, message_id=None):
    """Answer again the user message of reply `message_id` (default: the last reply
    shown): a new alternative reply, shown; the old one is kept."""
    (
        conversation,
        user_message,
        assistant,
        turns,
        announce,
    ) = await database_sync_to_async(_regeneration)(user, conversation_id, message_id)
    launch(
        conversation, assistant, user,
        history=turns[:-1], text=user_message.content, announce=announce,
        user_message_id=user_message.pk,
    )  # fmt: skip
    return conversation, user_message, assistant


def _continuation(user, conversation_id, message_id):
    conversation, assistant = exchanges.continuation_prepare(
        user=user, conversation_id=conversation_id, message_id=message_id
    )
    return conversation, assistant, exchanges.history_before(message=assistant)


async def reply_continue(*, user, conversation_id, message_id=None):
    """Extend the last reply (cut by the length limit, or stopped; `message_id`, when
    given, must be that reply); new text is appended to it."""
    conversation, assistant, turns = await database_sync_to_async(_continuation)(
        user, conversation_id, message_id
    )
    partial = assistant.content
    launch(
        conversation, assistant, user,
        history=[*turns, ChatTurn(role="assistant", content=partial)],
        text=CONTINUE_INSTRUCTION,
        prefix=partial,
        earlier_metrics={
            "completion_tokens": assistant.completion_tokens or assistant.token_count,
            "duration_ms": assistant.duration_ms,
            "ttft_ms": assistant.ttft_ms,
        },
        reasoning=assistant.reasoning,
        announce=protocol.continued(len(partial)),
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


def _branch(user, message_id) -> dict:
    conversation, chosen = exchanges.branch_select(user=user, message_id=message_id)
    path = tree.path_ids(conversation.current_leaf_id)
    shown = tree.path_messages(conversation.current_leaf_id, limit=BRANCH_TAIL)
    tail = [m for m in shown if m.depth >= chosen.depth]
    siblings = tree.siblings_of(tail)
    return protocol.branch(
        conversation_id=conversation.pk,
        message_id=chosen.pk,
        path=path,
        messages=[protocol.message_payload(m, siblings) for m in tail],
        complete=len(tail) == len(path) - chosen.depth,
    )


async def branch_select(*, user, message_id) -> dict:
    """Show the branch of `message_id` in every tab of its conversation: each gets a
    `branch` frame with the new path and the messages from `message_id` down."""
    frame = await database_sync_to_async(_branch)(user, message_id)
    await get_channel_layer().group_send(
        user_group(user.pk), {"type": "chat.frame", "frame": frame}
    )
    log.info(
        "user %s: conversation %s shows the branch of message %s",
        user.pk, frame["conversation_id"], message_id,
    )  # fmt: skip
    return frame


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
