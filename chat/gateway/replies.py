"""An API request as a reply job like the page's (chat.replies.control): stored in the
key's API conversation, waiting in the one backend queue, stopped upstream (by genkey)
when its caller goes away, forgotten afterwards when the key keeps no history."""

import asyncio
import contextvars
import logging

from channels.db import database_sync_to_async

from chat import protocol, tree
from chat.gateway.history import api_exchange_create, api_exchange_forget
from chat.models import ApiKey, Conversation, Message
from chat.replies.control import launch, reply_stop, reply_wait

log = logging.getLogger(__name__)

_forgetting: set[asyncio.Task] = set()  # strong references until each task ends


def _exchange(key: ApiKey, text: str):
    conversation, user_message, assistant = api_exchange_create(key=key, text=text)
    payload = protocol.message_payload(user_message, tree.siblings_of([user_message]))
    return conversation, user_message, assistant, payload


async def api_reply_start(
    *, key: ApiKey, body, model: str = ""
) -> tuple[Conversation, Message]:
    """Store the exchange of `body` (a ChatCompletionIn or CompletionIn) and start its
    job on a backend serving `model` ("": any); raises ChatError (rate limit, quota,
    a reply still running)."""
    conversation, user_message, assistant, payload = await database_sync_to_async(
        _exchange
    )(key, body.stored_text())
    launch(
        conversation, assistant, key.user,
        history=[], text=user_message.content, direct=body.direct(), model=model,
        announce=protocol.user_message(conversation.title, payload),
        user_message_id=user_message.pk,
    )  # fmt: skip
    return conversation, assistant


def api_reply_done(*, key: ApiKey, conversation_id: int, message_id: int) -> None:
    """The caller has what it reads of the reply: with history off, the exchange is
    deleted once the reply settles (a stopped one settles a moment later)."""
    if key.keep_history:
        return
    # Its own context: it outlives the request, whose thread executor closes.
    task = asyncio.create_task(
        _forget_when_settled(conversation_id, message_id),
        context=contextvars.Context(),
    )
    _forgetting.add(task)
    task.add_done_callback(_forgetting.discard)


async def _forget_when_settled(conversation_id: int, message_id: int) -> None:
    await reply_wait(message_id)
    await database_sync_to_async(api_exchange_forget)(conversation_id=conversation_id)
    log.info("API reply %s settled and forgotten (history off)", message_id)


async def api_reply_abandon(*, key: ApiKey, message_id: int) -> None:
    """The caller went away before the end: stop the reply (KoboldCpp is aborted by
    the reply's genkey), keeping what was written."""
    log.info("API reply %s: the caller went away; stopping it", message_id)
    await asyncio.shield(reply_stop(user=key.user, message_id=message_id))


async def api_reply_result(
    *, key: ApiKey, conversation_id: int, message_id: int
) -> Message:
    """The settled reply; a caller that leaves first stops it."""
    try:
        return await reply_wait(message_id)
    except asyncio.CancelledError:
        await api_reply_abandon(key=key, message_id=message_id)
        raise
    finally:
        api_reply_done(key=key, conversation_id=conversation_id, message_id=message_id)
