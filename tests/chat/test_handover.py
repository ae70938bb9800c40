"""Hand-over in one process: a reply whose job is gone is claimed by one taker only and
carried on from its checkpoint (the model continues the text itself); a stopping process
lets replies finish, hands the rest over, and leaves new ones for the next process."""

import asyncio
import random
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from chat import services
from chat.models import Handover, Message
from chat.replies import drain, handover
from chat.replies.job import local_job
from chat.socket.consumer import SERVICE_RESTART, close_all
from kobold_fake.server import Script
from tests.chat.conftest import frames_until, is_end, open_socket, streamed_text

pytestmark = pytest.mark.django_db(transaction=True)
LONG = Script(tokens=[f"w{i} " for i in range(60)], delay=0.05)


@pytest.fixture(autouse=True)
def _running_process():
    drain.reset()
    yield
    drain.reset()


@pytest.fixture
async def socket_of(make_user, make_key):
    comms = []

    async def make():
        user = await sync_to_async(make_user)()
        key = await sync_to_async(make_key)(user)
        comm = await open_socket(key)
        comms.append(comm)
        return comm, user, key

    yield make
    for comm in comms:
        await comm.disconnect()


def _orphan(message_id: int, content: str, **fields) -> None:
    """Make a reply look like the job of a dead process: pending, beat long ago."""
    Message.objects.filter(pk=message_id).update(
        status=Message.Status.STREAMING,
        content=content,
        heartbeat_at=timezone.now() - timedelta(minutes=5),
        **fields,
    )


async def test_a_dead_jobs_reply_is_carried_on_from_its_checkpoint(
    kobold_settings, fake_kobold, socket_of
):
    """The taker stops the dead generation, rewinds watchers to the checkpoint (they may
    hold more), and the model carries on mid-word: no separator, nothing repeated."""
    fake_kobold.push(Script(tokens=["done"]), Script(tokens=["me", " there", " was."]))
    comm, user, _ = await socket_of()
    await comm.send_to(text_data="Tell me a story")
    first = (await frames_until(comm, is_end))[-1]
    message_id = first["message_id"]
    await sync_to_async(_orphan)(message_id, "Once upon a ti", genkey="KCPPdead")
    kobold_settings.CHAT_HEARTBEAT_STALE_SECONDS = 30

    assert await handover.take_over_stale() == 1
    frames = await frames_until(comm, is_end)
    assert frames[0]["type"] == "rewind" and frames[0]["offset"] == len(
        "Once upon a ti"
    )
    end = frames[-1]
    assert (end["status"], end["content"]) == (
        "complete",
        "Once upon a time there was.",
    )
    seen = "Once upon a time th"  # a second more than the checkpoint
    assert streamed_text(frames, message_id, seen) == end["content"]
    assert "KCPPdead" in fake_kobold.aborts
    assert fake_kobold.generations[-1]["prompt"].endswith("Once upon a ti")
    (row,) = await sync_to_async(list)(Handover.objects.filter(message_id=message_id))
    assert (row.outcome, row.checkpoint_chars) == ("continued", len("Once upon a ti"))


def _reply(make_user, content="partial") -> Message:
    from chat.replies import exchanges

    conversation, _, assistant = exchanges.exchange_create(
        user=make_user(), text="hi", conversation_id=None, new_conversation=True
    )
    _orphan(assistant.pk, content)
    return assistant


def test_only_one_taker_wins_a_reply(make_user, monkeypatch):
    """Another process claims the reply between this one's read and its claim: the
    compare-and-set on the heartbeat fails here, and there is one hand-over."""
    message = _reply(make_user)
    theirs, asked = [], []

    def another_process_first(pk):
        if not asked:
            asked.append(pk)
            theirs.extend(handover.claim_stale(stale_seconds=30))
        return None

    monkeypatch.setattr(handover, "local_job", another_process_first)
    ours = handover.claim_stale(stale_seconds=30)
    assert [m.pk for m in theirs] == [message.pk] and ours == []
    assert Handover.objects.filter(message=message).count() == 1
    assert Message.objects.get(pk=message.pk).status == "queued"


@pytest.mark.parametrize("auto_continue, earlier", [(False, 0), (True, 3)])
def test_a_reply_that_may_not_continue_is_interrupted_with_the_reason(
    make_user, settings, auto_continue, earlier
):
    settings.CHAT_AUTO_CONTINUE, settings.CHAT_MAX_HANDOVERS = auto_continue, 3
    message = _reply(make_user)
    for _ in range(earlier):
        Handover.objects.create(
            message=message, process="x:1", checkpoint_chars=1, outcome="continued"
        )
    assert handover.claim_stale(stale_seconds=30) == []
    message.refresh_from_db()
    assert (message.status, message.content) == ("interrupted", "partial")
    assert Handover.objects.filter(message=message).last().outcome == "interrupted"


async def test_a_stopping_process_hands_a_running_reply_over(
    kobold_settings, fake_kobold, socket_of
):
    """Drain time over: the job stops its model, keeps its text, ends nothing, and
    leaves the reply for the next process, which carries it on; the watcher's text,
    rewind included, is the stored reply."""
    fake_kobold.push(LONG, Script(tokens=["and ", "the ", "end."]))
    comm, user, key = await socket_of()
    await comm.send_to(text_data="Tell me a long story")
    frames = await frames_until(comm, lambda f: f.get("text", "").startswith("w5"))
    message_id = frames[-1]["message_id"]

    assert await drain.drain(0.2) == 1
    row = await sync_to_async(Message.objects.get)(pk=message_id)
    assert row.is_pending and row.heartbeat_at == services.RELEASED_AT
    assert row.content.startswith("w0 w1 w2 w3 w4 w5 ")
    assert fake_kobold.aborts and fake_kobold.aborts[-1] == row.genkey
    assert not (await open_socket(key)).connected  # a closed process takes no socket

    drain.reset()  # the next process
    assert await handover.take_over_stale() == 1
    frames += await frames_until(comm, is_end)
    end = frames[-1]
    assert (
        end["status"] == "complete" and end["content"] == row.content + "and the end."
    )
    assert streamed_text(frames, message_id) == end["content"]


async def test_a_reply_asked_of_a_stopping_process_waits_for_the_next(
    kobold_settings, fake_kobold, socket_of
):
    comm, user, _ = await socket_of()
    await drain.drain(1.0)  # nothing running: at once
    fake_kobold.push(Script(tokens=["hello"]))
    await comm.send_to(text_data="hi")
    frames = await frames_until(comm, lambda f: f["type"] == "queued")
    message_id = frames[-1]["message_id"]
    row = await sync_to_async(Message.objects.get)(pk=message_id)
    assert row.status == "queued" and row.heartbeat_at == services.RELEASED_AT
    assert fake_kobold.generations == []

    drain.reset()
    assert await handover.take_over_stale() == 1
    end = (await frames_until(comm, is_end))[-1]
    assert (end["message_id"], end["content"]) == (message_id, "hello")


async def test_a_stopping_process_closes_sockets_so_pages_come_back_at_once(
    kobold_settings, socket_of
):
    comm, _, _ = await socket_of()
    assert await close_all() >= 1
    closed = await comm.receive_output(timeout=2)
    assert closed == {"type": "websocket.close", "code": SERVICE_RESTART}


def _settled(frame: dict) -> bool:
    return is_end(frame) or (
        frame["type"] == "snapshot" and frame["status"] == "complete"
    )


@pytest.mark.parametrize("seed", range(8))
async def test_text_assembled_across_a_handover_is_the_stored_reply(
    kobold_settings, fake_kobold, socket_of, seed
):
    """Random kill points, a checkpoint behind what the watcher saw by a random amount,
    and a second client arriving at a random moment: both hold exactly the stored reply,
    which is the checkpoint and then the continuation, nothing lost or twice."""
    rng = random.Random(seed)
    rest = [f"c{i} " for i in range(rng.randint(1, 8))]
    fake_kobold.push(
        Script(tokens=[f"t{i} " for i in range(40)], delay=0.01),
        Script(tokens=rest, delay=rng.choice([0, 0.01])),
    )
    comm, user, key = await socket_of()
    await comm.send_to(text_data="go")
    kill_at, tokens = rng.randint(1, 30), []
    frames = await frames_until(
        comm,
        lambda f: f["type"] == "token" and len(tokens.append(f) or tokens) >= kill_at,
    )
    message_id = frames[-1]["message_id"]
    await local_job(message_id).hand_over()
    row = await sync_to_async(Message.objects.get)(pk=message_id)
    checkpoint = row.content[: max(0, len(row.content) - rng.randint(0, 12))]
    await sync_to_async(Message.objects.filter(pk=message_id).update)(
        content=checkpoint
    )

    assert await handover.take_over_stale() == 1
    await asyncio.sleep(rng.random() * 0.1)
    late = await open_socket(key)
    await late.send_json_to({"type": "resume", "conversation_id": row.conversation_id})
    late_frames = await frames_until(late, _settled)
    frames += await frames_until(comm, is_end)
    await late.disconnect()
    stored = await sync_to_async(Message.objects.get)(pk=message_id)
    assert stored.status == "complete" and stored.content == checkpoint + "".join(rest)
    assert streamed_text(frames, message_id) == stored.content
    # The late client holds what it was streamed, and the last frame has it all (an
    # `end` arriving before any snapshot carries the whole text, as the page shows it).
    assert stored.content.startswith(streamed_text(late_frames, message_id))
    assert late_frames[-1]["content"] == stored.content


async def test_a_reply_waiting_in_line_keeps_beating_within_the_stale_limit(
    kobold_settings, fake_kobold, socket_of
):
    """Queued behind a long reply for longer than the limit after which other processes
    take a reply over, it beats often enough never to look dead to them."""
    kobold_settings.CHAT_CHECKPOINT_SECONDS = 0.1
    kobold_settings.CHAT_HEARTBEAT_STALE_SECONDS = 0.6
    fake_kobold.push(LONG)
    first, _, _ = await socket_of()
    second, _, _ = await socket_of()
    await first.send_to(text_data="a long one")
    await frames_until(first, lambda f: f["type"] == "token")
    await second.send_to(text_data="and mine")
    queued = await frames_until(second, lambda f: f["type"] == "queued")
    message_id = queued[-1]["message_id"]
    ages = []
    for _ in range(8):  # 1.6 s in line
        await asyncio.sleep(0.2)
        row = await Message.objects.aget(pk=message_id)
        assert row.status == Message.Status.QUEUED
        ages.append((timezone.now() - row.heartbeat_at).total_seconds())
    assert max(ages) < 0.6, ages
    await frames_until(first, is_end, timeout=20)
    await frames_until(second, is_end, timeout=20)


def test_a_stale_limit_shorter_than_three_checkpoints_is_refused():
    """Such a limit would let reapers take over replies that only wait in line: the
    server does not start."""
    import os
    import subprocess
    import sys

    env = dict(
        os.environ, CHAT_HEARTBEAT_STALE_SECONDS="2", CHAT_CHECKPOINT_SECONDS="1"
    )
    env["DJANGO_SETTINGS_MODULE"] = "koboldchat.settings"
    started = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert started.returncode != 0
    assert "CHAT_HEARTBEAT_STALE_SECONDS must be at least 3" in started.stderr
