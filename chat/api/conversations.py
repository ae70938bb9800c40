"""REST endpoints for a user's conversations: list and search, create, read, change,
delete, their messages page by page, export and import."""

from collections.abc import Callable
from typing import Literal

from channels.db import database_sync_to_async
from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from ninja import File, Path, Query, Router, Schema, Status
from ninja.files import UploadedFile
from pydantic import Field

from chat import exports, protocol, services, tree
from chat.api.auth import KEY_OR_SESSION
from chat.api.schemas import (
    BranchOut,
    BranchSelectIn,
    ConversationCreateIn,
    ConversationDetailOut,
    ConversationOut,
    ConversationPage,
    ConversationSettingsIn,
    ErrorOut,
    MessagePage,
)
from chat.errors import ChatError
from chat.models import Conversation, Message
from chat.replies import control

MAX_ID = 2**63 - 1  # larger ids cannot exist, and would overflow the database driver
ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut}
EXPORT_TYPES = {
    "json": ("application/json", "json", exports.export_json),
    "markdown": ("text/markdown", "md", exports.export_markdown),
}

router = Router(tags=["conversations"], auth=KEY_OR_SESSION)
ConversationId = Path(..., ge=1, le=MAX_ID, description="A conversation of yours.")


class Paging(Schema):
    page: int = Field(1, ge=1, le=1_000_000)
    page_size: int = Field(20, ge=1, le=100)


class ConversationSearch(Paging):
    q: str = Field("", max_length=200, description="Words in the title or messages.")


class ExportQuery(Schema):
    format: Literal["json", "markdown"] = "json"


def page_of(
    queryset: QuerySet, paging: Paging, to_payload: Callable, *, from_end=False
) -> dict:
    """One page of `queryset`. With `from_end` (a total ordering), a page past the middle
    is read backwards with the smaller OFFSET: the last page of a long conversation, the
    one a client wants first, costs what the first page costs."""
    count = queryset.count()
    start = (paging.page - 1) * paging.page_size
    end = min(start + paging.page_size, count)
    if start >= count:
        rows = []
    elif from_end and start > count // 2:
        rows = list(queryset.reverse()[count - end : count - start])[::-1]
    else:
        rows = list(queryset[start:end])
    return {
        "items": [to_payload(row) for row in rows],
        "count": count,
        "page": paging.page,
        "page_size": paging.page_size,
    }


def _conversation(request: HttpRequest, conversation_id: int) -> Conversation:
    return services.conversation_get(user=request.auth, conversation_id=conversation_id)


def _with_status(conversation: Conversation) -> dict:
    return services.conversation_payload(conversation, conversation.last_status or "")


@router.get("", response={200: ConversationPage, **ERRORS})
def conversation_list(request: HttpRequest, filters: Query[ConversationSearch]):
    """Your conversations, most recently active first; `q` searches titles and text."""
    queryset = (
        Conversation.objects.owned_by(request.auth).search(filters.q).with_last_status()
    )
    return page_of(queryset, filters, _with_status)


@router.post("", response={201: ConversationOut, **ERRORS})
def conversation_new(request: HttpRequest, body: ConversationCreateIn):
    conversation = services.conversation_create(owner=request.auth, title=body.title)
    return Status(201, services.conversation_payload(conversation))


@router.post("/import", response={201: ConversationOut, **ERRORS})
def conversation_import(request: HttpRequest, file: File[UploadedFile]):
    """Create a conversation from a JSON export (multipart field `file`)."""
    limit = settings.CHAT_MAX_IMPORT_BYTES
    if file.size is None or file.size > limit:
        raise ChatError("bad_request", f"The file is larger than {limit} bytes.")
    conversation = exports.conversation_import(owner=request.auth, raw=file.read())
    return Status(
        201, services.conversation_payload(conversation, _last_status(conversation))
    )


@router.get("/{conversation_id}", response={200: ConversationDetailOut, **ERRORS})
def conversation_detail(request: HttpRequest, conversation_id: int = ConversationId):
    conversation = _conversation(request, conversation_id)
    payload = services.conversation_payload(conversation, _last_status(conversation))
    return payload | {"message_count": conversation.messages.count()}


@router.patch("/{conversation_id}", response={200: ConversationOut, **ERRORS})
def conversation_change(
    request: HttpRequest,
    body: ConversationSettingsIn,
    conversation_id: int = ConversationId,
):
    """Rename, or change the system prompt, sampler and thinking settings (only the
    fields sent)."""
    conversation = _conversation(request, conversation_id)
    fields = body.model_dump(exclude_unset=True)
    for text_field in ("title", "system_prompt", "reasoning_effort", "model"):
        if text_field in fields and fields[text_field] is None:
            fields[text_field] = ""
    if fields.get("show_thinking", False) is None:
        fields["show_thinking"] = True
    limit = settings.CHAT_MAX_MESSAGE_CHARS
    if len(fields.get("system_prompt", "")) > limit:
        raise ChatError("bad_request", f"The system prompt is over {limit} characters.")
    if "title" in fields:
        fields["title"] = fields["title"].strip()
    if fields:
        services.conversation_update_settings(conversation=conversation, **fields)
    return services.conversation_payload(conversation, _last_status(conversation))


@router.delete("/{conversation_id}", response={204: None, **ERRORS})
def conversation_remove(request: HttpRequest, conversation_id: int = ConversationId):
    """Delete the conversation and all its messages."""
    services.conversation_delete(conversation=_conversation(request, conversation_id))
    return Status(204, None)


@router.get("/{conversation_id}/messages", response={200: MessagePage, **ERRORS})
def conversation_messages(
    request: HttpRequest,
    paging: Query[Paging],
    conversation_id: int = ConversationId,
):
    """The messages of the branch shown, oldest first (the last page holds the latest);
    each says its parent and its alternatives (`sibling_ids`)."""
    conversation = _conversation(request, conversation_id)
    leaf_id = tree.leaf_id(conversation)
    depth = Message.objects.filter(pk=leaf_id).values_list("depth", flat=True).first()
    count = 0 if depth is None else depth + 1
    start = (paging.page - 1) * paging.page_size
    rows = []
    if start < count:  # the path read upwards from the leaf, only as far as the page
        ids = tree.path_ids(leaf_id, limit=count - start)[: paging.page_size]
        rows = list(Message.objects.filter(pk__in=ids).order_by("depth"))
    siblings = tree.siblings_of(rows)
    return {
        "items": [protocol.message_payload(row, siblings) for row in rows],
        "count": count,
        "page": paging.page,
        "page_size": paging.page_size,
    }


@router.post(
    "/{conversation_id}/select",
    response={200: BranchOut, 409: ErrorOut, **ERRORS},
)
async def conversation_select(
    request: HttpRequest, body: BranchSelectIn, conversation_id: int = ConversationId
):
    """Show the branch of message `message_id` (an alternative reply, or an edit): its
    newest descendant becomes the end of the conversation; every open tab follows.
    Refused (409 busy) while a reply of the conversation is being written."""
    message = await database_sync_to_async(services.message_get)(
        user=request.auth, message_id=body.message_id
    )
    if message.conversation_id != conversation_id:
        raise ChatError("forbidden", "No such message in this conversation.")
    frame = await control.branch_select(user=request.auth, message_id=message.pk)
    return {"conversation_id": conversation_id, "path": frame["path"]}


@router.get(
    "/{conversation_id}/export",
    response={200: None, **ERRORS},
    openapi_extra={
        "responses": {
            200: {
                "description": "The file",
                "content": {"application/json": {}, "text/markdown": {}},
            }
        }
    },
)
def conversation_export(
    request: HttpRequest,
    options: Query[ExportQuery],
    conversation_id: int = ConversationId,
):
    """Download the conversation as JSON (importable) or Markdown (to read)."""
    conversation = _conversation(request, conversation_id)
    conversation = exports.with_messages(
        Conversation.objects.filter(pk=conversation.pk)
    )[0]
    content_type, extension, render = EXPORT_TYPES[options.format]
    response = HttpResponse(
        render(conversation), content_type=f"{content_type}; charset=utf-8"
    )
    filename = f"conversation-{conversation.pk}.{extension}"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _last_status(conversation: Conversation) -> str:
    return (
        conversation.messages.filter(role=Message.Role.ASSISTANT)
        .order_by("-created_at", "-id")
        .values_list("status", flat=True)
        .first()
        or ""
    )
