"""Conversations out to JSON and Markdown, and back in from JSON (validated, size-limited).
Shared by the REST API and the admin so that both give the same files."""

import json
from collections.abc import Iterable

from django.conf import settings
from django.db import transaction
from django.db.models import Prefetch, QuerySet
from django.utils import timezone
from pydantic import ValidationError

from chat.api.export_format import ExportedConversation
from chat.errors import ChatError
from chat.models import Conversation, Message
from chat.rendering import render_markdown

FORMAT = "koboldchat.conversation"
FORMAT_MANY = "koboldchat.conversations"
VERSION = 2  # 2: the whole tree (ids, parents, the leaf shown); 1 still imports
MESSAGE_FIELDS = (
    "role",
    "content",
    "reasoning",
    "reasoning_ms",
    "status",
    "intent",
    "intent_source",
    "finish_reason",
    "error_code",
    "prompt_tokens",
    "completion_tokens",
    "ttft_ms",
    "duration_ms",
)
ROLE_HEADINGS = {"system": "System", "user": "User", "assistant": "Assistant"}


def with_messages(conversations: QuerySet) -> QuerySet:
    """Conversations with their messages in order, in two queries whatever their number."""
    ordered = Message.objects.order_by("id")  # a parent before its children
    return conversations.select_related("owner").prefetch_related(
        Prefetch("messages", queryset=ordered)
    )


def conversation_export(conversation: Conversation) -> dict:
    """One conversation in the export format (the importer reads exactly this)."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "title": conversation.title,
        "system_prompt": conversation.system_prompt,
        "temperature": conversation.temperature,
        "top_p": conversation.top_p,
        "max_tokens": conversation.max_tokens,
        "created_at": conversation.created_at.isoformat(),
        "updated_at": conversation.updated_at.isoformat(),
        "messages": [
            {"id": m.pk, "parent": m.parent_id}
            | {name: getattr(m, name) for name in MESSAGE_FIELDS}
            | {"created_at": m.created_at.isoformat()}
            for m in conversation.messages.all()
        ],
        "current": shown_path(conversation)[-1].pk
        if conversation.messages.all()
        else None,
    }


def shown_path(conversation: Conversation) -> list[Message]:
    """The branch shown, root first, from the prefetched messages (no query)."""
    rows = {m.pk: m for m in conversation.messages.all()}
    leaf = rows.get(conversation.current_leaf_id) or (rows[max(rows)] if rows else None)
    path = []
    while leaf is not None:
        path.append(leaf)
        leaf = rows.get(leaf.parent_id)
    return path[::-1]


def alternatives(conversation: Conversation) -> dict[int | None, list[Message]]:
    """The prefetched messages grouped by parent, oldest first."""
    groups: dict[int | None, list[Message]] = {}
    for message in conversation.messages.all():
        groups.setdefault(message.parent_id, []).append(message)
    return groups


def export_json(conversation: Conversation) -> str:
    return json.dumps(conversation_export(conversation), ensure_ascii=False, indent=2)


def export_json_many(conversations: Iterable[Conversation]) -> str:
    """Several conversations (the admin action): each one in the single format."""
    document = {
        "format": FORMAT_MANY,
        "version": VERSION,
        "conversations": [conversation_export(c) for c in conversations],
    }
    return json.dumps(document, ensure_ascii=False, indent=2)


def export_markdown(conversation: Conversation) -> str:
    """A transcript to read: a heading per message, the text as written."""
    lines = [f"# {conversation.title or f'Conversation {conversation.pk}'}", ""]
    lines.append(f"_Exported from koboldchat on {timezone.now():%Y-%m-%d %H:%M} UTC._")
    if conversation.system_prompt:
        lines += ["", "**System prompt:**", "", conversation.system_prompt]
    groups = alternatives(conversation)
    for message in shown_path(conversation):
        heading = ROLE_HEADINGS.get(message.role, message.role)
        lines += ["", f"## {heading} — {_when(message)}", ""]
        lines += _markdown_body(message)
        others = [m for m in groups.get(message.parent_id, []) if m.pk != message.pk]
        if others:  # the alternatives, folded under the one shown
            what = "replies" if message.role == Message.Role.ASSISTANT else "versions"
            lines += ["", f"<details><summary>Other {what} ({len(others)})</summary>"]
            for other in others:
                lines += ["", f"### {_when(other)}", ""] + _markdown_body(other)
            lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def _when(message: Message) -> str:
    note = "" if message.status == Message.Status.COMPLETE else f" ({message.status})"
    return f"{message.created_at:%Y-%m-%d %H:%M}{note}"


def _markdown_body(message: Message) -> list[str]:
    lines = []
    if message.reasoning:
        lines += ["<details><summary>Thinking</summary>", "", message.reasoning]
        lines += ["", "</details>", ""]
    return lines + [message.content]


def export_markdown_many(conversations: Iterable[Conversation]) -> str:
    return "\n---\n\n".join(export_markdown(c) for c in conversations)


def conversation_import(*, owner, raw: bytes) -> Conversation:
    """Create a conversation of `owner` from an export file. Raises ChatError
    (bad_request) for a file that is too big, not JSON, or not in the format."""
    limit = settings.CHAT_MAX_IMPORT_BYTES
    if len(raw) > limit:
        raise ChatError("bad_request", f"The file is larger than {limit} bytes.")
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ChatError("bad_request", f"The file is not JSON: {exc}.") from exc
    except RecursionError as exc:
        raise ChatError("bad_request", "The file is nested too deeply.") from exc
    try:
        document = ExportedConversation.model_validate(data)
    except ValidationError as exc:
        raise ChatError("bad_request", _validation_summary(exc)) from exc
    if _has_nul(document):  # PostgreSQL cannot store NUL characters
        raise ChatError("bad_request", "The file contains a NUL character.")
    return _conversation_store(owner=owner, document=document)


def _has_nul(document: ExportedConversation) -> bool:
    """A real NUL in any text to be stored (the six characters `\\u0000` are text)."""
    texts = [document.title, document.system_prompt]
    for message in document.messages:
        texts += [
            value for value in message.model_dump().values() if isinstance(value, str)
        ]
    return any("\x00" in text for text in texts)


def _validation_summary(exc: ValidationError) -> str:
    problems = [
        f"{'.'.join(str(p) for p in error['loc']) or 'file'}: {error['msg']}"
        for error in exc.errors()[:5]
    ]
    return "Not a koboldchat conversation export: " + "; ".join(problems) + "."


def _conversation_store(*, owner, document: ExportedConversation) -> Conversation:
    now = timezone.now()
    with transaction.atomic():
        conversation = Conversation.objects.create(
            owner=owner,
            title=document.title.strip(),
            system_prompt=document.system_prompt,
            temperature=document.temperature,
            top_p=document.top_p,
            max_tokens=document.max_tokens,
            updated_at=now,
        )
        rows = Message.objects.bulk_create(
            [
                Message(
                    conversation=conversation,
                    **_imported_fields(m.model_dump(exclude={"id", "parent"}), now),
                )
                for m in document.messages
            ]
        )
        _link(conversation, rows, document)
    return conversation


def _link(conversation, rows: list[Message], document: ExportedConversation) -> None:
    """The tree of the file (version 1: each message follows the one before), and the
    leaf shown (the file's `current`, or the last message)."""
    by_file_id: dict[int, Message] = {}
    for index, (row, message) in enumerate(zip(rows, document.messages, strict=True)):
        if document.version == 1:
            row.parent = rows[index - 1] if index else None
        else:
            row.parent = by_file_id.get(message.parent)
            by_file_id[message.id] = row
        row.depth = row.parent.depth + 1 if row.parent else 0
    Message.objects.bulk_update(rows, ["parent", "depth"], batch_size=2000)
    if rows:
        leaf = (
            by_file_id.get(document.current) if document.current is not None else None
        )
        conversation.current_leaf = leaf or rows[-1]
        conversation.save(update_fields=["current_leaf"])


def _imported_fields(fields: dict, now) -> dict:
    # A reply that was still being written has no job here: it would block the user's
    # next message and wait for a reaper, so it arrives as interrupted.
    if fields["status"] in Message.PENDING_STATUSES:
        fields["status"] = Message.Status.INTERRUPTED
    fields["created_at"] = fields["created_at"] or now
    if fields["role"] == Message.Role.ASSISTANT:
        fields["html"] = render_markdown(fields["content"])
    return fields
