"""A reply outlives the process writing it: killed (SIGKILL) → another process, or the
same one restarted, carries it on from its checkpoint; stopped (SIGTERM) → it finishes
within the drain time or is handed over; a rolling restart of both processes loses none.
Real Daphne processes on PostgreSQL + Redis of the module's own (no other test's process
may take its replies), one fake KoboldCpp."""

import asyncio
import json
import signal
import time

import pytest
import websockets

from kobold_fake.server import Script
from tests.chat.conftest import streamed_text
from tests.reliability.conftest import (
    connect,
    daphne_env,
    db_rows,
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
REST = Script(tokens=[f"r{i} " for i in range(10)], delay=0.02)
REST_TEXT = "".join(REST.tokens)
QUICK = {"CHAT_CHECKPOINT_SECONDS": "0.3", "CHAT_REAPER_INTERVAL_SECONDS": "0.5"}


def handovers(database_url: str, message_id: int) -> list[tuple]:
    return db_rows(
        database_url,
        "SELECT process, checkpoint_chars, outcome FROM chat_handover "
        "WHERE message_id = %s ORDER BY id",
        (message_id,),
    )


async def settled(database_url: str, message_id: int, timeout: float = 30) -> dict:
    """The reply's row once it is no longer pending."""
    deadline = time.monotonic() + timeout
    while (row := reply_row(database_url, message_id))["status"] in (
        "queued",
        "streaming",
    ):
        assert time.monotonic() < deadline, f"reply {message_id} never settled: {row}"
        await asyncio.sleep(0.2)
    return row


def sigterm(process, timeout: float = 30) -> float:
    """Stop a Daphne process politely; the seconds it took to exit."""
    started = time.monotonic()
    process.process.send_signal(signal.SIGTERM)
    process.process.wait(timeout)
    return time.monotonic() - started


def assert_carried_on(stored: dict, rows: list[tuple], rest: str = REST_TEXT) -> None:
    """One hand-over; the stored reply is its checkpoint (a prefix of the first
    generation) followed by the continuation, nothing repeated or lost."""
    ((_, chars, outcome),) = rows
    assert outcome == "continued" and stored["status"] == "complete", (stored, rows)
    content = stored["content"]
    assert chars > 0 and FULL_TEXT.startswith(content[:chars])
    assert content[chars:] == rest


async def _started_reply(sock, text="tell me a long story") -> tuple[int, int]:
    await sock.send(text)
    frames = await frames_until(sock, tokens_seen(20))
    announce = next(f for f in frames if f["type"] == "user_message")
    return announce["conversation_id"], announce["message_id"]


@pytest.mark.parametrize("auto_continue", ["on", "off"])
async def test_the_only_process_killed_and_restarted_carries_the_reply_on(
    fake, sqlite_url, daphnes, auto_continue
):
    """SIGKILL mid-reply, start again: the new process takes the reply over by itself
    (nobody connected yet), and a client that comes back reads it whole; with
    CHAT_AUTO_CONTINUE=off it is left interrupted with its checkpoint instead."""
    fake.push(LONG, REST)
    env = daphne_env(
        sqlite_url, fake, CHAT_HEARTBEAT_STALE_SECONDS="1",
        CHAT_AUTO_CONTINUE=auto_continue, **QUICK,
    )  # fmt: skip
    first = daphnes(env)
    (key,) = make_users(env, unique_names(1)).values()
    async with connect(first.ws_url, key) as sock:
        conversation_id, message_id = await _started_reply(sock)
        first.kill()
    daphnes(env, port=first.port)
    stored = await settled(sqlite_url, message_id)
    rows = handovers(sqlite_url, message_id)
    if auto_continue == "off":
        assert stored["status"] == "interrupted" and FULL_TEXT.startswith(
            stored["content"]
        )
        assert [row[2] for row in rows] == ["interrupted"]
        return
    assert_carried_on(stored, rows)
    async with connect(first.ws_url, key) as sock:
        await sock.send(
            json.dumps({"type": "resume", "conversation_id": conversation_id})
        )
        (snapshot,) = await frames_until(sock, lambda f: f["type"] == "snapshot")
    assert snapshot["content"] == stored["content"] and snapshot["status"] == "complete"


async def test_a_killed_process_reply_is_taken_by_exactly_one_survivor(
    fake, stack, daphnes
):
    """Three processes; the one writing a reply is killed. Both survivors race for it:
    one takes it, stops the dead generation, and a watcher on another process, which
    saw the text stream all along, holds exactly the stored reply after the rewind."""
    database_url, redis_url = stack
    fake.push(LONG, REST)
    env = daphne_env(
        database_url, fake, redis_url=redis_url, CHAT_HEARTBEAT_STALE_SECONDS="2",
        **QUICK,
    )  # fmt: skip
    writer, *survivors = [daphnes(env) for _ in range(3)]
    (key,) = make_users(env, unique_names(1)).values()
    async with connect(survivors[0].ws_url, key) as watcher:
        async with connect(writer.ws_url, key) as sock:
            _, message_id = await _started_reply(sock)
            writer.kill()
        frames = await frames_until(watcher, is_end, timeout=30)
    stored = await settled(database_url, message_id)
    rows = handovers(database_url, message_id)
    assert_carried_on(stored, rows)
    pids = {str(p.process.pid) for p in survivors}
    assert rows[0][0].rsplit(":", 1)[1] in pids
    assert fake.generations[0]["genkey"] in fake.aborts  # the dead generation
    assert any(f["type"] == "rewind" for f in frames)
    assert streamed_text(frames, message_id) == stored["content"]


async def test_sigterm_lets_a_reply_finish_within_the_drain_time(fake, stack, daphnes):
    database_url, redis_url = stack
    fake.push(slow_script(40, 0.05))
    env = daphne_env(database_url, fake, redis_url=redis_url, CHAT_DRAIN_SECONDS="20")
    server = daphnes(env)
    (key,) = make_users(env, unique_names(1)).values()
    async with connect(server.ws_url, key) as sock:
        _, message_id = await _started_reply(sock)
        took = await asyncio.to_thread(sigterm, server)
        frames = []
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                frames.append(json.loads(await sock.recv()))
    assert closed.value.rcvd.code == 4503  # the page comes back at once
    stored = reply_row(database_url, message_id)
    assert stored["status"] == "complete" and stored["content"] == "".join(
        f"w{i} " for i in range(40)
    )
    assert any(is_end(f) for f in frames) and handovers(database_url, message_id) == []
    assert took < 15


async def test_sigterm_hands_a_long_reply_over_to_the_other_process(
    fake, stack, daphnes
):
    """Drain time over: the stopping process hands the reply over and closes its socket
    with 4503; the other process carries it on at once; the client reconnects there and
    resumes with nothing missing."""
    database_url, redis_url = stack
    fake.push(LONG, REST)
    env = daphne_env(
        database_url, fake, redis_url=redis_url, CHAT_DRAIN_SECONDS="1",
        CHAT_HEARTBEAT_STALE_SECONDS="30",  # no expiry: only the hand-over moves it
        **QUICK,
    )  # fmt: skip
    stopping, other = daphnes(env), daphnes(env)
    (key,) = make_users(env, unique_names(1)).values()
    async with connect(stopping.ws_url, key) as sock:
        conversation_id, message_id = await _started_reply(sock)
        took = await asyncio.to_thread(sigterm, stopping)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                await sock.recv()
    assert closed.value.rcvd.code == 4503 and took < 10
    async with connect(other.ws_url, key) as sock:
        await sock.send(
            json.dumps({"type": "resume", "conversation_id": conversation_id})
        )
        frames = await frames_until(
            sock, lambda f: is_end(f) or f.get("html") is not None, timeout=30
        )
    stored = await settled(database_url, message_id)
    assert_carried_on(stored, handovers(database_url, message_id))
    assert streamed_text(frames, message_id) == stored["content"]


async def test_a_rolling_restart_of_both_processes_loses_no_reply(fake, stack, daphnes):
    """Five replies streaming over two processes; each process is stopped and started
    again in turn: all five end complete, whole."""
    database_url, redis_url = stack
    fake.default_script = slow_script(30, 0.03)
    env = daphne_env(
        database_url, fake, redis_url=redis_url, CHAT_DRAIN_SECONDS="1",
        CHAT_HEARTBEAT_STALE_SECONDS="30", **QUICK,
    )  # fmt: skip
    a, b = daphnes(env), daphnes(env)
    keys = list(make_users(env, unique_names(5)).values())
    ids = []
    for i, key in enumerate(keys):
        async with connect((a, b)[i % 2].ws_url, key) as sock:
            await sock.send(f"story number {i}")
            frames = await frames_until(sock, lambda f: f["type"] == "user_message")
            ids.append(frames[-1]["message_id"])
    for process in (a, b):
        await asyncio.sleep(0.5)
        await asyncio.to_thread(sigterm, process)
        process.start()
    rows = [await settled(database_url, pk, timeout=60) for pk in ids]
    whole = "".join(f"w{i} " for i in range(30))
    for row in rows:
        assert row["status"] == "complete", row
        assert whole.startswith(row["content"][:5]) and row["content"].endswith("w29 ")
