"""The OpenAI-compatible endpoint (django-ninja, mounted at /v1/): the model list, chat
completions and text completions, per-user API keys; every error in OpenAI's shape."""

from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import HttpBearer

from agents.errors import LLMError
from chat.api.app import validation_problems
from chat.api.simple_chat import sse_response
from chat.errors import ChatError
from chat.gateway.answers import Answer, model_list
from chat.gateway.catalog import model_check, served_models
from chat.gateway.errors import error_response
from chat.gateway.replies import api_reply_result, api_reply_start
from chat.gateway.schemas import ChatCompletionIn, CompletionIn
from chat.gateway.stream import answer_stream
from chat.models import ApiKey, Message


class GatewayKeyAuth(HttpBearer):
    """An active key of an active user, checked on every request: a revoked key is
    refused at once. The request's `auth` is the key (its history setting matters)."""

    def authenticate(self, request: HttpRequest, token: str):
        return ApiKey.active_key_for(token)


gateway = NinjaAPI(
    title="koboldchat OpenAI-compatible endpoint",
    version="1",
    description="Point an OpenAI client at /v1 with one of your API keys.",
    urls_namespace="openai",
    auth=GatewayKeyAuth(),
    docs_url=None,
)


@gateway.get("/models")
async def models(request: HttpRequest):
    """The models the backends serve (each once)."""
    return model_list(await served_models())


async def _answer(request: HttpRequest, body, *, chat: bool):
    model = await model_check(body.model)
    key = request.auth
    conversation, assistant = await api_reply_start(key=key, body=body, model=model)
    answer = Answer(message_id=assistant.pk, model=body.model, chat=chat)
    if body.stream:
        return sse_response(
            answer_stream(
                key=key,
                answer=answer,
                conversation_id=conversation.pk,
                include_usage=body.include_usage,
                message=assistant,
            )
        )
    message = await api_reply_result(
        key=key, conversation_id=conversation.pk, message_id=assistant.pk
    )
    if message.status in (Message.Status.ERROR, Message.Status.INTERRUPTED):
        raise ChatError(message.error_code or "backend_error")
    return answer.whole(message)


@gateway.post("/chat/completions")
async def chat_completions(request: HttpRequest, body: ChatCompletionIn):
    """The reply to `messages` (sent as given, system included), whole or streamed."""
    return await _answer(request, body, chat=True)


@gateway.post("/completions")
async def completions(request: HttpRequest, body: CompletionIn):
    """The model's continuation of `prompt` (no chat template), whole or streamed."""
    return await _answer(request, body, chat=False)


# --- errors: OpenAI's {"error": {message, type, code}} --------------------------------
@gateway.exception_handler(ChatError)
def on_chat_error(request: HttpRequest, exc: ChatError) -> HttpResponse:
    return error_response(exc.code, exc.message, retry_after=exc.retry_after)


@gateway.exception_handler(LLMError)
def on_backend_error(request: HttpRequest, exc: LLMError) -> HttpResponse:
    return error_response(exc.code)


@gateway.exception_handler(AuthenticationError)
def on_unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return error_response(
        "unauthorized", "Invalid or revoked API key: send Authorization: Bearer <key>."
    )


@gateway.exception_handler(ValidationError)
def on_invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    return error_response("bad_request", validation_problems(exc))


@gateway.exception_handler(HttpError)
def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    code = "bad_request" if exc.status_code < 500 else "backend_error"
    return error_response(code, str(exc))


@gateway.exception_handler(Http404)
def on_not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return error_response("not_found", "No such endpoint.")


def endpoint_missing(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Any other path under /v1/: OpenAI's 404, not Django's page."""
    return error_response("not_found", f"No endpoint /v1/{rest}.")
