"""The rows a reply starts from, written atomically: a new exchange (the user's message and
a queued reply) at the end of the branch shown, an edit (a sibling user message, answered),
a regeneration (a sibling reply: the old one stays an alternative), a continuation (the
reply reopened in place), and the choice of a branch. Sync ORM: control.py wraps these."""

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from agents import start_trace
from agents.events import ChatTurn
from chat import tree
from chat.errors import ChatError
from chat.models import Conversation, Message
from chat.services import (
    conversation_create,
    conversation_get,
    conversation_latest_or_create,
    message_get,
    user_text_validate,
)
from chat.usage.ledger import usage_record_start
from chat.usage.models import UsageEntry
from chat.usage.quotas import reply_allowance_check

TITLE_LENGTH = 60


def _running_in(user, conversation_id=None) -> Message | None:
    rows = Message.objects.pending().filter(conversation__owner=user)
    if conversation_id is not None:
        rows = rows.filter(conversation_id=conversation_id)
    return rows.select_related("conversation").first()


def _busy(running: Message) -> ChatError:
    """The page says where the running reply is, to go to it or stop it."""
    where = {"conversation_id": running.conversation_id, "message_id": running.pk}
    return ChatError(
        "busy",
        "A reply is still being written; wait for it or stop it first.",
        details={"running": where | {"title": running.conversation.title}},
    )


def _reply_admit(user) -> None:
    """Serialize a user's reply creation so that 'one pending reply' and the ledger's
    limits hold under races; raise ChatError when one more reply may not start."""
    get_user_model().objects.select_for_update().filter(pk=user.pk).first()
    running = _running_in(user)
    if running is not None:
        raise _busy(running)
    reply_allowance_check(user)


def _show(conversation: Conversation, leaf: Message) -> None:
    """The new message is the end of the branch shown (Message.save made it so)."""
    conversation.current_leaf = leaf
    Conversation.objects.filter(pk=conversation.pk).update(updated_at=timezone.now())


def _assistant_create(conversation, *, user, kind: str, parent: Message) -> Message:
    assistant = Message.objects.create(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        status=Message.Status.QUEUED,
        heartbeat_at=timezone.now(),
        **tree.child_fields(parent),
    )
    _show(conversation, assistant)
    usage_record_start(user=user, kind=kind, message_id=assistant.pk)
    return assistant


def _leaf(conversation: Conversation) -> Message | None:
    leaf_id = tree.leaf_id(conversation)
    return Message.objects.filter(pk=leaf_id).first() if leaf_id else None


def _answered(conversation, user, text: str, parent: Message | None):
    user_message = Message(
        conversation=conversation,
        role=Message.Role.USER,
        content=text,
        **tree.child_fields(parent),
    )
    user_message.starts_root = parent is None
    user_message.save()
    assistant = _assistant_create(
        conversation, user=user, kind=UsageEntry.Kind.MESSAGE, parent=user_message
    )
    return user_message, assistant


def exchange_create(*, user, text, conversation_id=None, new_conversation=False):
    """Store the user's message and a queued assistant reply at the end of the branch
    shown, atomically (in a new conversation with `new_conversation`: a refused first
    message leaves nothing)."""
    text = user_text_validate(text)
    if new_conversation and conversation_id is not None:
        raise ChatError("bad_request", "Give conversation_id or new_conversation.")
    with transaction.atomic():
        if new_conversation:
            conversation = conversation_create(owner=user)
        elif conversation_id is None:
            conversation = conversation_latest_or_create(user=user)
        else:
            conversation = conversation_get(user=user, conversation_id=conversation_id)
        start_trace.mark("conversation")
        _reply_admit(user)
        start_trace.mark("admitted")
        if not conversation.title:
            conversation.title = " ".join(text.split())[:TITLE_LENGTH]
            conversation.save(update_fields=["title"])
        user_message, assistant = exchange_append(
            user=user, conversation=conversation, text=text, admitted=True
        )
        start_trace.mark("rows_written")
    return conversation, user_message, assistant


def exchange_append(*, user, conversation, text, admitted=False):
    """The user's message (`text` as given: the caller validated it) and a queued reply
    at the end of the branch shown of `conversation`; inside the caller's transaction.
    Raises ChatError when one more reply may not start (unless `admitted` already)."""
    if not admitted:
        _reply_admit(user)
    return _answered(conversation, user, text, _leaf(conversation))


def edit_create(*, user, message_id, text):
    """Edit a user message: the edited text becomes a sibling of it, answered; the old
    message keeps its branch."""
    text = user_text_validate(text)
    with transaction.atomic():
        original = message_get(user=user, message_id=message_id)
        if original.role != Message.Role.USER:
            raise ChatError("bad_request", "Only your own messages can be edited.")
        _reply_admit(user)
        conversation = original.conversation
        user_message, assistant = _answered(conversation, user, text, original.parent)
    return conversation, user_message, assistant


def regeneration_create(*, user, conversation_id, message_id=None):
    """Answer again the user message of reply `message_id` (default: the reply shown
    last): a new sibling reply, shown; the old one stays as an alternative."""
    with transaction.atomic():
        conversation = conversation_get(user=user, conversation_id=conversation_id)
        _reply_admit(user)
        target = _leaf(conversation)
        if message_id is not None:
            target = conversation.messages.filter(pk=message_id).first()
            if target is None:
                raise ChatError("bad_request", f"No message {message_id} here.")
        question = target.parent if target and target.role == "assistant" else target
        if question is None or question.role != Message.Role.USER:
            raise ChatError("bad_request", "There is no message to answer again.")
        assistant = _assistant_create(
            conversation, user=user, kind=UsageEntry.Kind.REGENERATE, parent=question
        )
    return conversation, question, assistant


def continuation_prepare(
    *, user, conversation_id, message_id=None
) -> tuple[Conversation, Message]:
    """Reopen the reply shown last (`message_id`, when given, must be it) so that it can
    be continued in place."""
    with transaction.atomic():
        conversation = conversation_get(user=user, conversation_id=conversation_id)
        _reply_admit(user)
        last = _leaf(conversation)
        if message_id is not None and (last is None or last.pk != message_id):
            raise ChatError(
                "bad_request",
                f"Message {message_id} is not the last reply of this conversation; "
                "only the last reply can be continued.",
            )
        if last is None or last.role != Message.Role.ASSISTANT or last.is_pending:
            raise ChatError("bad_request", "There is no reply to continue.")
        last.status = Message.Status.QUEUED
        last.heartbeat_at = timezone.now()
        last.html = ""  # the text grows: rendered again when the continuation settles
        last.save(update_fields=["status", "heartbeat_at", "html", "updated_at"])
        usage_record_start(user=user, kind=UsageEntry.Kind.CONTINUE, message_id=last.pk)
    return conversation, last


def branch_select(*, user, message_id) -> tuple[Conversation, Message]:
    """Show the branch of message `message_id`: its newest descendant becomes the
    conversation's current leaf. Refused while a reply of the conversation streams."""
    with transaction.atomic():
        chosen = message_get(user=user, message_id=message_id)
        conversation = Conversation.objects.select_for_update().get(
            pk=chosen.conversation_id
        )
        running = _running_in(user, conversation.pk)
        if running is not None:
            raise _busy(running)
        leaf = Message.objects.get(pk=tree.newest_descendant(chosen.pk))
        conversation.current_leaf = leaf
        conversation.save(update_fields=["current_leaf"])
    return conversation, chosen


def history_before(*, message: Message) -> list[ChatTurn]:
    """The finished turns of the path to `message`, oldest first (no other branch)."""
    turns = []
    for row in tree.path_messages(message.parent_id):
        if row.role == Message.Role.ASSISTANT and not row.content:
            continue
        turns.append(ChatTurn(row.role, row.content, row.token_count))
    return turns
