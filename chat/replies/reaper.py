"""The reaper: once per event loop, a task that marks replies whose job died with its
process `interrupted`, keeping their last checkpoint."""

import asyncio
import contextvars
import logging
import weakref

from channels.db import database_sync_to_async
from django.conf import settings

from chat import services

log = logging.getLogger(__name__)

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
