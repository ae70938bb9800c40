"""The chat socket end to end: the real ASGI app, the real job, the fake KoboldCpp."""

import asyncio

import pytest
from asgiref.sync import sync_to_async

from chat.models import Message
from kobold_fake.server import Script
from tests.chat.conftest import (
    frames_until,
    is_end,
    message_row,
    open_socket,
    replies_of,
    streamed_text,
)

pytestmark = pytest.mark.django_db(transaction=True)


async def test_plain_text_frame_streams_a_reply_that_is_stored(
    kobold_settings, fake_kobold, make_user, make_key
):
    """The seed's check: 'Bonjour' on /api/ws/chat gives start, tokens, end; all stored."""
    fake_kobold.default_script = Script(tokens=["Bon", "jour", " à", " vous", " !"])
    user = await sync_to_async(make_user)()
    comm = await open_socket(await sync_to_async(make_key)(user), path="/api/ws/chat")
    assert comm.connected
    await comm.send_to(text_data="Bonjour")
    frames = await frames_until(comm, is_end)
    kinds = [f["type"] for f in frames]
    assert kinds[0] == "user_message"
    assert kinds.index("start") < kinds.index("token") < kinds.index("end")
    end = frames[-1]
    assert end["status"] == "complete" and end["content"] == "Bonjour à vous !"
    assert streamed_text(frames, end["message_id"]) == end["content"]
    reply = await message_row(end["message_id"])
    assert reply.content == "Bonjour à vous !" and reply.status == "complete"
    assert reply.finish_reason == "stop" and reply.intent_source == "heuristic"
    user_message = await sync_to_async(
        lambda: reply.conversation.messages.filter(role="user").get()
    )()
    assert user_message.content == "Bonjour"
    assert fake_kobold.generations[0]["genkey"] == reply.genkey
    assert reply.html == end["html"] == "<p>Bonjour à vous !</p>\n"  # rendered once
    await comm.disconnect()


async def test_two_sockets_of_one_user_both_get_every_frame(
    kobold_settings, fake_kobold, make_user, make_key
):
    """A second tab sees the same reply, frame for frame."""
    fake_kobold.default_script = Script(
        tokens=[f"w{i} " for i in range(20)], delay=0.01
    )
    user = await sync_to_async(make_user)()
    key = await sync_to_async(make_key)(user)
    first, second = await open_socket(key), await open_socket(key)
    await first.send_json_to({"type": "message", "text": "hello there friend"})
    got_first = await frames_until(first, is_end)
    got_second = await frames_until(second, is_end)
    assert got_first == got_second
    await first.disconnect()
    await second.disconnect()


async def test_closing_the_socket_does_not_lose_the_reply(
    kobold_settings, fake_kobold, make_user, make_key
):
    """The job belongs to the server: the reply completes with nobody listening."""
    fake_kobold.default_script = Script(
        tokens=[f"t{i} " for i in range(15)], delay=0.03
    )
    user = await sync_to_async(make_user)()
    comm = await open_socket(await sync_to_async(make_key)(user))
    await comm.send_to(text_data="tell me something long")
    frames = await frames_until(comm, lambda f: f["type"] == "token")
    message_id = frames[-1]["message_id"]
    await comm.disconnect()
    for _ in range(100):
        reply = await message_row(message_id)
        if reply.status == "complete":
            break
        await asyncio.sleep(0.05)
    assert reply.status == "complete"
    assert reply.content == "".join(f"t{i} " for i in range(15))


async def test_reconnect_mid_reply_resumes_without_gap_or_duplicate(
    kobold_settings, fake_kobold, make_user, make_key
):
    """A new socket gets a snapshot then the rest; reassembled, it equals the stored text."""
    fake_kobold.default_script = Script(
        tokens=[f"x{i} " for i in range(30)], delay=0.02
    )
    user = await sync_to_async(make_user)()
    key = await sync_to_async(make_key)(user)
    comm = await open_socket(key)
    await comm.send_to(text_data="count for me please")
    frames = await frames_until(
        comm, lambda f: f["type"] == "token" and f["offset"] > 10
    )
    message_id = frames[-1]["message_id"]
    await comm.disconnect()
    again = await open_socket(key)
    frames = await frames_until(again, is_end)
    assert frames[0]["type"] == "snapshot" and frames[0]["message_id"] == message_id
    assert frames[0]["offset"] > 0
    reply = await message_row(message_id)
    assert streamed_text(frames, message_id) == reply.content == frames[-1]["content"]
    await again.disconnect()


async def test_resume_frame_gives_snapshot_of_the_conversation(
    kobold_settings, fake_kobold, make_user, make_key
):
    """`resume` on a live reply: snapshot + live frames; on a finished one: the final text."""
    fake_kobold.default_script = Script(
        tokens=[f"r{i} " for i in range(20)], delay=0.02
    )
    user = await sync_to_async(make_user)()
    key = await sync_to_async(make_key)(user)
    comm = await open_socket(key)
    await comm.send_to(text_data="go on then")
    first = await frames_until(comm, lambda f: f["type"] == "token")
    conversation_id = first[-1]["conversation_id"]
    await comm.send_json_to({"type": "resume", "conversation_id": conversation_id})
    rest = await frames_until(comm, is_end)
    assert any(f["type"] == "snapshot" for f in rest)
    message_id = first[-1]["message_id"]
    assert streamed_text(first + rest, message_id) == rest[-1]["content"]
    await comm.send_json_to({"type": "resume", "conversation_id": conversation_id})
    final = await comm.receive_json_from(timeout=5)
    assert final["type"] == "snapshot" and final["status"] == "complete"
    assert final["content"] == rest[-1]["content"]
    await comm.disconnect()


async def test_stop_mid_stream_aborts_upstream_and_keeps_the_partial_text(
    kobold_settings, fake_kobold, make_user, make_key
):
    """Stop: abort with the genkey, `end` stopped within a second, partial kept exactly."""
    fake_kobold.default_script = Script(
        tokens=[f"s{i} " for i in range(200)], delay=0.05
    )
    user = await sync_to_async(make_user)()
    comm = await open_socket(await sync_to_async(make_key)(user))
    await comm.send_to(text_data="write forever")
    frames = await frames_until(
        comm, lambda f: f["type"] == "token" and f["offset"] > 5
    )
    message_id = frames[-1]["message_id"]
    loop = asyncio.get_running_loop()
    asked = loop.time()
    await comm.send_json_to({"type": "stop", "message_id": message_id})
    rest = await frames_until(comm, is_end, timeout=3)
    assert loop.time() - asked < 1.0
    end = rest[-1]
    assert end["status"] == "stopped"
    reply = await message_row(message_id)
    assert reply.status == "stopped"
    assert reply.content == end["content"] == streamed_text(frames + rest, message_id)
    assert 0 < len(reply.content) < len("".join(f"s{i} " for i in range(200)))
    assert reply.genkey in fake_kobold.aborts
    await comm.disconnect()


async def test_stop_before_the_first_token(
    kobold_settings, fake_kobold, make_user, make_key
):
    """Stop while KoboldCpp still reads the prompt: aborted, stored `stopped`, empty."""
    fake_kobold.default_script = Script(tokens=["late"], first_token_delay=5)
    user = await sync_to_async(make_user)()
    comm = await open_socket(await sync_to_async(make_key)(user))
    await comm.send_to(text_data="a slow one")
    frames = await frames_until(comm, lambda f: f["type"] == "start")
    message_id = frames[-1]["message_id"]
    async with asyncio.timeout(5):  # KoboldCpp has the request: it reads the prompt
        while not fake_kobold.generations:
            await asyncio.sleep(0.01)
    await comm.send_json_to({"type": "stop", "message_id": message_id})
    end = (await frames_until(comm, is_end, timeout=3))[-1]
    assert end["status"] == "stopped" and end["content"] == ""
    reply = await message_row(message_id)
    assert reply.status == "stopped" and reply.genkey in fake_kobold.aborts
    await comm.disconnect()


async def test_stop_while_queued_takes_the_reply_out_of_the_line(
    kobold_settings, fake_kobold, make_user, make_key
):
    """A queued reply stopped never reaches KoboldCpp."""
    fake_kobold.default_script = Script(
        tokens=[f"q{i} " for i in range(40)], delay=0.05
    )
    first_user, second_user = (
        await sync_to_async(make_user)(),
        await sync_to_async(make_user)(),
    )
    first = await open_socket(await sync_to_async(make_key)(first_user))
    second = await open_socket(await sync_to_async(make_key)(second_user))
    await first.send_to(text_data="first in line")
    await frames_until(first, lambda f: f["type"] == "start")
    await second.send_to(text_data="second in line")
    queued = await frames_until(second, lambda f: f["type"] == "queued")
    assert queued[-1]["position"] == 1
    await second.send_json_to({"type": "stop", "message_id": queued[-1]["message_id"]})
    end = (await frames_until(second, is_end))[-1]
    assert end["status"] == "stopped"
    await frames_until(first, is_end)
    assert len(fake_kobold.generations) == 1
    await first.disconnect()
    await second.disconnect()


async def test_stop_while_the_reply_is_announced_stops_it(
    kobold_settings, fake_kobold, make_user, make_key, monkeypatch
):
    """A stop that comes while the job still sends its first frame (on Redis a
    publish: CI saw it) is not lost: the reply never reaches KoboldCpp."""
    from chat.replies.fanout import ReplyFanout
    from chat.replies.job import local_job

    gate, sending = asyncio.Event(), asyncio.Event()
    broadcast = ReplyFanout.broadcast

    async def slow_announce(self, frame):
        if frame["type"] == "user_message":
            sending.set()
            await gate.wait()
        await broadcast(self, frame)

    monkeypatch.setattr(ReplyFanout, "broadcast", slow_announce)
    comm = await open_socket(
        await sync_to_async(make_key)(await sync_to_async(make_user)())
    )
    await comm.send_to(text_data="hello")
    await asyncio.wait_for(sending.wait(), 5)
    reply = await Message.objects.filter(role="assistant").order_by("-pk").afirst()
    await local_job(reply.pk).stop()
    gate.set()
    end = (await frames_until(comm, is_end))[-1]
    assert end["status"] == "stopped"
    assert fake_kobold.generations == []
    await comm.disconnect()


async def test_three_users_are_served_in_order_with_positions(
    kobold_settings, fake_kobold, make_user, make_key
):
    """First come, first served across users; waiting sockets see their position move."""
    fake_kobold.default_script = Script(tokens=["a", "b", "c"], delay=0.1)
    users = [await sync_to_async(make_user)() for _ in range(3)]
    socks = [await open_socket(await sync_to_async(make_key)(u)) for u in users]
    seen = []
    for index, sock in enumerate(socks):
        await sock.send_to(text_data=f"question number {index}")
        # In the line before the next one sends: its first frame says where it stands.
        seen.append(
            await frames_until(sock, lambda f: f["type"] in ("start", "queued"))
        )
    results = [
        first + await frames_until(sock, is_end)
        for first, sock in zip(seen, socks, strict=True)
    ]
    positions = [
        [f["position"] for f in frames if f["type"] == "queued"] for frames in results
    ]
    assert positions == [[], [1], [2, 1]]
    ends = [await message_row(frames[-1]["message_id"]) for frames in results]
    assert all(r.status == "complete" for r in ends)
    assert ends[0].updated_at <= ends[1].updated_at <= ends[2].updated_at
    assert fake_kobold.max_concurrent_generations == 1
    for sock in socks:
        await sock.disconnect()


async def test_second_message_while_a_reply_is_pending_is_busy(
    kobold_settings, fake_kobold, make_user, make_key
):
    """One pending reply per user: the second message is refused with `busy`."""
    fake_kobold.default_script = Script(tokens=[f"b{i}" for i in range(10)], delay=0.05)
    user = await sync_to_async(make_user)()
    comm = await open_socket(await sync_to_async(make_key)(user))
    await comm.send_to(text_data="one")
    await frames_until(comm, lambda f: f["type"] == "start")
    await comm.send_to(text_data="two")
    error = (await frames_until(comm, lambda f: f["type"] == "error"))[-1]
    assert error["code"] == "busy"
    await frames_until(comm, is_end)
    assert await sync_to_async(Message.objects.filter(content="two").count)() == 0
    await comm.disconnect()


async def test_database_writes_do_not_grow_with_reply_length(
    kobold_settings, fake_kobold, make_user, make_key, monkeypatch
):
    """A long fast reply costs the same writes as a one-token one (checkpoints aside)."""
    from chat import services

    writes = []
    for name in ("reply_checkpoint", "reply_update", "reply_heartbeat"):
        original = getattr(services, name)

        def spy(*args, _original=original, _name=name, **kwargs):
            writes.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(services, name, spy)
    user = await sync_to_async(make_user)()
    comm = await open_socket(await sync_to_async(make_key)(user))
    counts, lengths = [], []
    for tokens in (["one"], [f"{i} " for i in range(2000)]):
        fake_kobold.default_script = Script(tokens=tokens)
        writes.clear()
        await comm.send_to(text_data="how long can you go")
        end = (await frames_until(comm, is_end))[-1]
        assert "".join(tokens).startswith(end["content"])
        lengths.append(len(end["content"]))
        counts.append(len(writes))
    assert lengths[0] == 3 and lengths[1] > 1000
    assert counts[0] == counts[1] <= 3
    await comm.disconnect()


async def test_regenerate_adds_an_alternative_and_keeps_the_old_reply(
    kobold_settings, fake_kobold, make_user, make_key
):
    """`regenerate` answers the last user message again: a sibling reply, shown; the
    old one stays stored as its alternative and is not in the new prompt."""
    fake_kobold.push(Script(tokens=["first answer"]), Script(tokens=["second answer"]))
    user = await sync_to_async(make_user)()
    comm = await open_socket(await sync_to_async(make_key)(user))
    await comm.send_to(text_data="what is up")
    first = (await frames_until(comm, is_end))[-1]
    await comm.send_json_to(
        {"type": "regenerate", "conversation_id": first["conversation_id"]}
    )
    frames = await frames_until(comm, is_end)
    assert frames[0]["type"] == "regenerate"
    assert frames[-1]["content"] == "second answer"
    replies = await replies_of(user)
    assert [r.content for r in replies] == ["first answer", "second answer"]
    assert replies[0].parent_id == replies[1].parent_id is not None
    assert frames[0]["sibling_ids"] == [r.pk for r in replies]
    assert frames[0]["parent_id"] == replies[0].parent_id
    assert fake_kobold.generations[1]["prompt"].count("what is up") == 1
    assert "first answer" not in fake_kobold.generations[1]["prompt"]
    await comm.disconnect()


async def test_continue_extends_a_reply_cut_by_the_length_limit(
    kobold_settings, fake_kobold, make_user, make_key
):
    """`continue` appends to the same reply; offsets go on from the text already there."""
    fake_kobold.push(
        Script(tokens=["Once upon", " a time"], finish_reason="length"),
        Script(tokens=[" there was", " a fox."]),
    )
    user = await sync_to_async(make_user)()
    comm = await open_socket(await sync_to_async(make_key)(user))
    await comm.send_to(text_data="tell me a story")
    first = (await frames_until(comm, is_end))[-1]
    assert first["finish_reason"] == "length"
    await comm.send_json_to(
        {"type": "continue", "conversation_id": first["conversation_id"]}
    )
    frames = await frames_until(comm, is_end)
    assert frames[0] == {
        "type": "continue",
        "conversation_id": first["conversation_id"],
        "message_id": first["message_id"],
        "offset": len("Once upon a time"),
    }
    tokens = [f for f in frames if f["type"] == "token"]
    assert tokens[0]["offset"] == len("Once upon a time")
    assert frames[-1]["content"] == "Once upon a time there was a fox."
    reply = await message_row(first["message_id"])
    assert (
        reply.content == "Once upon a time there was a fox."
        and reply.status == "complete"
    )
    assert reply.html == "<p>Once upon a time there was a fox.</p>\n"
    await comm.disconnect()
