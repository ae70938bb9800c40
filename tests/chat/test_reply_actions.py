"""What the page's actions ask of the socket: a refusal says which reply is running, a
refused first message leaves nothing, Regenerate and Continue name the reply they mean."""

import asyncio

import pytest
from asgiref.sync import sync_to_async

from chat.models import Conversation, Message
from chat.usage.models import UsageEntry
from kobold_fake.server import Script
from tests.chat.conftest import frames_until, is_end, open_socket

pytestmark = pytest.mark.django_db(transaction=True)


def is_error(frame: dict) -> bool:
    return frame["type"] == "error"


@pytest.fixture
async def socket_of(make_user, make_key):
    """A connected socket of a new user, and the user."""
    comms = []

    async def make():
        user = await sync_to_async(make_user)()
        comm = await open_socket(await sync_to_async(make_key)(user))
        comms.append(comm)
        return comm, user

    yield make
    for comm in comms:
        await comm.disconnect()


async def test_busy_names_the_running_reply(kobold_settings, fake_kobold, socket_of):
    """A message refused because a reply runs elsewhere says where: its conversation,
    title and message id, so the page can go to it or stop it."""
    fake_kobold.default_script = Script(
        tokens=[f"b{i} " for i in range(20)], delay=0.05
    )
    comm, user = await socket_of()
    await comm.send_json_to({"type": "message", "text": "Long story please"})
    start = (await frames_until(comm, lambda f: f["type"] == "start"))[-1]
    other = await sync_to_async(Conversation.objects.create)(owner=user, title="Other")
    await comm.send_json_to(
        {"type": "message", "text": "hello", "conversation_id": other.pk}
    )
    error = (await frames_until(comm, is_error))[-1]
    assert error["code"] == "busy"
    assert error["running"] == {
        "conversation_id": start["conversation_id"],
        "message_id": start["message_id"],
        "title": "Long story please",
    }
    assert "message_id" not in error  # the refusal is not about a reply of this page
    await frames_until(comm, is_end)


async def test_refused_first_message_leaves_no_conversation(
    kobold_settings, fake_kobold, socket_of
):
    """`new_conversation`: the conversation is made with the message, so a refusal
    leaves no empty conversation behind; accepted, it gets the message as its title."""
    fake_kobold.default_script = Script(
        tokens=[f"n{i} " for i in range(20)], delay=0.05
    )
    comm, user = await socket_of()
    await comm.send_json_to(
        {"type": "message", "text": "first", "new_conversation": True}
    )
    announce = (await frames_until(comm, lambda f: f["type"] == "user_message"))[-1]
    assert announce["conversation_title"] == "first"
    await comm.send_json_to(
        {"type": "message", "text": "second", "new_conversation": True}
    )
    assert (await frames_until(comm, is_error))[-1]["code"] == "busy"
    await frames_until(comm, is_end)
    titles = await sync_to_async(
        lambda: list(
            Conversation.objects.filter(owner=user).values_list("title", flat=True)
        )
    )()
    assert titles == ["first"]


async def test_new_conversation_and_an_id_together_are_refused(
    kobold_settings, socket_of
):
    """Both a conversation id and `new_conversation`: a bad request, nothing made."""
    comm, user = await socket_of()
    await comm.send_json_to(
        {"type": "message", "text": "x", "conversation_id": 1, "new_conversation": True}
    )
    assert (await frames_until(comm, is_error))[-1]["code"] == "bad_request"
    assert await sync_to_async(Conversation.objects.filter(owner=user).count)() == 0


@pytest.mark.parametrize("action", ["continue"])
async def test_an_older_reply_is_not_the_one_acted_on(
    kobold_settings, fake_kobold, socket_of, action
):
    """Continue with the id of an older reply (a page of earlier messages): refused
    with a clear sentence, and the last reply is untouched."""
    fake_kobold.push(Script(tokens=["one"]), Script(tokens=["two"]))
    comm, user = await socket_of()
    await comm.send_to(text_data="first question")
    first = (await frames_until(comm, is_end))[-1]
    conversation_id = first["conversation_id"]
    await comm.send_json_to(
        {"type": "message", "text": "second", "conversation_id": conversation_id}
    )
    last = (await frames_until(comm, is_end))[-1]
    await comm.send_json_to(
        {
            "type": action,
            "conversation_id": conversation_id,
            "message_id": first["message_id"],
        }
    )
    error = (await frames_until(comm, is_error))[-1]
    assert error["code"] == "bad_request"
    assert "not the last reply" in error["message"]
    assert error["message_id"] == first["message_id"]
    row = await sync_to_async(Message.objects.get)(pk=last["message_id"])
    assert (row.content, row.status) == ("two", "complete")


async def test_regenerating_an_older_reply_forks_the_conversation_there(
    kobold_settings, fake_kobold, socket_of
):
    """Regenerate of an older reply: a new alternative of it, shown, whose prompt holds
    only what came before it; the later exchange stays stored on the old branch."""
    fake_kobold.push(Script(tokens=["one"]), Script(tokens=["two"]), Script(["uno"]))
    comm, user = await socket_of()
    await comm.send_to(text_data="first question")
    first = (await frames_until(comm, is_end))[-1]
    conversation_id = first["conversation_id"]
    await comm.send_json_to(
        {"type": "message", "text": "second", "conversation_id": conversation_id}
    )
    last = (await frames_until(comm, is_end))[-1]
    await comm.send_json_to(
        {
            "type": "regenerate",
            "conversation_id": conversation_id,
            "message_id": first["message_id"],
        }
    )
    frames = await frames_until(comm, is_end)
    assert frames[0]["sibling_ids"] == [first["message_id"], frames[-1]["message_id"]]
    assert frames[-1]["content"] == "uno"
    prompt = fake_kobold.generations[2]["prompt"]
    assert "first question" in prompt and "second" not in prompt and "two" not in prompt
    conversation = await sync_to_async(Conversation.objects.get)(pk=conversation_id)
    assert conversation.current_leaf_id == frames[-1]["message_id"]
    row = await sync_to_async(Message.objects.get)(pk=last["message_id"])
    assert (row.content, row.status) == ("two", "complete")


async def test_regenerate_of_the_last_reply_by_id(
    kobold_settings, fake_kobold, socket_of
):
    """The id of the last reply is accepted: that reply is answered again."""
    fake_kobold.push(Script(tokens=["old"]), Script(tokens=["new"]))
    comm, user = await socket_of()
    await comm.send_to(text_data="question")
    first = (await frames_until(comm, is_end))[-1]
    await comm.send_json_to(
        {
            "type": "regenerate",
            "conversation_id": first["conversation_id"],
            "message_id": first["message_id"],
        }
    )
    assert (await frames_until(comm, is_end))[-1]["content"] == "new"


async def test_continue_after_stop_joins_the_text_and_counts_it_all(
    kobold_settings, fake_kobold, socket_of
):
    """A stopped reply can be continued; the new text starts after a space ("Her sails
    As I gaze", not "Her sailsAs I gaze"), and the metrics cover both generations."""
    fake_kobold.push(
        Script(tokens=["Her", " sails", " billow"], delay=0.4),
        Script(tokens=["As", " I", " gaze."]),
    )
    comm, user = await socket_of()
    await comm.send_to(text_data="A poem about boats")
    frames = await frames_until(comm, lambda f: f.get("text") == " sails")
    await comm.send_json_to({"type": "stop", "message_id": frames[-1]["message_id"]})
    first = (await frames_until(comm, is_end))[-1]
    assert (first["status"], first["content"]) == ("stopped", "Her sails")
    stopped = await _token_count_stored(first["message_id"])
    await comm.send_json_to(
        {
            "type": "continue",
            "conversation_id": first["conversation_id"],
            "message_id": first["message_id"],
        }
    )
    end = (await frames_until(comm, is_end))[-1]
    assert end["content"] == "Her sails As I gaze."
    earlier, total = first["metrics"], end["metrics"]
    # The quota counts each generation once: the ledger has the continuation's own.
    entries = await sync_to_async(list)(
        UsageEntry.objects.filter(message_id=first["message_id"])
        .order_by("id")
        .values_list("completion_tokens", flat=True)
    )
    assert len(entries) == 2 and entries[1] > 0
    assert total["completion_tokens"] == stopped + entries[1]
    assert total["ttft_ms"] == earlier["ttft_ms"]
    assert total["duration_ms"] >= earlier["duration_ms"]


async def _token_count_stored(message_id: int, timeout: float = 5.0) -> int:
    """The stopped reply's token count, stored beside its end (polled with a deadline)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        row = await sync_to_async(Message.objects.get)(pk=message_id)
        if row.token_count is not None:
            return row.token_count
        await asyncio.sleep(0.05)
    raise AssertionError("the token count of the stopped reply was never stored")
