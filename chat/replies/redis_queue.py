"""The backend queue in Redis, so that several Daphne processes share one line and one
count of each backend's slots."""

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Sequence

from agents import start_trace
from chat.pool.choice import Offer, usable
from chat.replies.queue import (
    RECHECK_SECONDS,
    BackendLine,
    OfferSource,
    PositionCallback,
)

log = logging.getLogger(__name__)

# One look of a waiter (ARGV[1], told ARGV[2]: its position when it was last told one,
# 0 if never), atomically: it is (again) alive for ARGV[4] seconds and in the line with
# its ticket ARGV[3] (0: a new one); its position among the live entries (entries and
# slot holders of dead processes, whose alive key expired, are pruned on the way); and,
# if there are as many free slots among the backends offered (ARGV triples from 5: key,
# slots, preferred) as waiters up to it and it has been told this position, the slot it
# takes (the conversation's backend, then the least loaded; ties in the order given),
# leaving the line and waking the other waiters. Returns {key or "", position, ticket}.
_LOOK = """
local line, me, told, ticket = KEYS[1], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local alive = line .. ':alive:'
redis.call('SET', alive .. me, '1', 'EX', ARGV[4])
if ticket == 0 then ticket = redis.call('INCR', line .. ':ticket') end
redis.call('ZADD', line, ticket, me)
local position = 0
for _, m in ipairs(redis.call('ZRANGE', line, 0, -1)) do
  if redis.call('EXISTS', alive .. m) == 1 then
    position = position + 1
    if m == me then break end
  else
    redis.call('ZREM', line, m)
  end
end
if told ~= 0 and told ~= position then return {'', position, ticket} end
local free, best, best_preferred, best_load = 0, nil, false, 0
for i = 5, #ARGV, 3 do
  local key, slots, preferred = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2] == '1'
  local holders = line .. ':slots:' .. key
  redis.call('SADD', line .. ':backends', key)
  local used = 0
  for _, h in ipairs(redis.call('SMEMBERS', holders)) do
    if redis.call('EXISTS', alive .. h) == 1 then used = used + 1
    else redis.call('SREM', holders, h) end
  end
  if used < slots then
    free = free + slots - used
    local load = used / math.max(1, slots)
    if best == nil or (preferred and not best_preferred)
        or (preferred == best_preferred and load < best_load) then
      best, best_preferred, best_load = key, preferred, load
    end
  end
end
if free < position then return {'', position, ticket} end
redis.call('SADD', line .. ':slots:' .. best, me)
redis.call('ZREM', line, me)
redis.call('PUBLISH', line .. ':changed', '1')
return {best, position, ticket}
"""


# Every change wakes every waiter, and a look costs as many steps as there are entries
# ahead: those beyond this position look (and learn their new place) once a second.
NEAR_POSITIONS = 10
_listeners: set[asyncio.Task] = set()  # every queue's, until each is done


async def listeners_stopped() -> None:
    """Wait until the listeners of this event loop's queues are gone, which happens
    within a second once nobody waits (tests, before their event loop closes)."""
    loop = asyncio.get_running_loop()
    mine = [t for t in _listeners if not t.done() and t.get_loop() is loop]
    if mine:
        await asyncio.wait(mine, timeout=2 * RECHECK_SECONDS)


class RedisBackendQueue(BackendLine):
    """The same line in a Redis sorted set ordered by ticket, shared by every process,
    and each backend's slot holders in a Redis set. A waiter looks again when a slot
    is freed or the line moves (a Redis channel wakes the waiters of every process),
    and at least once a second; each look is one script call.

    Each job keeps a short-lived "alive" key; the entries and slots of a dead process
    expire and are pruned by the next look, so neither line nor slots ever jam.
    """

    ALIVE_SECONDS = 15

    def __init__(self, url: str, concurrency: int, name: str):
        import redis.asyncio as redis

        from koboldchat.redis_retry import redis_connection_options

        super().__init__(concurrency)
        self._redis = redis.from_url(url, **redis_connection_options())
        self._line_key = f"koboldchat:queue:{name}"
        self._ticket_key = f"koboldchat:queue:{name}:ticket"
        self._backends_key = f"koboldchat:queue:{name}:backends"
        self._changed_key = f"koboldchat:queue:{name}:changed"
        self._look = self._redis.register_script(_LOOK)
        self._waiters = 0
        self._listener: asyncio.Task | None = None

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

    # -- waking up ---------------------------------------------------------------------

    async def _listen(self) -> None:
        """While someone of this process waits: wake them at each change anywhere (it
        ends at most a second after the last one stopped waiting)."""
        pubsub = self._redis.pubsub()
        try:
            await pubsub.subscribe(self._changed_key)
            self._notify()  # what changed before the subscription is looked at too
            while self._waiters:
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=RECHECK_SECONDS
                )
                if message is not None:
                    self._notify()
        except Exception:
            log.warning(
                "queue wake-ups lost: waiters look once a second", exc_info=True
            )
        finally:
            self._listener = None  # no await since the last check: no waiter missed
            await pubsub.aclose()

    def _waiting(self, delta: int) -> None:
        self._waiters += delta
        if self._waiters and self._listener is None:
            self._listener = asyncio.create_task(self._listen())
            _listeners.add(self._listener)
            self._listener.add_done_callback(_listeners.discard)

    async def _publish_change(self) -> None:
        await self._redis.publish(self._changed_key, "1")

    # -- the line ----------------------------------------------------------------------

    async def _look_once(
        self, job_id: str, told: int, offered: Sequence[Offer]
    ) -> tuple[str, int]:
        args: list = [job_id, told, self._tickets.get(job_id, 0), self.ALIVE_SECONDS]
        for offer in usable(offered):
            args += [offer.key, offer.slots, int(offer.preferred)]
        key, position, ticket = await self._look(keys=[self._line_key], args=args)
        self._tickets[job_id] = int(ticket)
        return key.decode(), int(position)

    async def wait_turn(
        self,
        job_id: str,
        on_position: PositionCallback,
        offers: OfferSource | None = None,
    ) -> str:
        """One script call when a slot is free; waiting, one per change or second."""
        listening = False
        try:
            told = 0
            while True:
                changed = self._changed
                looked = time.monotonic()
                key, position = await self._look_once(
                    job_id, told, await self._offers(offers)
                )
                if key:
                    self._held[job_id] = key
                    start_trace.mark("queue_turn")
                    return key
                if position != told:  # told where it stands before it goes
                    told = position
                    await on_position(position)
                    continue
                if not listening:  # its first look missed nothing: the listener's
                    self._waiting(+1)  # own first wake-up looks again
                    listening = True
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), RECHECK_SECONDS)
                if told > NEAR_POSITIONS:  # far back: a look a second is enough
                    await asyncio.sleep(looked + RECHECK_SECONDS - time.monotonic())
        except BaseException:
            await asyncio.shield(self.release(job_id))
            raise
        finally:
            if listening:
                self._waiting(-1)

    async def keep_alive(self, job_id: str) -> None:
        await self._touch(job_id)

    async def give_back(self, job_id: str) -> None:
        key = self._held.pop(job_id, None)
        if key is not None:
            await self._redis.srem(self._slots_key(key), job_id)
            await self._publish_change()

    async def release(self, job_id: str) -> None:
        await self.give_back(job_id)
        self._tickets.pop(job_id, None)
        if await self._redis.zrem(self._line_key, job_id):
            await self._publish_change()
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
