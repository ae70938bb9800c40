"""chat/exports.py: JSON and Markdown exports, and the JSON import (validated, limited)."""

import json

import pytest

from chat import exports
from chat.errors import ChatError
from chat.models import Conversation, Message


@pytest.fixture
def conversation(make_user):
    owner = make_user("ada")
    conversation = Conversation.objects.create(
        owner=owner, title="Cats", system_prompt="Be brief.", temperature=0.3
    )
    Message.objects.create(
        conversation=conversation, role="user", content="Hi <b>cat</b>"
    )
    Message.objects.create(
        conversation=conversation,
        role="assistant",
        content="**Meow**",
        intent="chat",
        intent_source="heuristic",
        finish_reason="stop",
        completion_tokens=3,
    )
    return exports.with_messages(Conversation.objects.filter(pk=conversation.pk))[0]


def test_json_export_round_trips_through_import(conversation, make_user):
    """An export imported by another user gives the same settings and messages."""
    other = make_user("bob")
    raw = exports.export_json(conversation).encode()
    copy = exports.conversation_import(owner=other, raw=raw)
    assert copy.owner == other and copy.pk != conversation.pk
    assert (copy.title, copy.system_prompt, copy.temperature) == (
        "Cats",
        "Be brief.",
        0.3,
    )
    rows = list(
        copy.messages.values_list("role", "content", "intent", "completion_tokens")
    )
    assert rows == [
        ("user", "Hi <b>cat</b>", "", None),
        ("assistant", "**Meow**", "chat", 3),
    ]


def test_markdown_export_has_a_heading_per_message_and_raw_text(conversation):
    """The Markdown transcript names each speaker and keeps the text as written."""
    text = exports.export_markdown(conversation)
    assert text.startswith("# Cats\n")
    assert text.count("\n## User") == 1 and text.count("\n## Assistant") == 1
    assert "Hi <b>cat</b>" in text and "**Meow**" in text


def test_export_many_lists_each_conversation(conversation):
    """The admin's multi-export is a list of single exports."""
    document = json.loads(exports.export_json_many([conversation, conversation]))
    assert document["format"] == "koboldchat.conversations"
    assert [c["title"] for c in document["conversations"]] == ["Cats", "Cats"]


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"not json", "not JSON"),
        (b"[]", "Not a koboldchat conversation export"),
        (b'{"format": "other", "version": 1, "messages": []}', "format"),
        (
            b'{"format": "koboldchat.conversation", "version": 1,'
            b' "messages": [{"role": "wizard", "content": "x"}]}',
            "messages.0.role",
        ),
        (
            b'{"format": "koboldchat.conversation", "version": 1, "temperature": 9,'
            b' "messages": []}',
            "temperature",
        ),
    ],
)
def test_import_refuses_files_not_in_the_format(make_user, raw, fragment):
    """A bad file is a bad_request naming the problem, and stores nothing."""
    user = make_user()
    with pytest.raises(ChatError) as caught:
        exports.conversation_import(owner=user, raw=raw)
    assert caught.value.code == "bad_request" and fragment in caught.value.message
    assert not Conversation.objects.exists()


def test_import_refuses_a_file_over_the_size_limit(make_user, settings):
    """CHAT_MAX_IMPORT_BYTES is checked before parsing."""
    settings.CHAT_MAX_IMPORT_BYTES = 100
    with pytest.raises(ChatError, match="larger than 100 bytes"):
        exports.conversation_import(owner=make_user(), raw=b" " * 101)


def test_import_marks_pending_replies_interrupted(make_user):
    """A reply exported mid-stream has no job here, so it must not stay pending."""
    raw = json.dumps(
        {
            "format": "koboldchat.conversation",
            "version": 1,
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "half", "status": "streaming"},
            ],
        }
    ).encode()
    conversation = exports.conversation_import(owner=make_user(), raw=raw)
    assert list(conversation.messages.values_list("status", flat=True)) == [
        "complete",
        "interrupted",
    ]


def test_import_refuses_nul_characters(db, django_user_model):
    """PostgreSQL cannot store NUL: an export carrying one is a bad request, not a 500."""
    owner = django_user_model.objects.create_user("nul-owner")
    raw = json.dumps(
        {
            "format": "koboldchat.conversation",
            "version": 1,
            "title": "t\x00",
            "messages": [],
        }
    ).encode()
    with pytest.raises(ChatError) as error:
        exports.conversation_import(owner=owner, raw=raw)
    assert error.value.code == "bad_request"
