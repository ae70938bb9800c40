"""A thinking model through the whole chat: reasoning streamed in its own frames, stored
apart from the answer, never sent back to the model, resumed and exported."""

import json

import pytest
from asgiref.sync import sync_to_async

from chat import exports
from chat.models import Conversation, Message
from kobold_fake.server import Script
from tests.chat.conftest import frames_until, is_end, message_row, open_socket

pytestmark = pytest.mark.django_db(transaction=True)

THINKING = ["<thi", "nk>The user", " greets me.", "</th", "ink>\n\nHello", " there!"]


def joined(frames, kind):
    return "".join(f["text"] for f in frames if f["type"] == kind)


async def test_a_think_reply_streams_reasoning_and_answer_apart(
    kobold_settings, fake_kobold, make_user, make_key
):
    """Reasoning frames carry the thinking (offsets of their own), token frames only the
    answer; `end` and the stored row have both, apart; the thinking time is measured."""
    fake_kobold.default_script = Script(tokens=THINKING, delay=0.02)
    user = await sync_to_async(make_user)()
    comm = await open_socket(await sync_to_async(make_key)(user))
    await comm.send_to(text_data="hello")
    frames = await frames_until(comm, is_end)
    assert joined(frames, "reasoning") == "The user greets me."
    assert joined(frames, "token") == "Hello there!"
    offsets = [f["offset"] for f in frames if f["type"] == "reasoning"]
    assert offsets[0] == 0 and offsets == sorted(offsets)
    end = frames[-1]
    assert end["content"] == "Hello there!"
    assert end["reasoning"] == "The user greets me."
    assert "<think>" not in end["html"] and "greets" in end["reasoning_html"]
    reply = await message_row(end["message_id"])
    assert reply.content == "Hello there!" and reply.reasoning == "The user greets me."
    assert reply.reasoning_ms is not None
    await comm.disconnect()


async def test_the_next_prompt_has_the_answer_and_not_the_reasoning(
    kobold_settings, fake_kobold, make_user, make_key
):
    fake_kobold.default_script = Script(tokens=THINKING)
    user = await sync_to_async(make_user)()
    comm = await open_socket(await sync_to_async(make_key)(user))
    await comm.send_to(text_data="hello")
    first = (await frames_until(comm, is_end))[-1]
    fake_kobold.default_script = Script(tokens=["Fine."])
    await comm.send_json_to(
        {
            "type": "message",
            "text": "how are you",
            "conversation_id": first["conversation_id"],
        }
    )
    await frames_until(comm, is_end)
    prompt = fake_kobold.generations[-1]["prompt"]
    assert "Hello there!" in prompt
    assert "greets me" not in prompt and "<think>" not in prompt
    await comm.disconnect()


async def test_a_closing_tag_first_rewinds_the_answer_into_reasoning(
    kobold_settings, fake_kobold, make_user, make_key
):
    """The template opened the thinking in the prompt: the text before `</think>` was
    streamed as answer, then a `rewind` takes it back and it arrives as reasoning."""
    fake_kobold.default_script = Script(
        tokens=["Let me", " think.", "</think>", "Answer."], delay=0.05
    )
    user = await sync_to_async(make_user)()
    comm = await open_socket(await sync_to_async(make_key)(user))
    await comm.send_to(text_data="question")
    frames = await frames_until(comm, is_end)
    kinds = [f["type"] for f in frames]
    assert "rewind" in kinds
    after = frames[kinds.index("rewind") :]
    assert after[0]["offset"] == 0
    assert joined(after, "token") == "Answer."
    assert joined(frames, "reasoning") == "Let me think."
    reply = await message_row(frames[-1]["message_id"])
    assert (reply.content, reply.reasoning) == ("Answer.", "Let me think.")
    await comm.disconnect()


async def test_a_socket_opened_mid_thinking_resumes_both_without_gap(
    kobold_settings, fake_kobold, make_user, make_key
):
    """The snapshot carries the reasoning so far and its offset; the frames after it
    complete both texts exactly once."""
    tokens = ["<think>"] + [f"r{i} " for i in range(20)] + ["</think>"]
    tokens += [f"a{i} " for i in range(10)]
    fake_kobold.default_script = Script(tokens=tokens, delay=0.03)
    user = await sync_to_async(make_user)()
    key = await sync_to_async(make_key)(user)
    first = await open_socket(key)
    await first.send_to(text_data="think hard")
    await frames_until(first, lambda f: f["type"] == "reasoning")
    second = await open_socket(key)
    frames = await frames_until(second, is_end)
    snapshot = next(f for f in frames if f["type"] == "snapshot")
    reasoning = snapshot["reasoning"] + joined(frames, "reasoning")
    answer = snapshot["content"] + joined(frames, "token")
    reply = await message_row(frames[-1]["message_id"])
    assert reasoning == reply.reasoning == "".join(f"r{i} " for i in range(20)).strip()
    assert answer == reply.content
    await first.disconnect()
    await second.disconnect()


def test_exports_carry_the_reasoning_and_import_keeps_it(make_user):
    """JSON has it as a field, Markdown as a folded <details> block; import reads it."""
    user = make_user()
    conversation = Conversation.objects.create(owner=user, title="Brief")
    Message.objects.create(conversation=conversation, role="user", content="Hi")
    Message.objects.create(
        conversation=conversation,
        role="assistant",
        content="Hello.",
        reasoning="I should be brief.",
        reasoning_ms=1200,
    )
    data = json.loads(exports.export_json(conversation))
    exported = [m for m in data["messages"] if m["role"] == "assistant"][0]
    assert exported["reasoning"] == "I should be brief."
    markdown = exports.export_markdown(conversation)
    assert "<details><summary>Thinking</summary>" in markdown
    copy = exports.conversation_import(owner=user, raw=json.dumps(data).encode())
    again = copy.messages.filter(role=Message.Role.ASSISTANT).first()
    assert (again.reasoning, again.reasoning_ms) == ("I should be brief.", 1200)
