"""The wire protocol of the chat socket (and of the REST stream, which sends the same
frames): one builder per server frame, and the parsing of client frames. The README's
protocol section is checked against `SERVER_FRAMES` and `CLIENT_FRAMES` by a test."""

import json
from dataclasses import dataclass

from chat import tree
from chat.errors import ChatError, error_message
from chat.models import Message
from chat.rendering import render_markdown

CLIENT_FRAMES = (
    "message", "edit", "stop", "regenerate", "continue", "select", "resume", "ping",
)  # fmt: skip
SERVER_FRAMES = (
    "user_message",
    "regenerate",
    "branch",
    "continue",
    "queued",
    "start",
    "token",
    "reasoning",
    "rewind",
    "end",
    "snapshot",
    "error",
    "pong",
)


# --- server -> client ----------------------------------------------------------------
def user_message(conversation_title: str, message: dict, edit_of=None) -> dict:
    """A reply was started by this stored user message (every tab shows it); with
    `edit_of`, the message is an edit of that one, whose branch it replaces on screen."""
    frame = {
        "type": "user_message",
        "conversation_title": conversation_title,
        "message": message,
    }
    if edit_of is not None:
        frame["edit_of"] = edit_of
    return frame


def regenerate(*, parent_id: int, sibling_ids: list[int]) -> dict:
    """A reply was started by answering user message `parent_id` again: a new
    alternative among `sibling_ids` (oldest first), shown in place of the one before."""
    return {"type": "regenerate", "parent_id": parent_id, "sibling_ids": sibling_ids}


def branch(*, conversation_id, message_id, path, messages, complete) -> dict:
    """The conversation now shows the branch of `message_id`: `path` is every id from
    the root to the new leaf; `messages` the payloads from `message_id` down (all of
    them when `complete`, else the last ones: a page should reload)."""
    return {
        "type": "branch",
        "conversation_id": conversation_id,
        "message_id": message_id,
        "path": path,
        "messages": messages,
        "complete": complete,
    }


def continued(offset: int) -> dict:
    """A reply was started by continuing the last one from `offset`."""
    return {"type": "continue", "offset": offset}


def queued(position: int) -> dict:
    return {"type": "queued", "position": position}


def start(intent: str, intent_source: str) -> dict:
    return {"type": "start", "intent": intent, "intent_source": intent_source}


def token(offset: int, text: str) -> dict:
    """`offset`: the characters (code points) of the reply before this frame's text."""
    return {"type": "token", "offset": offset, "text": text}


def reasoning(offset: int, text: str) -> dict:
    """The model's thinking, apart from the answer; `offset` counts reasoning only."""
    return {"type": "reasoning", "offset": offset, "text": text}


def rewind(offset: int) -> dict:
    """Drop what you hold of the reply's answer past `offset`: that text was thinking
    (it follows as `reasoning`)."""
    return {"type": "rewind", "offset": offset}


def error(
    code: str, message: str | None = None, *, message_id: int | None = None, **extra
) -> dict:
    frame = {"type": "error", "code": code, "message": message or error_message(code)}
    if message_id is not None:
        frame["message_id"] = message_id
    return frame | extra


def error_from(exc: ChatError, message_id: int | None = None) -> dict:
    extra = {"retry_after": exc.retry_after} if exc.retry_after else {}
    return error(exc.code, exc.message, message_id=message_id, **extra, **exc.details)


def pong() -> dict:
    return {"type": "pong"}


def end(
    *,
    conversation_id: int,
    message_id: int,
    status: str,
    finish_reason: str,
    content: str,
    reasoning: str,
    html: str,
    metrics: dict,
    error_code: str,
) -> dict:
    return {
        "type": "end",
        "conversation_id": conversation_id,
        "message_id": message_id,
        "status": status,
        "finish_reason": finish_reason,
        "content": content,
        "reasoning": reasoning,
        "html": html,
        "metrics": metrics,
        "error_code": error_code,
    }


def snapshot(
    *,
    conversation_id: int,
    message_id: int | None,
    status: str,
    content: str,
    reasoning: str = "",
    intent: str = "",
    intent_source: str = "",
) -> dict:
    """The text of a reply so far; live token frames continue from `offset`, reasoning
    frames from `reasoning_offset`."""
    return {
        "type": "snapshot",
        "conversation_id": conversation_id,
        "message_id": message_id,
        "status": status,
        "content": content,
        "offset": len(content),
        "reasoning": reasoning,
        "reasoning_offset": len(reasoning),
        "intent": intent,
        "intent_source": intent_source,
    }


def message_payload(message: Message, siblings: dict | None = None) -> dict:
    """A stored message as the page and the REST API show it; `siblings` (from
    chat.tree.siblings_of) gives its place among its alternatives."""
    return {
        "id": message.pk,
        "conversation_id": message.conversation_id,
        **tree.branch_info(message, siblings or {}),
        "role": message.role,
        "content": message.content,
        "reasoning": message.reasoning,
        "reasoning_html": reasoning_html(message),
        "html": message.display_html(),
        "status": message.status,
        "intent": message.intent,
        "intent_source": message.intent_source,
        "finish_reason": message.finish_reason,
        "error_code": message.error_code,
        "metrics": message.metrics(),
        "created_at": message.created_at.isoformat(),
    }


def reasoning_html(message: Message) -> str:
    return render_markdown(message.reasoning) if message.reasoning else ""


def end_from_message(message: Message) -> dict:
    """The `end` frame of a settled reply, from its row (with its thinking as HTML)."""
    return end(
        conversation_id=message.conversation_id,
        message_id=message.pk,
        status=message.status,
        finish_reason=message.finish_reason,
        content=message.content,
        reasoning=message.reasoning,
        html=message.display_html(),
        metrics=message.metrics(),
        error_code=message.error_code,
    ) | {"reasoning_html": reasoning_html(message)}


def snapshot_from_message(message: Message) -> dict:
    """What is known without a job: the last checkpoint, or the final text (then with
    its sanitized html and metrics, as in `end`)."""
    frame = snapshot(
        conversation_id=message.conversation_id,
        message_id=message.pk,
        status=message.status,
        content=message.content,
        reasoning=message.reasoning,
        intent=message.intent,
        intent_source=message.intent_source,
    )
    if not message.is_pending:
        frame.update(
            html=message.display_html(),
            reasoning_html=reasoning_html(message),
            metrics=message.metrics(),
            finish_reason=message.finish_reason,
            error_code=message.error_code,
        )
    return frame


# --- client -> server ----------------------------------------------------------------
@dataclass(frozen=True)
class ClientFrame:
    type: str
    fields: dict

    def integer(self, name: str) -> int:
        value = self.fields.get(name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ChatError("bad_request", f"{name} must be an integer.")
        return value

    def optional_integer(self, name: str) -> int | None:
        return None if self.fields.get(name) is None else self.integer(name)

    @property
    def message_id(self) -> int | None:
        value = self.fields.get("message_id")
        return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_client_frame(text_data: str | None, *, max_bytes: int) -> ClientFrame:
    """A client frame from the socket's text: plain text is a message, JSON an object
    with a known `type`. Raises ChatError("bad_request") with the reason otherwise."""
    if text_data is None:
        raise ChatError("bad_request", "Send text frames, not binary ones.")
    if len(text_data.encode()) > max_bytes:
        raise ChatError(
            "bad_request", f"Frames are limited to {max_bytes // 1024} KiB."
        )
    if text_data.lstrip()[:1] not in ("{", "["):
        return ClientFrame("message", {"type": "message", "text": text_data})
    try:
        content = json.loads(text_data)
    except (ValueError, RecursionError):  # RecursionError: nested too deeply
        raise ChatError("bad_request", "This frame is not valid JSON.") from None
    if not isinstance(content, dict) or not isinstance(content.get("type"), str):
        raise ChatError("bad_request", "A JSON frame must be an object with a type.")
    if content["type"] not in CLIENT_FRAMES:
        raise ChatError("bad_request", f"Unknown frame type {content['type']!r}.")
    return ClientFrame(content["type"], content)
