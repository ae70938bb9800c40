"""Where API exchanges are kept: one "API" conversation per key (source `api`), or, for a
key made with history off, a conversation of one exchange deleted once the reply settles
(the usage ledger keeps its count). Sync ORM: the views wrap these."""

from django.db import transaction

from chat.models import ApiKey, Conversation, Message
from chat.replies.exchanges import exchange_append


def _title(key: ApiKey) -> str:
    return f"API · {key.name or 'kc_' + key.prefix}"


def _conversation_for(key: ApiKey) -> Conversation:
    if key.keep_history:
        kept = Conversation.objects.filter(
            owner=key.user, api_key=key, source=Conversation.Source.API
        ).first()
        if kept is not None:
            return kept
    return Conversation.objects.create(
        owner=key.user, api_key=key, source=Conversation.Source.API, title=_title(key)
    )


def api_exchange_create(
    *, key: ApiKey, text: str
) -> tuple[Conversation, Message, Message]:
    """The caller's message and a queued reply in the key's API conversation, atomically:
    a refused request (rate limit, quota, a reply still running) leaves nothing."""
    with transaction.atomic():
        conversation = _conversation_for(key)
        user_message, assistant = exchange_append(
            user=key.user, conversation=conversation, text=text
        )
    return conversation, user_message, assistant


def api_exchange_forget(*, conversation_id: int) -> None:
    """Delete the conversation of one exchange of a key that keeps no history."""
    Conversation.objects.filter(
        pk=conversation_id,
        source=Conversation.Source.API,
        api_key__keep_history=False,
    ).delete()
