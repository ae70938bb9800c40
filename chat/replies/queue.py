"""The fair backend queue: KoboldCpp writes one reply at a time, so replies take turns,
first come first served. In-process by default; kept in Redis when REDIS_URL is set so that
several Daphne processes share one line."""

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable

from django.conf import settings

from agents import start_trace

log = logging.getLogger(__name__)

PositionCallback = Callable[[int], Awaitable[None]]


class LocalBackendQueue:
    """One line per process: the first `concurrency` entries run, the rest wait."""

    def __init__(self, concurrency: int):
        self.concurrency = max(1, concurrency)
        self._line: list[str] = []
        self._changed = asyncio.Event()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_turn(self, job_id: str, on_position: PositionCallback) -> None:
        """Return when `job_id` may generate; cancelling it leaves the line."""
        self._line.append(job_id)
        self._notify()
        try:
            last = None
            while True:
                changed = self._changed
                position = self._line.index(job_id) - self.concurrency + 1
                if position <= 0:
                    start_trace.mark("queue_turn")
                    return
                if position != last:
                    last = position
                    await on_position(position)
                    continue
                await changed.wait()
        except BaseException:
            await self.release(job_id)
            raise

    async def keep_alive(self, job_id: str) -> None:
        """Nothing to refresh: the line lives and dies with this process."""

    async def release(self, job_id: str) -> None:
        if job_id in self._line:
            self._line.remove(job_id)
            self._notify()

    async def forget(self, message_id: int) -> None:
        """Nothing: the line of a dead process died with it."""

    async def positions(self) -> list[str]:
        return list(self._line)

    async def others_waiting(self) -> bool:
        """Whether some job waits for a turn (the line is longer than the slots)."""
        return len(self._line) > self.concurrency


class RedisBackendQueue:
    """The same line in a Redis sorted set ordered by ticket, shared by every process.

    Each entry keeps a short-lived "alive" key; entries of a dead process expire and are
    pruned by the next waiter, so the line never jams.
    """

    POLL_SECONDS = 0.05
    ALIVE_SECONDS = 15

    def __init__(self, url: str, concurrency: int, name: str):
        import redis.asyncio as redis

        from koboldchat.redis_retry import redis_connection_options

        self.concurrency = max(1, concurrency)
        self._redis = redis.from_url(url, **redis_connection_options())
        self._line_key = f"koboldchat:queue:{name}"
        self._ticket_key = f"koboldchat:queue:{name}:ticket"

    def _alive_key(self, job_id: str) -> str:
        return f"{self._line_key}:alive:{job_id}"

    async def _touch(self, job_id: str) -> None:
        await self._redis.set(self._alive_key(job_id), "1", ex=self.ALIVE_SECONDS)

    async def _line(self) -> list[str]:
        members = [m.decode() for m in await self._redis.zrange(self._line_key, 0, -1)]
        if not members:
            return members
        alive = await self._redis.mget([self._alive_key(m) for m in members])
        dead = [m for m, flag in zip(members, alive, strict=True) if flag is None]
        if dead:
            log.warning("pruning dead queue entries %s", dead)
            await self._redis.zrem(self._line_key, *dead)
        return [m for m, flag in zip(members, alive, strict=True) if flag is not None]

    async def wait_turn(self, job_id: str, on_position: PositionCallback) -> None:
        await self._touch(job_id)
        ticket = await self._redis.incr(self._ticket_key)
        await self._redis.zadd(self._line_key, {job_id: ticket})
        try:
            last, touched = None, time.monotonic()
            while True:
                line = await self._line()
                if (
                    job_id not in line
                ):  # pruned while we were stalled: take a new ticket
                    await self._touch(job_id)
                    await self._redis.zadd(self._line_key, {job_id: ticket})
                    continue
                position = line.index(job_id) - self.concurrency + 1
                if position <= 0:
                    start_trace.mark("queue_turn")
                    return
                if position != last:
                    last = position
                    await on_position(position)
                if time.monotonic() - touched > self.ALIVE_SECONDS / 3:
                    await self._touch(job_id)
                    touched = time.monotonic()
                # The first in line looks often; those far behind, less (at most 1/s).
                await asyncio.sleep(min(self.POLL_SECONDS * (1 + position // 10), 1.0))
        except BaseException:
            await asyncio.shield(self.release(job_id))
            raise

    async def keep_alive(self, job_id: str) -> None:
        await self._touch(job_id)

    async def release(self, job_id: str) -> None:
        await self._redis.zrem(self._line_key, job_id)
        await self._redis.delete(self._alive_key(job_id))

    async def forget(self, message_id: int) -> None:
        """Drop the entries of a reply's dead jobs (another job continues the reply)."""
        line = [m.decode() for m in await self._redis.zrange(self._line_key, 0, -1)]
        dead = [m for m in line if m.startswith(f"{message_id}-")]
        if dead:
            await self._redis.zrem(self._line_key, *dead)

    async def positions(self) -> list[str]:
        return await self._line()

    async def others_waiting(self) -> bool:
        """Whether some job, of any process, waits for a turn."""
        return len(await self._line()) > self.concurrency


_queues: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, object]" = (
    weakref.WeakKeyDictionary()
)


def get_backend_queue():
    """The queue for the running event loop (clients of Redis are per loop too)."""
    loop = asyncio.get_running_loop()
    queue = _queues.get(loop)
    if queue is None:
        if settings.REDIS_URL:
            queue = RedisBackendQueue(
                settings.REDIS_URL, settings.BACKEND_CONCURRENCY, settings.KOBOLDCPP_URL
            )
        else:
            queue = LocalBackendQueue(settings.BACKEND_CONCURRENCY)
        _queues[loop] = queue
    return queue


def reset_backend_queue() -> None:
    """Forget the queues (tests change settings between runs)."""
    _queues.clear()
