"""The backend queue in Redis, so that several Daphne processes share one line and one
count of each backend's slots."""

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Sequence

from agents import start_trace
from chat.pool.choice import Offer, ranked
from chat.replies.queue import BackendLine, OfferSource, PositionCallback

log = logging.getLogger(__name__)

# Atomically: if there are as many free slots among the backends offered (ARGV pairs:
# key, slots; best first) as waiters up to ARGV[1] in the line, it takes a slot of the
# first backend with one free and leaves the line; returns that key, or nil.
_CLAIM = """
local rank = redis.call('ZRANK', KEYS[1], ARGV[1])
if not rank then return false end
local free, first = 0, nil
for i = 2, #ARGV, 2 do
  local left = tonumber(ARGV[i + 1]) - redis.call('SCARD', KEYS[1] .. ':slots:' .. ARGV[i])
  if left > 0 then
    free = free + left
    first = first or ARGV[i]
  end
end
if free <= rank then return false end
redis.call('SADD', KEYS[1] .. ':slots:' .. first, ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
return first
"""


class RedisBackendQueue(BackendLine):
    """The same line in a Redis sorted set ordered by ticket, shared by every process,
    and each backend's slot holders in a Redis set.

    Each job keeps a short-lived "alive" key; the entries and slots of a dead process
    expire and are pruned by the next waiter, so neither line nor slots ever jam.
    """

    POLL_SECONDS = 0.05
    ALIVE_SECONDS = 15

    def __init__(self, url: str, concurrency: int, name: str):
        import redis.asyncio as redis

        from koboldchat.redis_retry import redis_connection_options

        super().__init__(concurrency)
        self._redis = redis.from_url(url, **redis_connection_options())
        self._line_key = f"koboldchat:queue:{name}"
        self._ticket_key = f"koboldchat:queue:{name}:ticket"
        self._backends_key = f"koboldchat:queue:{name}:backends"
        self._claim = self._redis.register_script(_CLAIM)

    def _alive_key(self, job_id: str) -> str:
        return f"{self._line_key}:alive:{job_id}"

    def _slots_key(self, backend_key: str) -> str:
        return f"{self._line_key}:slots:{backend_key}"

    async def _touch(self, job_id: str) -> None:
        await self._redis.set(self._alive_key(job_id), "1", ex=self.ALIVE_SECONDS)

    async def _alive(self, key: str, members: list[str]) -> list[str]:
        """The members of `key` (the line or a slot set) whose job lives; the rest go."""
        if not members:
            return members
        alive = await self._redis.mget([self._alive_key(m) for m in members])
        dead = [m for m, flag in zip(members, alive, strict=True) if flag is None]
        if dead:
            log.warning("pruning dead queue entries %s from %s", dead, key)
            drop = self._redis.zrem if key == self._line_key else self._redis.srem
            await drop(key, *dead)
        return [m for m, flag in zip(members, alive, strict=True) if flag is not None]

    async def _line(self) -> list[str]:
        members = await self._redis.zrange(self._line_key, 0, -1)
        return await self._alive(self._line_key, [m.decode() for m in members])

    async def _holders(self, backend_key: str) -> list[str]:
        key = self._slots_key(backend_key)
        members = sorted(m.decode() for m in await self._redis.smembers(key))
        return await self._alive(key, members)

    async def _take(self, job_id: str, offered: Sequence[Offer]) -> str | None:
        if not offered:
            return None
        await self._redis.sadd(self._backends_key, *(o.key for o in offered))
        loads = {o.key: len(await self._holders(o.key)) for o in offered}
        args = [job_id]
        for offer in ranked(offered, loads):
            args += [offer.key, offer.slots]
        key = await self._claim(keys=[self._line_key], args=args)
        return key.decode() if key else None

    async def wait_turn(
        self,
        job_id: str,
        on_position: PositionCallback,
        offers: OfferSource | None = None,
    ) -> str:
        await self._touch(job_id)
        if job_id not in self._tickets:
            self._tickets[job_id] = await self._redis.incr(self._ticket_key)
        ticket = self._tickets[job_id]
        await self._redis.zadd(self._line_key, {job_id: ticket})
        try:
            last, touched = None, time.monotonic()
            while True:
                line = await self._line()
                if job_id not in line:  # pruned while we were stalled: back in line
                    await self._touch(job_id)
                    await self._redis.zadd(self._line_key, {job_id: ticket})
                    continue
                position = line.index(job_id) + 1
                if last in (None, position):  # told where it stands before it goes
                    key = await self._take(job_id, await self._offers(offers))
                    if key is not None:
                        self._held[job_id] = key
                        start_trace.mark("queue_turn")
                        return key
                if position != last:
                    last = position
                    await on_position(position)
                    continue
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

    async def give_back(self, job_id: str) -> None:
        key = self._held.pop(job_id, None)
        if key is not None:
            await self._redis.srem(self._slots_key(key), job_id)

    async def release(self, job_id: str) -> None:
        await self.give_back(job_id)
        self._tickets.pop(job_id, None)
        await self._redis.zrem(self._line_key, job_id)
        await self._redis.delete(self._alive_key(job_id))

    async def _backend_keys(self) -> list[str]:
        return sorted(
            m.decode() for m in await self._redis.smembers(self._backends_key)
        )

    async def forget(self, message_id: int) -> None:
        """Drop the line entries and slots of a reply's dead jobs (another job
        continues the reply)."""
        prefix = f"{message_id}-"
        line = [m.decode() for m in await self._redis.zrange(self._line_key, 0, -1)]
        dead = [m for m in line if m.startswith(prefix)]
        if dead:
            await self._redis.zrem(self._line_key, *dead)
        for backend_key in await self._backend_keys():
            key = self._slots_key(backend_key)
            held = [m.decode() for m in await self._redis.smembers(key)]
            if dead := [m for m in held if m.startswith(prefix)]:
                await self._redis.srem(key, *dead)

    async def positions(self) -> list[str]:
        """The jobs holding a slot (any process), then those waiting, in order."""
        holders = [
            job_id
            for backend_key in await self._backend_keys()
            for job_id in await self._holders(backend_key)
        ]
        return [*holders, *await self._line()]

    async def others_waiting(self) -> bool:
        """Whether some job, of any process, waits for a turn."""
        return bool(await self._line())

    async def loads(self) -> tuple[Counter, int]:
        """The slots in use of each backend key (every process), and how many wait."""
        keys = await self._backend_keys()
        busy = Counter({key: len(await self._holders(key)) for key in keys})
        return busy, len(await self._line())
