"""Which backends are down: a backend that did not answer is skipped until it answers
again, probed at most once a second by one process (the others share the answer).
Known per process, or in Redis for every process when REDIS_URL is set; keyed by URL."""

import asyncio
import logging
import time
import weakref

from django.conf import settings

from agents.backend_probe import probe_koboldcpp
from agents.errors import BackendUnreachable, LLMError
from agents.llm_service import LLMService

log = logging.getLogger(__name__)

PROBE_INTERVAL_SECONDS = 1.0
PROBE_TIMEOUT_SECONDS = 2.0
READ_AGAIN_SECONDS = 1.0  # a process reads Redis's marks at most this often
PREFIX = "koboldchat:backend"


class _LocalBoard:
    """What this process knows: when each URL was found down, when it was probed."""

    def __init__(self):
        self.down: dict[str, float] = {}
        self.probed: dict[str, float] = {}

    async def is_marked(self, url: str) -> bool:
        return url in self.down

    async def marked(self, urls: list[str]) -> list[bool]:
        return [url in self.down for url in urls]

    async def mark(self, url: str) -> bool:
        """Mark `url` down; whether it was up until now."""
        was_up = url not in self.down
        self.down[url] = self.probed[url] = time.monotonic()
        return was_up

    async def clear(self, url: str) -> bool:
        """Mark `url` up; whether it was down until now."""
        return self.down.pop(url, None) is not None

    async def claim_probe(self, url: str) -> bool:
        now = time.monotonic()
        if now - self.probed.get(url, 0.0) < PROBE_INTERVAL_SECONDS:
            return False
        self.probed[url] = now
        return True


class _RedisBoard(_LocalBoard):
    """The same in Redis: one mark per URL for every process, and one probe a second
    among them all (SET NX with a one-second expiry)."""

    def __init__(self, url: str):
        import redis.asyncio as redis

        from koboldchat.redis_retry import redis_connection_options

        super().__init__()
        self._redis = redis.from_url(url, **redis_connection_options())
        self._read: dict[str, tuple[float, bool]] = {}  # url -> (when read, marked)

    async def is_marked(self, url: str) -> bool:
        return (await self.marked([url]))[0]

    async def marked(self, urls: list[str]) -> list[bool]:
        """Several at once: one MGET for those not read in the last READ_AGAIN_SECONDS."""
        now = time.monotonic()
        stale = [
            u
            for u in urls
            if now - self._read.get(u, (-1e9, False))[0] > READ_AGAIN_SECONDS
        ]
        if stale:
            flags = await self._redis.mget([f"{PREFIX}-down:{u}" for u in stale])
            for url, flag in zip(stale, flags, strict=True):
                self._read[url] = (now, flag is not None)
        return [self._read[url][1] for url in urls]

    async def mark(self, url: str) -> bool:
        self._read[url] = (time.monotonic(), True)
        await self._redis.set(
            f"{PREFIX}-probe:{url}", "1", px=int(PROBE_INTERVAL_SECONDS * 1000)
        )
        return bool(await self._redis.set(f"{PREFIX}-down:{url}", "1", nx=True))

    async def clear(self, url: str) -> bool:
        """(Each reply that ends well clears its backend: a round trip only when the
        mark was seen.)"""
        if not await self.is_marked(url):
            return False
        self._read[url] = (time.monotonic(), False)
        return bool(await self._redis.delete(f"{PREFIX}-down:{url}"))

    async def claim_probe(self, url: str) -> bool:
        key = f"{PREFIX}-probe:{url}"
        interval = int(PROBE_INTERVAL_SECONDS * 1000)
        return bool(await self._redis.set(key, "1", nx=True, px=interval))


_boards: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LocalBoard]" = (
    weakref.WeakKeyDictionary()
)


def _board() -> _LocalBoard:
    """The board of the running event loop (Redis clients are per loop)."""
    loop = asyncio.get_running_loop()
    board = _boards.get(loop)
    if board is None:
        redis_url = settings.REDIS_URL
        board = _boards[loop] = _RedisBoard(redis_url) if redis_url else _LocalBoard()
    return board


async def mark_down(url: str, reason: str) -> None:
    if await _board().mark(url):
        log.warning("backend %s is down (%s): skipped until it answers", url, reason)


async def mark_up(url: str) -> None:
    if await _board().clear(url):
        log.info("backend %s answers again", url)


async def known_down(url: str) -> bool:
    """Down at the last look, without looking again."""
    return await _board().is_marked(url)


async def down_flags(services: list[LLMService]) -> list[bool]:
    """is_down of each, with one look at the marks for all (most are up)."""
    marked = await _board().marked([service.base_url for service in services])
    return [
        await is_down(service) if flag else False
        for service, flag in zip(services, marked, strict=True)
    ]


async def is_down(service: LLMService) -> bool:
    """Whether the backend is down: the last answer while it is fresh, else one probe
    by whichever caller of any process claims it (the others keep the last answer)."""
    url, board = service.base_url, _board()
    if not await board.is_marked(url):
        return False
    if not await board.claim_probe(url):
        return True
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
            await probe_koboldcpp(service.backend)
    except (BackendUnreachable, TimeoutError):
        return True
    except LLMError as exc:  # it answers, if not well: it is up
        log.info("backend %s answers the probe with %s", url, exc.code)
    await mark_up(url)
    return False


def forget_health() -> None:
    """Forget what is known (tests start servers on ports used before)."""
    _boards.clear()
    if settings.REDIS_URL:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL)
        try:
            keys = list(client.scan_iter(f"{PREFIX}-*"))
            if keys:
                client.delete(*keys)
        except redis.RedisError:
            log.warning("could not forget the backends' health in Redis", exc_info=True)
        finally:
            client.close()
