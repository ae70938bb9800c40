"""Write paths of the chat app (keyword-only, `<entity>_<action>`) and the payloads the
socket, the REST API and the page share. Sync ORM: async callers wrap these."""

from datetime import UTC, datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from chat.errors import ChatError
from chat.models import ApiKey, Conversation, Message
from chat.pool.registry import models_served
from chat.socket.revocation import close_sockets, key_group
from chat.usage.ledger import usage_record_tokens


def _text_checked(value, name: str):
    """PostgreSQL cannot store NUL characters: refuse them as bad input everywhere."""
    if isinstance(value, str) and "\x00" in value:
        raise ChatError("bad_request", f"The {name} contains a NUL character.")
    return value


def conversation_create(*, owner, title: str = "") -> Conversation:
    title = _text_checked(title, "title")
    return Conversation.objects.create(owner=owner, title=title.strip()[:200])


def conversation_get(*, user, conversation_id) -> Conversation:
    """The user's conversation; another user's id is reported exactly like a missing one."""
    if not isinstance(conversation_id, int) or isinstance(conversation_id, bool):
        raise ChatError("bad_request", "conversation_id must be an integer.")
    conversation = Conversation.objects.filter(pk=conversation_id, owner=user).first()
    if conversation is None:
        raise ChatError("forbidden", "No such conversation.")
    return conversation


def conversation_latest_or_create(*, user) -> Conversation:
    """The user's latest page conversation (an API one is its key's), or a new one."""
    page = Conversation.objects.owned_by(user).filter(source=Conversation.Source.PAGE)
    return page.first() or conversation_create(owner=user)


def conversation_update_settings(
    *, conversation: Conversation, **fields
) -> Conversation:
    allowed = {
        "title", "system_prompt", "temperature", "top_p", "max_tokens",
        "show_thinking", "reasoning_effort", "model",
    }  # fmt: skip
    unknown = set(fields) - allowed
    if unknown:
        raise ChatError(
            "bad_request", f"Unknown settings: {', '.join(sorted(unknown))}."
        )
    limit = settings.CHAT_MAX_MESSAGE_CHARS
    if len(fields.get("system_prompt") or "") > limit:
        raise ChatError(
            "bad_request", f"The system prompt is longer than {limit} characters."
        )
    if fields.get("model") and fields["model"] not in models_served():
        raise ChatError("bad_request", f"No enabled backend serves {fields['model']}.")
    for name, value in fields.items():
        setattr(conversation, name, _text_checked(value, name.replace("_", " ")))
    conversation.save(update_fields=list(fields))
    return conversation


def conversation_delete(*, conversation: Conversation) -> None:
    conversation.delete()


def api_keys_revoke(*, keys) -> int:
    """Revoke the active keys among `keys` (a queryset); the sockets opened with them
    close. Returns how many were revoked."""
    with transaction.atomic():
        ids = list(keys.active().select_for_update().values_list("pk", flat=True))
        ApiKey.objects.filter(pk__in=ids).update(revoked_at=timezone.now())
        close_sockets(*[key_group(pk) for pk in ids])
    return len(ids)


def message_get(*, user, message_id) -> Message:
    if not isinstance(message_id, int) or isinstance(message_id, bool):
        raise ChatError("bad_request", "message_id must be an integer.")
    message = (
        Message.objects.select_related("conversation")
        .filter(pk=message_id, conversation__owner=user)
        .first()
    )
    if message is None:
        raise ChatError("forbidden", "No such message.")
    return message


def user_text_validate(text) -> str:
    if not isinstance(text, str):
        raise ChatError("bad_request", "The message must be text.")
    if not text.strip():
        raise ChatError("bad_request", "The message is empty.")
    _text_checked(text, "message")
    limit = settings.CHAT_MAX_MESSAGE_CHARS
    if len(text) > limit:
        raise ChatError(
            "bad_request", f"The message is longer than {limit} characters."
        )
    return text


def message_token_counts(*, counts: dict[int, int]) -> None:
    """Store each message's token count (counted once, after its reply ended)."""
    for message_id, count in counts.items():
        Message.objects.filter(pk=message_id).update(token_count=count)


def reply_checkpoint(*, message_id: int, content: str, reasoning: str = "") -> None:
    Message.objects.filter(pk=message_id).update(
        content=content,
        reasoning=reasoning,
        heartbeat_at=timezone.now(),
        updated_at=timezone.now(),
    )


def reply_heartbeat(*, message_ids) -> None:
    Message.objects.filter(pk__in=list(message_ids)).update(heartbeat_at=timezone.now())


def reply_update(*, message_id: int, generation_tokens=None, **fields) -> None:
    """`generation_tokens`: (prompt, completion) tokens of this generation for the quota,
    when the stored counts cover more (a continued reply counts all its generations)."""
    fields.setdefault("heartbeat_at", timezone.now())
    fields["updated_at"] = timezone.now()
    Message.objects.filter(pk=message_id).update(**fields)
    if generation_tokens is None and (
        "prompt_tokens" in fields or "completion_tokens" in fields
    ):
        generation_tokens = (
            fields.get("prompt_tokens"),
            fields.get("completion_tokens"),
        )
    if generation_tokens is not None:
        # The final write of a generation: its tokens count in the user's quota.
        prompt_tokens, completion_tokens = generation_tokens
        usage_record_tokens(
            message_id=message_id,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
        )


# The heartbeat of a reply given up at shutdown: stale for every process at once.
RELEASED_AT = datetime(2000, 1, 1, tzinfo=UTC)


def reply_release(*, message_ids, content=None, reasoning="") -> None:
    """Replies this process gives up as it stops (chat.replies.drain): their text kept,
    their heartbeat made stale, so that the next process takes them over at once."""
    fields = {"heartbeat_at": RELEASED_AT, "updated_at": timezone.now()}
    if content is not None:
        fields.update(content=content, reasoning=reasoning)
    Message.objects.filter(pk__in=list(message_ids)).update(**fields)


def conversation_payload(conversation: Conversation, last_status: str = "") -> dict:
    return {
        "id": conversation.pk,
        "title": conversation.title,
        "created_at": conversation.created_at.isoformat(),
        "updated_at": conversation.updated_at.isoformat(),
        "system_prompt": conversation.system_prompt,
        "temperature": conversation.temperature,
        "top_p": conversation.top_p,
        "max_tokens": conversation.max_tokens,
        "show_thinking": conversation.show_thinking,
        "reasoning_effort": conversation.reasoning_effort,
        "model": conversation.model,
        "last_status": last_status,
    }
