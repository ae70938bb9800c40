"""Finding 1: the per-minute limit counted the assistant rows that still existed, so
regenerating, continuing or deleting gave replies back. Every reply started is now an
entry of the usage ledger, which deletions do not touch."""

import pytest
from asgiref.sync import sync_to_async

from chat import services
from chat.errors import ChatError
from chat.models import Message, UsageEntry
from chat.replies import exchanges
from tests.chat.conftest import frames_until, is_end, open_socket

pytestmark = pytest.mark.django_db


def settle_replies() -> None:
    """The replies are written (no job runs in these tests): the next one may start."""
    Message.objects.pending().update(status=Message.Status.COMPLETE, content="done")


@pytest.fixture
def two_a_minute(settings):
    settings.CHAT_RATE_LIMIT_PER_MINUTE = 2
    return settings


def assert_rate_limited(start) -> None:
    with pytest.raises(ChatError) as refused:
        start()
    assert refused.value.code == "rate_limited" and refused.value.retry_after >= 1


def test_regenerating_does_not_give_replies_back(two_a_minute, make_user):
    """A message and a regeneration are two replies; a second regeneration is refused
    (the ledger counts replies started, whatever rows are kept)."""
    user = make_user()
    conversation, _, _ = exchanges.exchange_create(user=user, text="hi")
    settle_replies()
    exchanges.regeneration_create(user=user, conversation_id=conversation.pk)
    settle_replies()
    assert Message.objects.filter(role=Message.Role.ASSISTANT).count() == 2
    assert_rate_limited(
        lambda: exchanges.regeneration_create(
            user=user, conversation_id=conversation.pk
        )
    )


def test_continuing_counts_each_time(two_a_minute, make_user):
    """Continuing reuses the reply row, and still counts as a reply started."""
    user = make_user()
    conversation, _, _ = exchanges.exchange_create(user=user, text="hi")
    settle_replies()
    exchanges.continuation_prepare(user=user, conversation_id=conversation.pk)
    settle_replies()
    assert_rate_limited(
        lambda: exchanges.continuation_prepare(
            user=user, conversation_id=conversation.pk
        )
    )


def test_deleting_conversations_does_not_give_replies_back(two_a_minute, make_user):
    """The ledger keeps its entries when the conversation and its replies go."""
    user = make_user()
    for _ in range(2):
        conversation, _, _ = exchanges.exchange_create(user=user, text="hi")
        settle_replies()
        services.conversation_delete(conversation=conversation)
    assert Message.objects.count() == 0
    assert_rate_limited(lambda: exchanges.exchange_create(user=user, text="again"))
    assert UsageEntry.objects.filter(user=user).count() == 2


def test_every_way_of_starting_is_recorded_with_its_kind(make_user):
    """One entry per reply: how it started and which reply it was."""
    user = make_user()
    conversation, _, first = exchanges.exchange_create(user=user, text="hi")
    settle_replies()
    _, _, second = exchanges.regeneration_create(
        user=user, conversation_id=conversation.pk
    )
    settle_replies()
    exchanges.continuation_prepare(user=user, conversation_id=conversation.pk)
    entries = list(
        UsageEntry.objects.filter(user=user)
        .order_by("id")
        .values_list("kind", "message_id")
    )
    assert entries == [
        ("message", first.pk),
        ("regenerate", second.pk),
        ("continue", second.pk),
    ]


def test_a_refused_reply_records_nothing(two_a_minute, make_user):
    """Busy or over the limit: no reply row, no ledger entry."""
    user = make_user()
    exchanges.exchange_create(user=user, text="hi")
    with pytest.raises(ChatError):
        exchanges.exchange_create(user=user, text="while busy")
    assert UsageEntry.objects.count() == 1


@pytest.mark.django_db(transaction=True)
async def test_the_final_write_fills_the_tokens(kobold_settings, make_user, make_key):
    """A reply streamed by its job: the ledger entry gets the reply's prompt and
    completion tokens, and keeps them once the reply is deleted."""
    user = await sync_to_async(make_user)()
    comm = await open_socket(await sync_to_async(make_key)(user))
    await comm.send_to(text_data="count my tokens")
    end = (await frames_until(comm, is_end))[-1]
    await comm.disconnect()
    message = await sync_to_async(Message.objects.get)(pk=end["message_id"])
    entry = await sync_to_async(UsageEntry.objects.get)(message_id=message.pk)
    assert message.completion_tokens and message.prompt_tokens
    assert (entry.prompt_tokens, entry.completion_tokens) == (
        message.prompt_tokens,
        message.completion_tokens,
    )
    await sync_to_async(services.conversation_delete)(
        conversation=await sync_to_async(lambda: message.conversation)()
    )
    assert await sync_to_async(UsageEntry.objects.filter(pk=entry.pk).exists)()
