"""The REST API (django-ninja, mounted at /api/): the routers of simple chat, conversations
and API keys. Every error leaves here as JSON {code, message}."""

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from chat.api import conversations, keys, simple_chat, usage
from chat.errors import ChatError, error_message

api = NinjaAPI(
    title="koboldchat",
    version="1",
    description="Chat with a local KoboldCpp: send `Authorization: Bearer <api key>` "
    "(make keys in the chat page settings) or use the browser session with CSRF.",
    urls_namespace="api",
)
api.add_router("/simple-chat", simple_chat.router)
api.add_router("/conversations", conversations.router)
api.add_router("/keys", keys.router)
api.add_router("/usage", usage.router)

HTTP_ERROR_CODES = {400: "bad_request", 401: "unauthorized", 403: "csrf_failed"}


# --- errors: one place turns every failure into {code, message} ----------------------
def error_response(
    request: HttpRequest, status: int, code: str, message: str, **details
):
    return api.create_response(
        request, {"code": code, "message": message, **details}, status=status
    )


@api.exception_handler(ChatError)
def on_chat_error(request: HttpRequest, exc: ChatError) -> HttpResponse:
    """{code, message} and what the error names (a `busy` refusal: the `running` reply,
    as the socket's error frame says it)."""
    details = exc.details or {}
    response = error_response(request, exc.status, exc.code, exc.message, **details)
    if exc.retry_after:
        response["Retry-After"] = str(exc.retry_after)
    return response


@api.exception_handler(AuthenticationError)
def on_unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    response = error_response(
        request, 401, "unauthorized", error_message("unauthorized")
    )
    response["WWW-Authenticate"] = "Bearer"
    return response


@api.exception_handler(HttpError)
def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    code = HTTP_ERROR_CODES.get(exc.status_code, "http_error")
    return error_response(request, exc.status_code, code, str(exc))


def validation_problems(exc: ValidationError) -> str:
    """The first few problems of a body, each as `field.path: what is wrong`."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
        for error in exc.errors[:5]
    )


@api.exception_handler(ValidationError)
def on_invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    return error_response(request, 400, "bad_request", validation_problems(exc))


@api.exception_handler(Http404)
def on_not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return error_response(request, 404, "not_found", error_message("not_found"))


@api.exception_handler(RequestDataTooBig)
def on_too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return error_response(request, 413, "bad_request", "The request body is too large.")
