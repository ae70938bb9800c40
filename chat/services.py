"""Write paths of the chat app (keyword-only, `<entity>_<action>`) and the payloads the
socket, the REST API and the page share. Sync ORM: async callers wrap these."""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from agents.events import ChatTurn
from chat.errors import ChatError
from chat.models import Conversation, Message

TITLE_LENGTH = 60


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
    return Conversation.objects.owned_by(user).first() or conversation_create(
        owner=user
    )


def conversation_update_settings(
    *, conversation: Conversation, **fields
) -> Conversation:
    allowed = {"title", "system_prompt", "temperature", "top_p", "max_tokens"}
    unknown = set(fields) - allowed
    if unknown:
        raise ChatError(
            "bad_request", f"Unknown settings: {', '.join(sorted(unknown))}."
        )
    for name, value in fields.items():
        setattr(conversation, name, _text_checked(value, name.replace("_", " ")))
    conversation.save(update_fields=list(fields))
    return conversation


def conversation_delete(*, conversation: Conversation) -> None:
    conversation.delete()


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


def _rate_limit_check(user) -> None:
    limit = settings.CHAT_RATE_LIMIT_PER_MINUTE
    if limit <= 0:
        return
    since = timezone.now() - timedelta(seconds=60)
    recent = list(
        Message.objects.filter(
            conversation__owner=user, role=Message.Role.ASSISTANT, created_at__gte=since
        )
        .order_by("created_at")
        .values_list("created_at", flat=True)[:limit]
    )
    if len(recent) >= limit:
        retry_after = max(1, int((recent[0] - since).total_seconds()) + 1)
        raise ChatError(
            "rate_limited",
            f"Too many messages: at most {limit} a minute.",
            retry_after=retry_after,
        )


def _lock_user(user) -> None:
    """Serialize a user's reply creation so that 'one pending reply' holds under races."""
    get_user_model().objects.select_for_update().filter(pk=user.pk).first()
    if Message.objects.pending().filter(conversation__owner=user).exists():
        raise ChatError(
            "busy", "A reply is still being written; wait for it or stop it first."
        )
    _rate_limit_check(user)


def _assistant_create(conversation: Conversation) -> Message:
    now = timezone.now()
    Conversation.objects.filter(pk=conversation.pk).update(updated_at=now)
    return Message.objects.create(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        status=Message.Status.QUEUED,
        heartbeat_at=now,
    )


def exchange_create(*, user, text, conversation_id=None):
    """Store the user's message and a queued assistant reply, atomically."""
    text = user_text_validate(text)
    with transaction.atomic():
        if conversation_id is None:
            conversation = conversation_latest_or_create(user=user)
        else:
            conversation = conversation_get(user=user, conversation_id=conversation_id)
        _lock_user(user)
        if not conversation.title:
            conversation.title = " ".join(text.split())[:TITLE_LENGTH]
            conversation.save(update_fields=["title"])
        user_message = Message.objects.create(
            conversation=conversation, role=Message.Role.USER, content=text
        )
        assistant = _assistant_create(conversation)
    return conversation, user_message, assistant


def regeneration_create(*, user, conversation_id):
    """Replace the last reply of a conversation with a new queued one."""
    with transaction.atomic():
        conversation = conversation_get(user=user, conversation_id=conversation_id)
        _lock_user(user)
        last = conversation.messages.order_by("-created_at", "-id").first()
        if last is not None and last.role == Message.Role.ASSISTANT:
            last.delete()
            last = conversation.messages.order_by("-created_at", "-id").first()
        if last is None or last.role != Message.Role.USER:
            raise ChatError("bad_request", "There is no message to answer again.")
        assistant = _assistant_create(conversation)
    return conversation, last, assistant


def continuation_prepare(*, user, conversation_id) -> tuple[Conversation, Message]:
    """Reopen the last reply, cut by the length limit, so that it can be continued."""
    with transaction.atomic():
        conversation = conversation_get(user=user, conversation_id=conversation_id)
        _lock_user(user)
        last = conversation.messages.order_by("-created_at", "-id").first()
        if last is None or last.role != Message.Role.ASSISTANT or last.is_pending:
            raise ChatError("bad_request", "There is no reply to continue.")
        last.status = Message.Status.QUEUED
        last.heartbeat_at = timezone.now()
        last.html = ""  # the text grows: rendered again when the continuation settles
        last.save(update_fields=["status", "heartbeat_at", "html", "updated_at"])
    return conversation, last


def history_before(*, message: Message) -> list[ChatTurn]:
    """The finished turns of the conversation before `message`, oldest first."""
    rows = (
        Message.objects.filter(
            conversation_id=message.conversation_id, id__lt=message.id
        )
        .exclude(role=Message.Role.ASSISTANT, content="")
        .order_by("created_at", "id")
        .values_list("role", "content")
    )
    return [ChatTurn(role=role, content=content) for role, content in rows]


def reply_checkpoint(*, message_id: int, content: str) -> None:
    Message.objects.filter(pk=message_id).update(
        content=content, heartbeat_at=timezone.now(), updated_at=timezone.now()
    )


def reply_heartbeat(*, message_ids) -> None:
    Message.objects.filter(pk__in=list(message_ids)).update(heartbeat_at=timezone.now())


def reply_update(*, message_id: int, **fields) -> None:
    fields.setdefault("heartbeat_at", timezone.now())
    fields["updated_at"] = timezone.now()
    Message.objects.filter(pk=message_id).update(**fields)


def replies_reap(*, stale_seconds: float) -> int:
    """Mark replies whose job stopped beating as interrupted; the checkpoint stays."""
    cutoff = timezone.now() - timedelta(seconds=stale_seconds)
    return (
        Message.objects.pending()
        .filter(heartbeat_at__lt=cutoff)
        .update(
            status=Message.Status.INTERRUPTED,
            error_code="interrupted",
            html="",  # a continued reply's old rendering; the checkpoint renders on view
            updated_at=timezone.now(),
        )
    )


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
        "last_status": last_status,
    }
