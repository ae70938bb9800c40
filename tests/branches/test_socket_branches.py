"""The conversation tree over the socket: an edit forks at the edited message, `select`
switches branches in every tab, and prompts hold only the branch shown."""

import pytest
from asgiref.sync import sync_to_async

from chat.models import Conversation, Message
from kobold_fake.server import Script
from tests.chat.conftest import frames_until, is_end, open_socket

pytestmark = pytest.mark.django_db(transaction=True)


def is_type(kind):
    return lambda frame: frame.get("type") == kind


@pytest.fixture
async def two_exchanges(kobold_settings, fake_kobold, make_user, make_key):
    """A socket, and a conversation Q1 → A1 → Q2 → A2; its frames' message ids."""
    user = await sync_to_async(make_user)()
    key = await sync_to_async(make_key)(user)
    comm = await open_socket(key)
    fake_kobold.push(Script(tokens=["A1"]), Script(tokens=["A2"]))
    await comm.send_to(text_data="Q1")
    first = await frames_until(comm, is_end)
    conversation_id = first[-1]["conversation_id"]
    await comm.send_json_to(
        {"type": "message", "text": "Q2", "conversation_id": conversation_id}
    )
    second = await frames_until(comm, is_end)
    ids = {
        "Q1": first[0]["message"]["id"],
        "A1": first[-1]["message_id"],
        "Q2": second[0]["message"]["id"],
        "A2": second[-1]["message_id"],
    }
    yield comm, user, key, conversation_id, ids
    await comm.disconnect()


async def test_an_edit_forks_at_the_edited_message(two_exchanges, fake_kobold):
    comm, user, _, conversation_id, ids = two_exchanges
    fake_kobold.push(Script(tokens=["A3"]))
    await comm.send_json_to({"type": "edit", "message_id": ids["Q1"], "text": "Q1b"})
    frames = await frames_until(comm, is_end)
    announce = frames[0]
    assert announce["type"] == "user_message" and announce["edit_of"] == ids["Q1"]
    edited = announce["message"]
    assert edited["parent_id"] is None
    assert edited["sibling_ids"] == [ids["Q1"], edited["id"]]
    assert frames[-1]["content"] == "A3"
    prompt = fake_kobold.generations[-1]["prompt"]
    assert "Q1b" in prompt
    assert not any(old in prompt for old in ("Q1\n", "A1", "Q2", "A2"))
    conversation = await sync_to_async(Conversation.objects.get)(pk=conversation_id)
    assert conversation.current_leaf_id == frames[-1]["message_id"]
    assert await sync_to_async(Message.objects.filter(pk=ids["A2"]).exists)()


async def test_select_shows_the_other_branch_in_every_tab(two_exchanges, fake_kobold):
    comm, user, key, conversation_id, ids = two_exchanges
    fake_kobold.push(Script(tokens=["A3"]), Script(tokens=["after"]))
    await comm.send_json_to({"type": "edit", "message_id": ids["Q1"], "text": "Q1b"})
    await frames_until(comm, is_end)
    other_tab = await open_socket(key)
    await comm.send_json_to({"type": "select", "message_id": ids["Q1"]})
    for tab in (comm, other_tab):
        branch = (await frames_until(tab, is_type("branch")))[-1]
        assert branch["path"] == [ids["Q1"], ids["A1"], ids["Q2"], ids["A2"]]
        assert branch["complete"] is True
        assert [m["id"] for m in branch["messages"]] == branch["path"]
        assert branch["messages"][0]["sibling_index"] == 0
    # The next message follows the branch shown: after A2, with Q1b's branch unread.
    await comm.send_json_to(
        {"type": "message", "text": "Q3", "conversation_id": conversation_id}
    )
    frames = await frames_until(comm, is_end)
    assert frames[0]["message"]["parent_id"] == ids["A2"]
    prompt = fake_kobold.generations[-1]["prompt"]
    assert "A2" in prompt and "Q1b" not in prompt and "A3" not in prompt
    await other_tab.disconnect()


async def test_select_while_a_reply_streams_is_busy(two_exchanges, fake_kobold):
    comm, user, _, conversation_id, ids = two_exchanges
    fake_kobold.push(Script(tokens=["slow"] * 50, delay=0.05))
    await comm.send_json_to({"type": "regenerate", "conversation_id": conversation_id})
    await frames_until(comm, is_type("token"))
    await comm.send_json_to({"type": "select", "message_id": ids["A2"]})
    error = (await frames_until(comm, is_type("error")))[-1]
    assert error["code"] == "busy"
    conversation = await sync_to_async(Conversation.objects.get)(pk=conversation_id)
    assert conversation.current_leaf_id != ids["A2"]  # still the reply being written
    await frames_until(comm, is_end)


async def test_another_users_message_cannot_be_selected_or_edited(
    two_exchanges, make_user, make_key
):
    _, _, _, _, ids = two_exchanges
    stranger = await sync_to_async(make_user)("mallory")
    comm = await open_socket(await sync_to_async(make_key)(stranger))
    for frame in (
        {"type": "select", "message_id": ids["A1"]},
        {"type": "edit", "message_id": ids["Q1"], "text": "mine now"},
    ):
        await comm.send_json_to(frame)
        assert (await frames_until(comm, is_type("error")))[-1]["code"] == "forbidden"
    await comm.disconnect()
