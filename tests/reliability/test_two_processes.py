"""Two Daphne processes sharing PostgreSQL and Redis: a reply belongs to the job of one
process, and every other process watches, stops and resumes it through the channel layer."""

import json
import time

import pytest

from tests.chat.conftest import streamed_text
from tests.reliability.conftest import (
    connect,
    frames_until,
    is_end,
    reply_row,
    slow_script,
    tokens_seen,
)

pytestmark = pytest.mark.multiprocess


def _of_type(frames: list[dict], kind: str) -> list[dict]:
    return [f for f in frames if f["type"] == kind]


async def test_reply_started_on_a_is_watched_live_from_b(cluster):
    """The same user's socket on process B gets every frame of a reply that runs in
    process A, token by token, and reassembles exactly the stored text."""
    (key,) = cluster.users(1)
    async with (
        connect(cluster.a.ws_url, key) as on_a,
        connect(cluster.b.ws_url, key) as on_b,
    ):
        await on_a.send("tell me something")
        on_b_frames = await frames_until(on_b, is_end)
        await frames_until(on_a, is_end)
    end = on_b_frames[-1]
    stored = reply_row(cluster.database_url, end["message_id"])
    assert on_b_frames[0]["type"] == "user_message"
    assert len(_of_type(on_b_frames, "token")) > 1
    assert stored["status"] == end["status"] == "complete"
    assert streamed_text(on_b_frames, end["message_id"]) == end["content"]
    assert (
        end["content"]
        == stored["content"]
        == "".join(cluster.fake.default_script.tokens)
    )


async def test_stop_sent_to_b_stops_the_job_running_in_a(cluster):
    """`stop` on process B reaches the job in A: `end` stopped within a second, KoboldCpp
    aborted with the reply's genkey, the partial text kept."""
    cluster.fake.push(slow_script(200, 0.05))
    (key,) = cluster.users(1)
    async with (
        connect(cluster.a.ws_url, key) as on_a,
        connect(cluster.b.ws_url, key) as on_b,
    ):
        await on_a.send("a long answer please")
        before = await frames_until(on_b, tokens_seen(3))
        message_id = before[-1]["message_id"]
        asked = time.monotonic()
        await on_b.send(json.dumps({"type": "stop", "message_id": message_id}))
        after = await frames_until(on_b, is_end, timeout=5)
        took = time.monotonic() - asked
    stored = reply_row(cluster.database_url, message_id)
    assert after[-1]["status"] == stored["status"] == "stopped"
    assert took < 1.5
    assert await cluster.fake.await_until(
        lambda: stored["genkey"] in cluster.fake.aborts
    )
    assert 0 < len(stored["content"]) < len("".join(slow_script(200).tokens))
    assert streamed_text(before + after, message_id) == stored["content"]


async def test_client_moving_from_a_to_b_mid_reply_resumes_without_gap(cluster):
    """A client that leaves A mid-reply and connects to B gets a snapshot from the job
    in A, then the live tokens after it: every character once, equal to what is stored."""
    cluster.fake.push(slow_script(60, 0.05))
    (key,) = cluster.users(1)
    async with connect(cluster.a.ws_url, key) as on_a:
        await on_a.send("hello")
        first = await frames_until(on_a, tokens_seen(5))
    message_id = first[-1]["message_id"]
    async with connect(cluster.b.ws_url, key) as on_b:
        second = await frames_until(on_b, is_end)
    snapshot, end = second[0], second[-1]
    stored = reply_row(cluster.database_url, message_id)
    assert snapshot["type"] == "snapshot" and snapshot["status"] == "streaming"
    assert snapshot["content"].startswith(streamed_text(first, message_id))
    assert _of_type(second, "token"), "the reply was over before the client moved"
    assert streamed_text(second, message_id) == end["content"] == stored["content"]
    assert stored["content"] == "".join(slow_script(60).tokens)


async def test_backend_queue_is_first_come_first_served_across_processes(cluster):
    """Three users on alternating processes: served one at a time in arrival order, the
    waiting ones told their place (1; then 2, 1)."""
    cluster.fake.max_concurrent_generations = 0
    keys = cluster.users(3)
    servers = [cluster.a, cluster.b, cluster.a]
    markers = [f"turn-{i}-{key[-6:]}" for i, key in enumerate(keys)]
    async with (
        connect(servers[0].ws_url, keys[0]) as first,
        connect(servers[1].ws_url, keys[1]) as second,
        connect(servers[2].ws_url, keys[2]) as third,
    ):
        sockets = [first, second, third]
        await first.send(markers[0])
        seen = [await frames_until(first, lambda f: f["type"] == "start")]
        for sock, marker in zip(sockets[1:], markers[1:], strict=True):
            await sock.send(marker)
            seen.append(await frames_until(sock, lambda f: f["type"] == "queued"))
        for i, sock in enumerate(sockets):
            seen[i] += await frames_until(sock, is_end, timeout=20)
    positions = [[f["position"] for f in _of_type(s, "queued")] for s in seen]
    assert positions == [[], [1], [2, 1]]
    assert [s[-1]["status"] for s in seen] == ["complete"] * 3
    prompts = [json.dumps(body) for body in cluster.fake.generations]
    order = [next(i for i, p in enumerate(prompts) if m in p) for m in markers]
    assert order == sorted(order)
    assert cluster.fake.max_concurrent_generations == 1
