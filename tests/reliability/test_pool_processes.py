"""A pool shared by two Daphne processes on PostgreSQL + Redis: the slots of each
backend are counted across both (never two replies at once on a one-slot backend),
every reply is written once, and both backends are used. A stack of the module's own
(its rows name these backends only)."""

import asyncio
import contextlib

import pytest

from kobold_fake.server import FakeKobold
from tests.reliability.conftest import (
    connect,
    daphne_env,
    frames_until,
    is_end,
    make_users,
    slow_script,
    unique_names,
)

pytestmark = pytest.mark.multiprocess


@pytest.fixture
def backends():
    """Two fakes that could write two replies at once: rows of one slot each
    (BACKEND_CONCURRENCY=1) must never let them."""
    fakes = [FakeKobold(slots=2), FakeKobold(slots=2)]
    for fake in fakes:
        fake.default_script = slow_script(10, 0.05)
        fake.start()
    yield fakes
    for fake in fakes:
        fake.stop()


async def test_slots_of_a_pool_are_counted_across_processes(stack, backends, daphnes):
    """Six users, three on each process, all at once, on two backends of one slot:
    at most one reply at a time on each, two at a time in all, six written once."""
    database_url, redis_url = stack
    first, second = backends
    env = daphne_env(
        database_url, first, redis_url=redis_url, KOBOLDCPP_URLS=second.url,
        BACKEND_CONCURRENCY="1",
    )  # fmt: skip
    keys = list(make_users(env, unique_names(6)).values())
    a, b = daphnes(env), daphnes(env)
    async with contextlib.AsyncExitStack() as opened:
        sockets = [
            await opened.enter_async_context(connect((a if i % 2 else b).ws_url, key))
            for i, key in enumerate(keys)
        ]
        for i, sock in enumerate(sockets):
            await sock.send(f"question {i}")
        ends = await asyncio.gather(
            *(frames_until(sock, is_end, timeout=30) for sock in sockets)
        )
    assert [frames[-1]["status"] for frames in ends] == ["complete"] * 6
    assert first.max_concurrent_generations == second.max_concurrent_generations == 1
    assert len(first.generations) + len(second.generations) == 6
    assert first.generations and second.generations
    genkeys = [g["genkey"] for g in first.generations + second.generations]
    assert len(set(genkeys)) == 6
