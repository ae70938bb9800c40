"""The fair backend queue: replies take turns, first come first served, and those at the
head of the line take the free slots of the pool's backends (chat.pool.choice says which).
In-process by default; in Redis (chat.replies.redis_queue) when REDIS_URL is set."""

import asyncio
import bisect
import contextlib
import itertools
import logging
import weakref
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence

from django.conf import settings

from agents import start_trace
from chat.pool.choice import Offer, first_free

log = logging.getLogger(__name__)

PositionCallback = Callable[[int], Awaitable[None]]
OfferSource = Callable[[], Awaitable[Sequence[Offer]]]
RECHECK_SECONDS = 1.0  # the head looks again this often (a backend may come back)


class BackendLine:
    """What both queues share: the backends offered, and each job's ticket (a job
    that fails over keeps its place)."""

    def __init__(self, concurrency: int):
        # Without a pool (offers None): one backend with this many slots.
        self.concurrency = max(1, concurrency)
        self._tickets: dict[str, int] = {}
        self._held: dict[str, str] = {}  # job id -> backend key, in this process
        self._changed = asyncio.Event()  # replaced at each change: waiters wake

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _offers(self, offers: OfferSource | None) -> Sequence[Offer]:
        if offers is None:
            return [Offer("default", self.concurrency)]
        return await offers()


class LocalBackendQueue(BackendLine):
    """One line per process, and the slots in use of each backend."""

    def __init__(self, concurrency: int = 1):
        super().__init__(concurrency)
        self._line: list[tuple[int, str]] = []  # (ticket, job id), waiting
        self._next_ticket = itertools.count()

    def _loads(self) -> Counter:
        return Counter(self._held.values())

    async def wait_turn(
        self,
        job_id: str,
        on_position: PositionCallback,
        offers: OfferSource | None = None,
    ) -> str:
        """The key of the backend `job_id` may generate on, once there are free slots
        for all up to it in the line; cancelling it leaves the line."""
        entry = (self._tickets.setdefault(job_id, next(self._next_ticket)), job_id)
        bisect.insort(self._line, entry)
        self._notify()
        try:
            last = None
            while True:
                changed = self._changed
                position = self._line.index(entry) + 1
                if last in (None, position):  # told where it stands before it goes
                    offered = await self._offers(offers)
                    offer = first_free(offered, self._loads(), position)
                    if offer is not None:
                        self._line.remove(entry)
                        self._held[job_id] = offer.key
                        self._notify()
                        start_trace.mark("queue_turn")
                        return offer.key
                if position != last:
                    last = position
                    await on_position(position)
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), RECHECK_SECONDS)
        except BaseException:
            await self.release(job_id)
            raise

    async def keep_alive(self, job_id: str) -> None:
        """Nothing to refresh: the line lives and dies with this process."""

    async def give_back(self, job_id: str) -> None:
        """Free the job's slot and keep its ticket: it waits again at its place."""
        if self._held.pop(job_id, None) is not None:
            self._notify()

    async def release(self, job_id: str) -> None:
        await self.give_back(job_id)
        ticket = self._tickets.pop(job_id, None)
        if (ticket, job_id) in self._line:
            self._line.remove((ticket, job_id))
            self._notify()

    async def forget(self, message_id: int) -> None:
        """Nothing: the line of a dead process died with it."""

    async def positions(self) -> list[str]:
        """The jobs holding a slot, then those waiting, in order."""
        return [*self._held, *(job_id for _, job_id in self._line)]

    async def others_waiting(self) -> bool:
        """Whether some job waits for a turn."""
        return bool(self._line)

    async def loads(self) -> tuple[Counter, int]:
        """The slots in use of each backend key, and how many wait."""
        return self._loads(), len(self._line)


_queues: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, object]" = (
    weakref.WeakKeyDictionary()
)


def get_backend_queue():
    """The queue for the running event loop (clients of Redis are per loop too)."""
    loop = asyncio.get_running_loop()
    queue = _queues.get(loop)
    if queue is None:
        if settings.REDIS_URL:
            from chat.replies.redis_queue import RedisBackendQueue

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
