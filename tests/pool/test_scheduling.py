"""Replies on a pool of backends: spread over free backends, back to the backend that
wrote the conversation last, moved to another backend before their first token."""

import asyncio

import pytest
from asgiref.sync import sync_to_async

from chat.pool import health
from kobold_fake.server import Script
from tests.chat.conftest import frames_until, is_end, message_row, open_socket

pytestmark = pytest.mark.django_db(transaction=True)

SLOW = Script(tokens=[f"w{i} " for i in range(10)], delay=0.05)


async def _socket(make_user, make_key):
    user = await sync_to_async(make_user)()
    return await open_socket(await sync_to_async(make_key)(user))


async def _reply(comm, text: str, **frame) -> tuple[list[dict], object]:
    await comm.send_json_to({"type": "message", "text": text, **frame})
    frames = await frames_until(comm, is_end, timeout=20)
    return frames, await sync_to_async(_with_backend)(frames[-1]["message_id"])


def _with_backend(message_id: int):
    from chat.models import Message

    return Message.objects.select_related("backend").get(pk=message_id)


def _invisible(frames: list[dict]) -> bool:
    """The user saw one start, no error, and a complete reply."""
    kinds = [f["type"] for f in frames]
    return (
        "error" not in kinds
        and kinds.count("start") == 1
        and frames[-1]["status"] == "complete"
    )


async def test_replies_of_two_users_run_at_once_on_two_backends(
    make_pool, make_user, make_key
):
    """Two backends of one slot each: two replies at once, one on each."""
    a, b = await sync_to_async(make_pool)(2)
    a.default_script = b.default_script = SLOW
    first, second = [await _socket(make_user, make_key) for _ in range(2)]
    (f1, r1), (f2, r2) = await asyncio.gather(
        _reply(first, "hello one"), _reply(second, "hello two")
    )
    assert {r1.backend.name, r2.backend.name} == {"a", "b"}
    assert len(a.generations) == len(b.generations) == 1
    assert a.max_concurrent_generations == b.max_concurrent_generations == 1
    assert "queued" not in [f["type"] for f in f1 + f2]  # nobody waited
    await first.disconnect()
    await second.disconnect()


async def test_a_conversation_returns_to_the_backend_that_wrote_it(
    make_pool, make_user, make_key
):
    """Its first reply went to b (a was busy); with both free, the next goes to b too
    (its prompt cache is warm), though a comes first on a tie."""
    a, b = await sync_to_async(make_pool)(2)
    a.push(Script(tokens=["long "] * 30, delay=0.05))
    other, mine = [await _socket(make_user, make_key) for _ in range(2)]
    await other.send_json_to({"type": "message", "text": "keep a busy"})
    assert await a.await_until(lambda: a.active_generations == 1)
    _, first = await _reply(mine, "hello")
    assert first.backend.name == "b"
    await frames_until(other, is_end, timeout=20)
    assert a.active_generations == 0
    _, second = await _reply(mine, "and again", conversation_id=first.conversation_id)
    assert second.backend.name == "b" and len(b.generations) == 2
    _, elsewhere = await _reply(mine, "new chat", new_conversation=True)
    assert elsewhere.backend.name == "a"  # a new conversation: no preference
    await other.disconnect()
    await mine.disconnect()


async def test_a_backend_stopped_while_replies_wait_loses_none_of_them(
    make_pool, make_user, make_key
):
    """b stops while a writes and three replies wait: the one that meets the dead b
    moves back to wait for a, unseen; b is skipped after that; every reply completes
    once, on a."""
    a, b = await sync_to_async(make_pool)(2)
    a.push(Script(tokens=["busy "] * 20, delay=0.05))
    a.default_script = Script(tokens=["ok"])
    busy = await _socket(make_user, make_key)
    await busy.send_json_to({"type": "message", "text": "keep a busy"})
    assert await a.await_until(lambda: a.active_generations == 1)
    b.stop()
    users = [await _socket(make_user, make_key) for _ in range(3)]
    results = await asyncio.gather(
        *(_reply(c, f"reply {i}") for i, c in enumerate(users))
    )
    await frames_until(busy, is_end, timeout=20)
    assert all(_invisible(frames) for frames, _ in results)
    assert [r.backend.name for _, r in results] == ["a", "a", "a"]
    genkeys = [g["genkey"] for g in a.generations]
    assert len(genkeys) == len(set(genkeys)) == 4  # "keep a busy" and the three
    notes = [r.backend_attempts for _, r in results]
    assert notes.count("b: backend_unreachable → a") == 1 and notes.count("") == 2
    assert await health.known_down(b.url)
    for comm in [busy, *users]:
        await comm.disconnect()


async def test_a_busy_backend_is_left_for_another_before_the_first_token(
    make_pool, make_user, make_key
):
    """a answers 503 to every try: the reply is written by b, and the user sees no
    error; the reply records both attempts."""
    a, b = await sync_to_async(make_pool)(2)
    a.push(*[Script(fault="http_503")] * 3)  # the first try and its two retries
    comm = await _socket(make_user, make_key)
    frames, reply = await _reply(comm, "hello")
    assert _invisible(frames) and reply.content == "Hello there!"
    assert reply.backend.name == "b"
    assert reply.backend_attempts == "a: backend_busy → b"
    assert len(b.generations) == 1
    await comm.disconnect()


async def test_a_down_backend_is_skipped_until_it_answers(
    make_pool, make_user, make_key, make_fake
):
    """Once a is found down, the next replies go straight to b."""
    a, b = await sync_to_async(make_pool)(2)
    a.stop()
    comm = await _socket(make_user, make_key)
    frames, first = await _reply(comm, "hello")
    assert _invisible(frames) and first.backend_attempts.startswith("a: ")
    _, second = await _reply(comm, "again", new_conversation=True)
    assert second.backend.name == "b" and second.backend_attempts == ""
    await comm.disconnect()


async def test_one_backend_down_is_an_error_at_once(make_pool, make_user, make_key):
    """With a single backend there is nowhere to go: backend_unreachable, as before."""
    (a,) = await sync_to_async(make_pool)(1)
    a.stop()
    comm = await _socket(make_user, make_key)
    await comm.send_to(text_data="hello")
    frames = await frames_until(comm, is_end)
    assert [f["code"] for f in frames if f["type"] == "error"] == [
        "backend_unreachable"
    ]
    reply = await message_row(frames[-1]["message_id"])
    assert (
        reply.status == "error" and reply.backend_attempts == "a: backend_unreachable"
    )
    await comm.disconnect()
