"""The queue's slots per backend, in-process and in Redis: the head takes a free slot,
preferring the conversation's backend, then the least loaded; a dead process's slot
comes back."""

import asyncio
import uuid

import pytest

from chat.pool.choice import Offer
from chat.replies.queue import LocalBackendQueue
from chat.replies.redis_queue import RedisBackendQueue
from tests.chat.test_backend_queue import REDIS_URL, _redis_up


@pytest.fixture(params=["local", "redis"])
def queue(request):
    if request.param == "local":
        return LocalBackendQueue()
    if not _redis_up():
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    return RedisBackendQueue(REDIS_URL, 1, f"test-{uuid.uuid4().hex}")


def offering(*offers: Offer):
    async def offers_now():
        return offers

    return offers_now


async def ignore(position):
    pass


async def test_two_backends_serve_two_at_once_and_the_third_waits(queue):
    offers = offering(Offer("a", 1), Offer("b", 1))
    assert await queue.wait_turn("j1", ignore, offers) == "a"
    assert await queue.wait_turn("j2", ignore, offers) == "b"
    positions = []

    async def heard(position):
        positions.append(position)

    third = asyncio.create_task(queue.wait_turn("j3", heard, offers))
    async with asyncio.timeout(5):
        while not positions:
            await asyncio.sleep(0.01)
    assert positions == [1] and not third.done()
    await queue.release("j2")
    assert await asyncio.wait_for(third, 5) == "b"


async def test_waiters_entering_together_take_every_free_slot_at_once(queue):
    """Four enter the line at the same moment, with three free slots: three go without
    being told a position (none waits), the last in line waits, at last at position 1."""
    offers = offering(Offer("a", 2), Offer("b", 1))
    heard: dict[str, list[int]] = {f"j{i}": [] for i in range(4)}

    def telling(job_id):
        async def tell(position):
            heard[job_id].append(position)

        return tell

    waits = {
        job_id: asyncio.create_task(queue.wait_turn(job_id, telling(job_id), offers))
        for job_id in heard
    }

    def waiting():
        return [job_id for job_id, w in waits.items() if not w.done()]

    async with asyncio.timeout(5):
        while len(waiting()) > 1 or heard[waiting()[0]][-1:] != [1]:
            await asyncio.sleep(0.01)
    (last,) = waiting()
    went = [job_id for job_id in waits if job_id != last]
    assert sorted(waits[job_id].result() for job_id in went) == ["a", "a", "b"]
    assert [heard[job_id] for job_id in went] == [[], [], []]
    await queue.release(went[0])
    assert await asyncio.wait_for(waits[last], 5) in ("a", "b")


async def test_the_preferred_backend_wins_when_free_and_down_ones_are_skipped(queue):
    both = (Offer("a", 1), Offer("b", 1, preferred=True))
    assert await queue.wait_turn("j1", ignore, offering(*both)) == "b"
    await queue.release("j1")
    skip = (Offer("a", 1, preferred=True, down=True), Offer("b", 1))
    assert await queue.wait_turn("j2", ignore, offering(*skip)) == "b"
    await queue.release("j2")
    alone = (Offer("a", 1, down=True),)  # all down: tried anyway (it may be back)
    assert await queue.wait_turn("j3", ignore, offering(*alone)) == "a"


async def test_least_loaded_of_several_slots(queue):
    offers = offering(Offer("a", 2), Offer("b", 2))
    got = [await queue.wait_turn(f"j{i}", ignore, offers) for i in range(4)]
    assert sorted(got) == ["a", "a", "b", "b"] and got[:2] == ["a", "b"]


async def test_a_job_given_back_keeps_its_place():
    """A job that fails over waits again ahead of those that came after it."""
    queue, offers = LocalBackendQueue(), offering(Offer("a", 1))
    assert await queue.wait_turn("j1", ignore, offers) == "a"
    later = asyncio.create_task(queue.wait_turn("j2", ignore, offers))
    async with asyncio.timeout(5):
        while "j2" not in await queue.positions():
            await asyncio.sleep(0.01)
    await queue.give_back("j1")
    assert await queue.wait_turn("j1", ignore, offers) == "a"
    assert not later.done()
    await queue.release("j1")
    assert await asyncio.wait_for(later, 5) == "a"


async def test_redis_slot_of_a_dead_process_comes_back():
    """A holder whose alive key expired (its process died) frees the slot."""
    if not _redis_up():
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    queue = RedisBackendQueue(REDIS_URL, 1, f"test-{uuid.uuid4().hex}")
    await queue._redis.sadd(queue._slots_key("a"), "ghost")  # no alive key: dead
    got = await asyncio.wait_for(
        queue.wait_turn("live", ignore, offering(Offer("a", 1))), 2
    )
    assert got == "a"
    assert await queue.positions() == [] or await queue.positions() == ["live"]
