"""Simple chat (one message, its reply as JSON or server-sent events) and the health check."""

import json
from collections.abc import AsyncIterator

from asgiref.sync import sync_to_async
from django.http import HttpRequest, StreamingHttpResponse
from ninja import Router, Status

from chat.api.auth import KEY_OR_SESSION, api_key_auth
from chat.api.health import health_report
from chat.api.schemas import (
    ErrorOut,
    HealthOut,
    HealthStatusOut,
    SimpleChatIn,
    SimpleChatOut,
)
from chat.errors import ChatError
from chat.models import Message
from chat.replies.control import reply_start, reply_wait
from chat.replies.listener import reply_frames

router = Router()
CHAT_ERRORS = {
    status: ErrorOut for status in (400, 401, 403, 404, 409, 429, 502, 503, 504)
}


# --- simple chat and health -----------------------------------------------------------
@router.post(
    "/",
    auth=KEY_OR_SESSION,
    response={200: SimpleChatOut, **CHAT_ERRORS},
    tags=["chat"],
)
async def simple_chat(request: HttpRequest, body: SimpleChatIn):
    """Send a message and get the reply: one JSON answer, or with `stream` a
    text/event-stream of protocol frames (`data: {json}`) ending with a `done` event."""
    conversation, _, assistant = await reply_start(
        user=request.auth,
        text=body.message,
        conversation_id=body.conversation_id,
        simple=not body.stream,
    )
    if body.stream:
        return sse_response(event_stream(conversation.pk, assistant.pk))
    message = await reply_wait(assistant.pk)
    if message.status in (Message.Status.ERROR, Message.Status.INTERRUPTED):
        code = message.error_code or "backend_error"
        raise ChatError(code)
    return {
        "reply": message.content,
        "conversation_id": conversation.pk,
        "message_id": message.pk,
        "intent": message.intent,
        "intent_source": message.intent_source,
        "finish_reason": message.finish_reason,
        "metrics": message.metrics(),
    }


def sse_response(events: AsyncIterator[str]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(events, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx would otherwise hold the frames back
    return response


async def event_stream(conversation_id: int, message_id: int) -> AsyncIterator[str]:
    """One SSE event per protocol frame, then `event: done` with the final status."""
    status = ""
    async for frame in reply_frames(conversation_id, message_id):
        status = frame.get("status", status)
        yield f"data: {json.dumps(frame, ensure_ascii=False)}\n\n"
    done = {
        "type": "done",
        "conversation_id": conversation_id,
        "message_id": message_id,
        "status": status,
    }
    yield f"event: done\ndata: {json.dumps(done)}\n\n"


@router.get(
    "/health",
    auth=None,
    response={200: HealthOut | HealthStatusOut, 503: HealthOut | HealthStatusOut},
    tags=["health"],
)
async def health(request: HttpRequest):
    """Backend, database and channel layer; 503 when one is down. Answers within 2 s
    even when the backend hangs. Without a login or an API key, only the status."""
    report = await health_report()
    status = 200 if report["status"] == "ok" else 503
    caller = await _caller(request)
    if caller is None:
        return Status(status, {"status": report["status"]})
    if not caller.is_staff:  # where the model servers live is for staff to know
        backend = report["backend"] = dict(report.get("backend") or {})  # shared
        backend.pop("url", None)
        backend["label"] = backend.get("label", "").split(" at ", 1)[0]
        report.pop("backends", None)
        report.pop("waiting", None)
    return Status(status, report)


async def _caller(request: HttpRequest):
    """A logged-in browser's user or a valid API key's (GET: no CSRF check to make)."""
    user = await request.auser()
    if user.is_authenticated:
        return user
    return await sync_to_async(api_key_auth)(request)
