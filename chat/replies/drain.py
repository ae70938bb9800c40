"""A server process told to stop (SIGTERM or SIGINT: koboldchat.lifecycle) stops well.
It takes no new reply: each one asked of it is announced, then left queued for the next
process. It lets the running replies finish for up to CHAT_DRAIN_SECONDS; then it hands
the rest over: each stops its model, keeps its text and is left pending with a stale
heartbeat, and every process's reaper is woken to continue it (chat.replies.handover)."""

import asyncio
import logging

from channels.db import database_sync_to_async

from chat import protocol, services
from chat.replies.job import GenerationJob, local_jobs
from chat.replies.reaper import reaper_reset, stop_reaper, wake_reapers

log = logging.getLogger(__name__)
LAST_FRAMES_SECONDS = 0.3

_state = {"draining": False, "closed": False}
_deferring: set[asyncio.Task] = set()


def draining() -> bool:
    """This process is stopping: new replies go to the next one."""
    return _state["draining"]


def closed() -> bool:
    """Its replies are handed over: it takes no new socket either."""
    return _state["closed"]


def defer(job: GenerationJob) -> None:
    """A reply asked of this process as it stops: announced, then left for the next."""
    task = asyncio.create_task(_defer(job))
    _deferring.add(task)
    task.add_done_callback(_deferring.discard)


async def _defer(job: GenerationJob) -> None:
    if job.request.announce:
        await job.frames.broadcast(dict(job.request.announce))
    await job.frames.broadcast(protocol.queued(1))
    await database_sync_to_async(services.reply_release)(message_ids=[job.message_id])
    log.warning("reply %s left queued for the next process", job.message_id)
    await wake_reapers()


async def drain(seconds: float, hurry: asyncio.Event | None = None) -> int:
    """Stop taking replies, let the running ones finish for up to `seconds` (less once
    `hurry` is set), hand the rest over; how many were handed over."""
    _state["draining"] = True
    stop_reaper()
    running = local_jobs()
    if running:
        log.warning(
            "stopping: %s replies running, they may finish for %s s", len(running), seconds
        )  # fmt: skip
        waits = [
            asyncio.ensure_future(asyncio.gather(*(j.done.wait() for j in running)))
        ]
        if hurry is not None:
            waits.append(asyncio.ensure_future(hurry.wait()))
        _, pending = await asyncio.wait(
            waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED
        )
        for waiting in pending:
            waiting.cancel()
    if _deferring:
        await asyncio.gather(*_deferring, return_exceptions=True)
    rest = local_jobs()
    await asyncio.gather(*(job.hand_over() for job in rest), return_exceptions=True)
    if rest:
        await wake_reapers()
        log.warning("stopping: %s replies handed over to the next process", len(rest))
    if running:
        # Their last frames may still be on their way through the channel layer
        # (Redis): the sockets are closed after those have reached them.
        await asyncio.sleep(LAST_FRAMES_SECONDS)
    _state["closed"] = True
    return len(rest)


def reset() -> None:
    """For tests: a process that runs again."""
    _state.update(draining=False, closed=False)
    reaper_reset()
