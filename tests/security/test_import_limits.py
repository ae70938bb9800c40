"""Finding 6: an import skipped the limits of live input. Messages and the system prompt
get CHAT_MAX_MESSAGE_CHARS (the model's replies REPLY_CHARS_FACTOR times that), a file
at most CHAT_MAX_IMPORT_MESSAGES messages, no date in the future, bounded numbers."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from chat import exports
from chat.api.schemas import REPLY_CHARS_FACTOR
from chat.errors import ChatError
from chat.models import Conversation

pytestmark = pytest.mark.django_db


def export(*messages: dict, **fields) -> bytes:
    document = {"format": "koboldchat.conversation", "version": 1} | fields
    return json.dumps(document | {"messages": list(messages)}).encode()


def refused(user, raw: bytes) -> str:
    with pytest.raises(ChatError) as caught:
        exports.conversation_import(owner=user, raw=raw)
    assert caught.value.code == "bad_request"
    assert not Conversation.objects.exists()
    return caught.value.message


@pytest.fixture
def short_messages(settings):
    settings.CHAT_MAX_MESSAGE_CHARS = 50
    return settings


def test_a_user_message_over_the_limit_is_refused(make_user, short_messages):
    message = refused(make_user(), export({"role": "user", "content": "x" * 51}))
    assert "longer than 50 characters" in message


def test_a_system_prompt_over_the_limit_is_refused(make_user, short_messages):
    message = refused(make_user(), export(system_prompt="x" * 51))
    assert "system prompt is longer than 50 characters" in message


def test_a_reply_may_be_longer_than_a_message_but_is_bounded(make_user, short_messages):
    """A model's reply may run past what a person may type, within a bound."""
    user = make_user()
    long_reply = {"role": "assistant", "content": "x" * 51}
    assert exports.conversation_import(owner=user, raw=export(long_reply))
    Conversation.objects.all().delete()
    too_long = {"role": "assistant", "content": "x" * (50 * REPLY_CHARS_FACTOR + 1)}
    assert "longer than" in refused(user, export(too_long))


def test_the_live_system_prompt_has_the_same_limit(make_user, short_messages):
    """PATCH of a conversation's system prompt: the limit of an import."""
    from chat import services

    conversation = services.conversation_create(owner=make_user())
    with pytest.raises(ChatError, match="longer than 50 characters"):
        services.conversation_update_settings(
            conversation=conversation, system_prompt="x" * 51
        )


def test_too_many_messages_are_refused(make_user, settings):
    settings.CHAT_MAX_IMPORT_MESSAGES = 3
    messages = [{"role": "user", "content": "hi"}] * 4
    assert "more than 3 messages" in refused(make_user(), export(*messages))


@pytest.mark.parametrize("where", ["message", "conversation"])
def test_dates_in_the_future_are_refused(make_user, where):
    tomorrow = (timezone.now() + timedelta(days=1)).isoformat()
    message = {"role": "user", "content": "hi"}
    if where == "message":
        raw = export(message | {"created_at": tomorrow})
    else:
        raw = export(message, updated_at=tomorrow)
    assert "in the future" in refused(make_user(), raw)


def test_a_date_without_a_zone_is_utc(make_user):
    """A hand-written date without an offset is read as UTC (and not a 500)."""
    raw = export({"role": "user", "content": "hi", "created_at": "2024-05-01T10:00:00"})
    conversation = exports.conversation_import(owner=make_user(), raw=raw)
    stored = conversation.messages.get().created_at
    assert stored.isoformat() == "2024-05-01T10:00:00+00:00"


@pytest.mark.parametrize("value", [-1, 10**8])
def test_token_counts_are_bounded(make_user, value):
    raw = export({"role": "assistant", "content": "a", "completion_tokens": value})
    assert "completion_tokens" in refused(make_user(), raw)


def test_the_text_backslash_u0000_is_text_and_a_real_nul_is_refused(make_user):
    """Finding 8: only a real NUL character is refused; the six characters `\\u0000`
    (as in a message about JSON escapes) are imported as written."""
    user = make_user()
    harmless = "escape NUL as \\u0000 in JSON"
    conversation = exports.conversation_import(
        owner=user, raw=export({"role": "user", "content": harmless})
    )
    assert conversation.messages.get().content == harmless
    Conversation.objects.all().delete()
    assert "NUL" in refused(user, export({"role": "user", "content": "a\x00b"}))
