"""A streaming reply's checkpoints: its text saved about once a second (never once per
token), and a heartbeat while nothing changes, so the reaper knows its job is alive; and,
after it ends, the token counts of its messages, kept on their rows so that no later
prompt counts them again."""

import asyncio
import logging
import time

from channels.db import database_sync_to_async
from django.conf import settings

from chat import services
from chat.replies.fanout import ReplyText
from chat.replies.queue import get_backend_queue

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0  # at most; a third of CHAT_HEARTBEAT_STALE_SECONDS if less


def heartbeat_seconds() -> float:
    """How often a job that writes nothing (queued, or thinking silently) beats: three
    beats fit in the time after which a reaper of any process takes its reply over."""
    return min(HEARTBEAT_SECONDS, settings.CHAT_HEARTBEAT_STALE_SECONDS / 3)


async def checkpoint_forever(message_id: int, job_id: str, text: ReplyText) -> None:
    """Run beside the job until cancelled; a failed write is retried at the next tick
    (the final write is the job's own)."""
    queue = get_backend_queue()
    written, beat = (len(text.content), len(text.reasoning)), time.monotonic()
    every = heartbeat_seconds()
    while True:
        await asyncio.sleep(settings.CHAT_CHECKPOINT_SECONDS)
        now = time.monotonic()
        try:
            if (len(text.content), len(text.reasoning)) != written:
                content, reasoning = text.content, text.reasoning
                await database_sync_to_async(services.reply_checkpoint)(
                    message_id=message_id, content=content, reasoning=reasoning
                )
                written = (len(content), len(reasoning))
            elif now - beat >= every:
                await database_sync_to_async(services.reply_heartbeat)(
                    message_ids=[message_id]
                )
            else:
                continue
            beat = now
            await queue.keep_alive(job_id)
        except Exception:
            log.exception("reply %s: checkpoint failed", message_id)


_counting: set[asyncio.Task] = set()


def store_token_counts_later(service, texts: dict[int, str]) -> None:
    """Count each message's text once, beside the end of the reply (never on the way to
    a first token), and store the counts."""
    task = asyncio.create_task(_store_token_counts(service, texts))
    _counting.add(task)
    task.add_done_callback(_counting.discard)


async def _store_token_counts(service, texts: dict[int, str]) -> None:
    try:
        counts = {pk: await service.count_tokens(text) for pk, text in texts.items()}
        await database_sync_to_async(services.message_token_counts)(counts=counts)
    except Exception:
        log.warning("token counts of %s not stored", list(texts), exc_info=True)
