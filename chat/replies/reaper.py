"""The reaper: once per event loop, a task that takes over the replies whose job died
with its process and continues them from their last checkpoint (chat.replies.handover),
or marks them `interrupted` where they may not continue. It looks every
CHAT_REAPER_INTERVAL_SECONDS, and at once when a stopping process wakes every reaper."""

import asyncio
import contextvars
import logging
import weakref

from channels.layers import get_channel_layer
from django.conf import settings

from chat.replies.handover import take_over_stale

log = logging.getLogger(__name__)

REAPERS_GROUP = "replies.reapers"  # every process's reaper listens here

_reapers: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task]" = (
    weakref.WeakKeyDictionary()
)
_stopped = False  # this process is stopping: it takes over nothing more


def ensure_reaper() -> None:
    """Start, once per event loop, the task that takes over the replies of dead jobs."""
    loop = asyncio.get_running_loop()
    task = _reapers.get(loop)
    if not _stopped and (task is None or task.done()):
        _reapers[loop] = loop.create_task(
            _reap_forever(), name="reply-reaper", context=contextvars.Context()
        )


def stop_reaper() -> None:
    """This process stops: its reaper takes over nothing more (not even what it hands
    over itself)."""
    global _stopped
    _stopped = True
    for task in list(_reapers.values()):
        task.cancel()


def reaper_reset() -> None:
    """For tests: a process that runs again after a stop."""
    global _stopped
    _stopped = False


async def wake_reapers() -> None:
    """Tell every process's reaper to look now (replies were just handed over)."""
    try:
        await get_channel_layer().group_send(REAPERS_GROUP, {"type": "reaper.wake"})
    except Exception:
        log.warning("could not wake the reapers; they look again soon", exc_info=True)


async def _reap_forever() -> None:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    wake: asyncio.Future | None = None  # never cancelled: that would drop the channel
    while True:
        try:
            await layer.group_add(REAPERS_GROUP, channel)  # again: memberships expire
        except Exception:
            log.warning("the reaper could not join its group", exc_info=True)
        try:
            count = await take_over_stale()
            if count:
                log.warning("took over %s replies of dead jobs", count)
        except Exception:
            log.exception("the reply reaper failed; it will try again")
        if wake is None or wake.done():
            wake = asyncio.ensure_future(layer.receive(channel))
        # Its usual look, or sooner when woken (a failed receive: a new one next time).
        await asyncio.wait({wake}, timeout=settings.CHAT_REAPER_INTERVAL_SECONDS)
