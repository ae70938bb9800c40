"""At most CHAT_MAX_SOCKETS_PER_USER open sockets per user (0: no limit); one more is
accepted and closed at once with code 4429. Counted in this process, or in Redis across
every process when REDIS_URL is set."""

import asyncio
import logging
import time
import weakref

from django.conf import settings

log = logging.getLogger(__name__)

CLOSE_CODE = 4429


class LocalSocketSlots:
    def __init__(self):
        self._held: dict[int, set[str]] = {}

    async def acquire(self, user_id: int, channel: str, limit: int) -> bool:
        held = self._held.setdefault(user_id, set())
        if len(held) >= limit:
            return False
        held.add(channel)
        return True

    async def release(self, user_id: int, channel: str) -> None:
        held = self._held.get(user_id, set())
        held.discard(channel)
        if not held:
            self._held.pop(user_id, None)


# Drop entries past their expiry, then add this socket if the user has a free slot.
_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


class RedisSocketSlots:
    """A sorted set per user: its sockets, each scored with the time it stops counting.
    Every process pushes that time forward for its own sockets; the sockets of a
    process that died stop counting after TTL_SECONDS."""

    TTL_SECONDS = 90
    REFRESH_SECONDS = 30

    def __init__(self, url: str):
        import redis.asyncio as redis

        from koboldchat.redis_retry import redis_connection_options

        self._redis = redis.from_url(url, **redis_connection_options())
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._mine: dict[str, str] = {}  # channel name -> its user's key
        self._refresher: asyncio.Task | None = None

    @staticmethod
    def _key(user_id: int) -> str:
        return f"koboldchat:sockets:{user_id}"

    async def acquire(self, user_id: int, channel: str, limit: int) -> bool:
        now = time.time()
        key = self._key(user_id)
        args = [now, limit, now + self.TTL_SECONDS, channel, self.TTL_SECONDS * 2]
        if not await self._acquire(keys=[key], args=args):
            return False
        self._mine[channel] = key
        if self._refresher is None or self._refresher.done():
            self._refresher = asyncio.create_task(self._refresh_forever())
        return True

    async def release(self, user_id: int, channel: str) -> None:
        if self._mine.pop(channel, None) is not None:
            await self._redis.zrem(self._key(user_id), channel)

    async def _refresh_forever(self) -> None:
        while self._mine:
            await asyncio.sleep(self.REFRESH_SECONDS)
            expiry = time.time() + self.TTL_SECONDS
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for channel, key in list(self._mine.items()):
                        pipe.zadd(key, {channel: expiry}, xx=True)
                        pipe.expire(key, self.TTL_SECONDS * 2)
                    await pipe.execute()
            except Exception:  # Redis away for a while: the next round tries again
                log.exception("could not refresh the socket counts in Redis")


_slots: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, object]" = (
    weakref.WeakKeyDictionary()
)


def get_socket_slots():
    """The counter for the running event loop (Redis clients are per loop)."""
    loop = asyncio.get_running_loop()
    slots = _slots.get(loop)
    if slots is None:
        url = settings.REDIS_URL
        slots = RedisSocketSlots(url) if url else LocalSocketSlots()
        _slots[loop] = slots
    return slots


async def socket_slot_acquire(user_id: int, channel: str) -> bool:
    limit = settings.CHAT_MAX_SOCKETS_PER_USER
    if limit <= 0:
        return True
    return await get_socket_slots().acquire(user_id, channel, limit)


async def socket_slot_release(user_id: int, channel: str) -> None:
    await get_socket_slots().release(user_id, channel)
