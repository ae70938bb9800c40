"""Soak: many sockets chatting at once through one Daphne process against the fake, for
SOAK_SECONDS (default 60): no frame lost or repeated, every reply stored, nothing leaks."""

import asyncio
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import websockets

from kobold_fake.server import FakeKobold, Script
from tests.chat.conftest import streamed_text
from tests.reliability.conftest import (
    connect,
    daphne_env,
    db_rows,
    frames_until,
    is_end,
    make_users,
    unique_names,
)

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "60"))
SOCKETS = int(os.environ.get("SOAK_SOCKETS", "200"))
SCRIPT = Script(tokens=[f"t{i} " for i in range(12)], delay=0.02)
REPLY = "".join(SCRIPT.tokens)
FD_SLACK = 10
RAMP_SECONDS = min(10.0, SOAK_SECONDS / 4)

pytestmark = [pytest.mark.soak, pytest.mark.multiprocess]


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def chat(ws_url: str, key: str, deadline: float, ramp: float = 0.0):
    """Talk (at least once) until the deadline; every reply is checked as a client
    would, frame by frame. Returns message id -> text."""
    replies: dict[int, str] = {}
    await asyncio.sleep(random.uniform(0, ramp))  # people arrive over a few seconds
    async with await connect_like_the_page(ws_url, key) as sock:
        while not replies or time.monotonic() < deadline:
            await sock.send(f"message number {len(replies)}")
            frames = await frames_until(sock, is_end, timeout=60)
            end = frames[-1]
            assert [f for f in frames if f["type"] == "error"] == []
            assert end["status"] == "complete", end
            assert streamed_text(frames, end["message_id"]) == end["content"] == REPLY
            replies[end["message_id"]] = end["content"]
            await asyncio.sleep(random.uniform(0.1, 0.5))  # a person reads the reply
    return replies


REFUSED: list[str] = []  # handshakes dropped under load (Daphne's 5 s connect limit)


async def connect_like_the_page(ws_url: str, key: str, attempts: int = 3):
    """The page reconnects after a refused handshake; so does this client."""
    for attempt in range(attempts):
        try:
            return await connect(ws_url, key)
        except (websockets.InvalidMessage, websockets.InvalidStatus, OSError) as exc:
            REFUSED.append(repr(exc))
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(1 + random.random())


@pytest.fixture
def soak_fake():
    server = FakeKobold(slots=SOCKETS, multiuser=SOCKETS)
    server.default_script = SCRIPT
    server.start()
    yield server
    server.stop()


async def test_many_sockets_chatting_lose_nothing_and_leak_nothing(
    soak_fake, sqlite_url, daphnes
):
    """SOAK_SOCKETS (200) users chat at once for SOAK_SECONDS: offsets contiguous, no
    error, every reply stored as streamed; upstream connections and the process's file
    descriptors come back to their level before the run."""
    env = daphne_env(sqlite_url, soak_fake, BACKEND_CONCURRENCY=str(SOCKETS))
    with ThreadPoolExecutor(1) as pool:
        users = pool.submit(make_users, env, unique_names(SOCKETS))
        server = daphnes(env)
        keys = list(users.result().values())
    warm_up = await chat(server.ws_url, keys[0], time.monotonic())
    await soak_fake.await_until(lambda: soak_fake.open_connections == 0)
    fds_before = open_fds(server.process.pid)

    deadline = time.monotonic() + SOAK_SECONDS
    runs = await asyncio.gather(
        *(chat(server.ws_url, key, deadline, RAMP_SECONDS) for key in keys)
    )

    print(f"{sum(map(len, runs))} replies; {len(REFUSED)} handshakes retried")
    seen = dict(warm_up)
    for replies in runs:
        seen.update(replies)
    assert await soak_fake.await_until(lambda: soak_fake.open_connections == 0, 10)
    for _ in range(50):  # Daphne closes finished sockets asynchronously
        if open_fds(server.process.pid) <= fds_before + FD_SLACK:
            break
        await asyncio.sleep(0.1)
    assert open_fds(server.process.pid) <= fds_before + FD_SLACK
    stored = db_rows(
        sqlite_url, "SELECT id, status, content FROM chat_message WHERE role = %s",
        ("assistant",),
    )  # fmt: skip
    assert {row[0]: row[2] for row in stored} == seen
    assert {row[1] for row in stored} == {"complete"}
