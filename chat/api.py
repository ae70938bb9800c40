"""The REST API (django-ninja, mounted at /api/): simple chat, health, and the routers of
conversations and API keys. Every error leaves here as JSON {code, message}."""

import json
from collections.abc import AsyncIterator

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from ninja import NinjaAPI, Status
from ninja.errors import AuthenticationError, HttpError, ValidationError

from agents.errors import LLMError
from chat import api_conversations, api_keys
from chat.api_auth import KEY_OR_SESSION
from chat.errors import ChatError
from chat.generation import reply_frames, reply_start, reply_wait
from chat.health import health_report
from chat.models import Message
from chat.schemas import ErrorOut, HealthOut, SimpleChatIn, SimpleChatOut
from chat.views import error_message

api = NinjaAPI(
    title="koboldchat",
    version="1",
    description="Chat with a local KoboldCpp: send `Authorization: Bearer <api key>` "
    "(make keys in the chat page settings) or use the browser session with CSRF.",
    urls_namespace="api",
)
api.add_router("/conversations", api_conversations.router)
api.add_router("/keys", api_keys.router)

HTTP_ERROR_CODES = {400: "bad_request", 401: "unauthorized", 403: "csrf_failed"}
CHAT_ERRORS = {
    status: ErrorOut for status in (400, 401, 403, 404, 409, 429, 502, 503, 504)
}


# --- errors: one place turns every failure into {code, message} ----------------------
def error_response(request: HttpRequest, status: int, code: str, message: str):
    return api.create_response(
        request, {"code": code, "message": message}, status=status
    )


@api.exception_handler(ChatError)
def on_chat_error(request: HttpRequest, exc: ChatError) -> HttpResponse:
    response = error_response(request, exc.status, exc.code, exc.message)
    if exc.retry_after:
        response["Retry-After"] = str(exc.retry_after)
    return response


@api.exception_handler(LLMError)
def on_llm_error(request: HttpRequest, exc: LLMError) -> HttpResponse:
    return on_chat_error(request, ChatError(exc.code, error_message(exc.code)))


@api.exception_handler(AuthenticationError)
def on_unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    message = "Log in, or send Authorization: Bearer <api key>."
    response = error_response(request, 401, "unauthorized", message)
    response["WWW-Authenticate"] = "Bearer"
    return response


@api.exception_handler(HttpError)
def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    code = HTTP_ERROR_CODES.get(exc.status_code, "http_error")
    return error_response(request, exc.status_code, code, str(exc))


@api.exception_handler(ValidationError)
def on_invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    problems = [
        f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
        for error in exc.errors[:5]
    ]
    response = error_response(request, 400, "bad_request", "; ".join(problems))
    return response


@api.exception_handler(Http404)
def on_not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return error_response(request, 404, "not_found", "Not found.")


@api.exception_handler(RequestDataTooBig)
def on_too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return error_response(request, 413, "bad_request", "The request body is too large.")


# --- simple chat and health -----------------------------------------------------------
@api.post(
    "/simple-chat/",
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
        raise ChatError(code, error_message(code))
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


@api.get(
    "/simple-chat/health",
    auth=None,
    response={200: HealthOut, 503: HealthOut},
    tags=["health"],
)
async def health(request: HttpRequest):
    """Backend, database and channel layer; 503 when one is down. No login needed;
    answers within 2 s even when the backend hangs."""
    report = await health_report()
    return Status(200 if report["status"] == "ok" else 503, report)
