"""What survives a crash of Redis: restarted mid-reply, or while a socket is open (the
server process killed mid-reply: test_handover)."""

import asyncio
import json
import subprocess
import time

import pytest
import redis
import websockets

from tests.chat.conftest import streamed_text
from tests.live_daphne import free_port
from tests.reliability.conftest import (
    connect,
    daphne_env,
    frames_until,
    is_end,
    make_users,
    reply_row,
    slow_script,
    tokens_seen,
    unique_names,
)

pytestmark = pytest.mark.multiprocess
LONG = slow_script(100, 0.05)
FULL_TEXT = "".join(LONG.tokens)


class PrivateRedis:
    """A redis-server of the test's own, on a free port, that the test may restart."""

    def __init__(self, workdir):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = workdir
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return client.close()
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


@pytest.fixture
def private_redis(tmp_path):
    server = PrivateRedis(tmp_path)
    try:
        server.start()
    except FileNotFoundError:
        pytest.skip("redis-server is not installed")
    yield server
    server.stop()


async def _conversation_of(sock) -> tuple[int, int, list[dict]]:
    frames = await frames_until(sock, tokens_seen(20))
    announce = next(f for f in frames if f["type"] == "user_message")
    return announce["conversation_id"], announce["message_id"], frames


def _reply_settled(frame: dict) -> bool:
    """`end`, or a snapshot of a reply that finished while the client was away."""
    return is_end(frame) or (
        frame["type"] == "snapshot" and frame["status"] not in ("queued", "streaming")
    )


async def resume_after_drop(
    ws_url: str, key: str, conversation_id: int, attempts: int = 5
) -> list[dict]:
    """Reconnect like the page does after a drop (retrying refused or stuck handshakes),
    ask to resume the conversation, and read the reply until it has settled."""
    for attempt in range(attempts):
        try:
            async with connect(ws_url, key) as sock:
                await sock.send(
                    json.dumps({"type": "resume", "conversation_id": conversation_id})
                )
                return await frames_until(sock, _reply_settled, timeout=10)
        except (websockets.WebSocketException, OSError, TimeoutError) as exc:
            failure = exc
            await asyncio.sleep(0.2 * 2**attempt)
    raise ConnectionError(f"{attempts} reconnections failed, the last with {failure!r}")


async def test_redis_restart_mid_reply_loses_nothing(
    fake, sqlite_url, daphnes, private_redis
):
    """Redis (channel layer and backend queue) restarted mid-reply: the job finishes and
    stores the whole reply; a client that reconnects resumes with every character once."""
    fake.push(LONG)
    env = daphne_env(sqlite_url, fake, redis_url=private_redis.url)
    server = daphnes(env)
    (key,) = make_users(env, unique_names(1)).values()
    async with connect(server.ws_url, key) as sock:
        await sock.send("tell me a long story")
        conversation_id, message_id, _ = await _conversation_of(sock)
        private_redis.stop()
        private_redis.start()
    frames = await resume_after_drop(server.ws_url, key, conversation_id)
    deadline = time.monotonic() + 15
    while (stored := reply_row(sqlite_url, message_id))["status"] == "streaming":
        assert time.monotonic() < deadline, "the reply never finished"
        await asyncio.sleep(0.2)
    assert stored["status"] == "complete" and stored["content"] == FULL_TEXT
    assert frames[0]["type"] == "snapshot" and frames[0]["message_id"] == message_id
    assert streamed_text(frames, message_id) == FULL_TEXT


async def test_socket_open_across_a_redis_restart_keeps_working(
    fake, sqlite_url, daphnes, private_redis
):
    """Redis restarted while a socket is open (not mid-reply): the socket stays usable and
    the next reply streams whole through the reconnected channel layer."""
    env = daphne_env(sqlite_url, fake, redis_url=private_redis.url)
    server = daphnes(env)
    (key,) = make_users(env, unique_names(1)).values()
    async with connect(server.ws_url, key) as sock:
        await sock.send("hello")
        await frames_until(sock, is_end, timeout=10)
        private_redis.stop()
        private_redis.start()
        await asyncio.sleep(2)
        fake.push(slow_script(20, 0.01))
        await sock.send("again")
        frames = await frames_until(sock, is_end, timeout=15)
    end = frames[-1]
    assert end["status"] == "complete"
    assert streamed_text(frames, end["message_id"]) == end["content"]
