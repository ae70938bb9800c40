"""The one registry of error codes: each code once, with the HTTP status the REST API
answers with and the readable sentence (translated) the page, the socket and the admin
show. `ChatError` is the chat app's exception; the LLM layer's types (agents.errors)
carry the same codes."""

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class ErrorCode:
    code: str
    status: int
    message: Promise


_CODES = (
    ErrorCode(
        "backend_unreachable",
        502,
        _("The model server (KoboldCpp) cannot be reached. Is it running?"),
    ),
    ErrorCode(
        "backend_busy", 503, _("The model server is busy. Try again in a moment.")
    ),
    ErrorCode(
        "backend_auth",
        502,
        _("The model server refused our password. Check KOBOLDCPP_PASSWORD."),
    ),
    ErrorCode(
        "backend_error", 502, _("The model server answered something unexpected.")
    ),
    ErrorCode(
        "stalled", 504, _("The model stopped answering, so the reply was cut short.")
    ),
    ErrorCode("timeout", 504, _("The reply took too long and was stopped.")),
    ErrorCode(
        "bad_request", 400, _("That message could not be sent (empty or too long?).")
    ),
    # Another user's id looks exactly like an unknown one: 404, never 403.
    ErrorCode("forbidden", 404, _("That conversation does not exist or is not yours.")),
    ErrorCode(
        "rate_limited", 429, _("Too many messages. Wait a little before sending again.")
    ),
    ErrorCode(
        "quota_exceeded",
        429,
        _("Your daily quota of replies or tokens is used up. It resets at midnight."),
    ),
    ErrorCode(
        "busy", 409, _("A reply is already being written. Wait for it or stop it.")
    ),
    ErrorCode("interrupted", 502, _("The server restarted while writing this reply.")),
    ErrorCode(
        "unauthorized", 401, _("Log in, or send Authorization: Bearer <api key>.")
    ),
    ErrorCode("csrf_failed", 403, _("The request was refused (CSRF check failed).")),
    ErrorCode("not_found", 404, _("Not found.")),
    ErrorCode("model_not_found", 404, _("That model does not exist on this server.")),
)
REGISTRY: dict[str, ErrorCode] = {entry.code: entry for entry in _CODES}
UNKNOWN = ErrorCode("error", 500, _("Something went wrong."))


def error_entry(code: str) -> ErrorCode:
    return REGISTRY.get(code, UNKNOWN)


def error_message(code: str) -> str:
    """The readable sentence for a code, in the active language."""
    return str(error_entry(code).message)


class ChatError(Exception):
    """A refusal or failure the user is told about: `code` from the registry, `message`
    the specific sentence (the registry's when not given), `details` more fields for
    the error frame (`busy`: the reply that is `running`)."""

    def __init__(
        self,
        code: str,
        message: str | None = None,
        *,
        retry_after: int | None = None,
        details: dict | None = None,
    ):
        message = message if message is not None else error_message(code)
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.details = details or {}

    @property
    def status(self) -> int:
        return REGISTRY[self.code].status if self.code in REGISTRY else 400
