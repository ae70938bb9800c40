"""The fair line in front of KoboldCpp, in-process and in Redis."""

import asyncio
import uuid

import pytest

from chat.replies.queue import LocalBackendQueue
from chat.replies.redis_queue import RedisBackendQueue

REDIS_URL = "redis://127.0.0.1:6379/15"


def _redis_up() -> bool:
    import redis

    try:
        return redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        return False


@pytest.fixture(params=["local", "redis"])
def make_queue(request):
    if request.param == "redis" and not _redis_up():
        pytest.skip("Redis is not running on 127.0.0.1:6379")

    def make(concurrency=1):
        if request.param == "local":
            return LocalBackendQueue(concurrency)
        return RedisBackendQueue(REDIS_URL, concurrency, f"test-{uuid.uuid4().hex}")

    return make


async def joined(queue, job_id: str, *, timeout: float = 5.0) -> None:
    """Wait (polling, with a deadline) until `job_id` stands in the line."""
    async with asyncio.timeout(timeout):
        while job_id not in await queue.positions():
            await asyncio.sleep(0.005)


async def _serve(queue, job_id, log, positions, hold=0.05):
    async def on_position(position):
        positions.setdefault(job_id, []).append(position)

    await queue.wait_turn(job_id, on_position)
    log.append(("start", job_id))
    await asyncio.sleep(hold)
    log.append(("end", job_id))
    await queue.release(job_id)


async def test_jobs_run_one_at_a_time_first_come_first_served(make_queue):
    """With concurrency 1, jobs never overlap and start in arrival order; each waiting
    job hears its position and each change of it."""
    queue, log, positions = make_queue(), [], {}
    tasks = []
    for name in ("a", "b", "c", "d"):
        tasks.append(asyncio.create_task(_serve(queue, name, log, positions)))
        await joined(queue, name)
    await asyncio.gather(*tasks)
    assert log == [(kind, n) for n in "abcd" for kind in ("start", "end")]
    assert positions == {"b": [1], "c": [2, 1], "d": [3, 2, 1]}


async def test_concurrency_setting_lets_several_run(make_queue):
    queue, log, positions = make_queue(concurrency=2), [], {}
    tasks = []
    for name in "abc":  # one after the other: the line is ordered by arrival
        tasks.append(asyncio.create_task(_serve(queue, name, log, positions, hold=0.2)))
        await joined(queue, name)
    await asyncio.gather(*tasks)
    assert [e for e in log[:2]] == [("start", "a"), ("start", "b")]
    assert positions == {"c": [1]}


async def test_cancelled_waiter_leaves_the_line(make_queue):
    """A reply stopped while queued gives its place up at once."""
    queue, log, positions = make_queue(), [], {}
    first = asyncio.create_task(_serve(queue, "a", log, positions, hold=0.2))
    await joined(queue, "a")
    waiting = asyncio.create_task(_serve(queue, "b", log, positions))
    await joined(queue, "b")
    third = asyncio.create_task(_serve(queue, "c", log, positions))
    await joined(queue, "c")
    waiting.cancel()
    await asyncio.gather(first, third)
    assert ("start", "b") not in log
    assert positions["c"][-1] == 1
    assert await queue.positions() == []


async def test_redis_line_skips_entries_of_a_dead_process():
    """An entry whose process died (its alive key expired) does not jam the line."""
    if not _redis_up():
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    queue = RedisBackendQueue(REDIS_URL, 1, f"test-{uuid.uuid4().hex}")
    await queue._redis.zadd(queue._line_key, {"ghost": 0})  # no alive key: dead
    done = []

    async def noop(position):
        done.append(position)

    await asyncio.wait_for(queue.wait_turn("live", noop), 2)
    await queue.release("live")
    assert await queue.positions() == []


async def test_others_waiting_tells_whether_anyone_waits_for_a_turn(make_queue):
    """A running job alone: nobody waits; a second one in line: someone does."""
    queue = make_queue()

    async def ignore(position):
        pass

    await queue.wait_turn("a", ignore)
    assert not await queue.others_waiting()
    waiting = asyncio.create_task(queue.wait_turn("b", ignore))
    await joined(queue, "b")
    assert await queue.others_waiting()
    await queue.release("a")
    await waiting
    assert not await queue.others_waiting()
    await queue.release("b")
