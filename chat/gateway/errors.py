"""Errors in OpenAI's shape, `{"error": {"message", "type", "code"}}`: each code of the
registry (chat.errors) mapped once to the status and type OpenAI clients act on (401 asks
for a key, 429 waits for Retry-After, 503 retries)."""

from django.http import JsonResponse

from chat.errors import error_message

# our code -> (HTTP status, OpenAI error type)
_OPENAI = {
    "bad_request": (400, "invalid_request_error"),
    "unauthorized": (401, "invalid_request_error"),
    "forbidden": (404, "invalid_request_error"),
    "not_found": (404, "invalid_request_error"),
    "model_not_found": (404, "invalid_request_error"),
    "rate_limited": (429, "rate_limit_exceeded"),
    "busy": (429, "rate_limit_exceeded"),
    "quota_exceeded": (429, "insufficient_quota"),
}
BACKEND_DOWN = (503, "server_error")  # every failure of the model server
_OPENAI_CODES = {"unauthorized": "invalid_api_key"}


def openai_status(code: str) -> tuple[int, str]:
    """The HTTP status and OpenAI type of one of our error codes."""
    return _OPENAI.get(code, BACKEND_DOWN)


def error_body(code: str, message: str | None = None) -> dict:
    _, kind = openai_status(code)
    return {
        "error": {
            "message": message or error_message(code),
            "type": kind,
            "param": None,
            "code": _OPENAI_CODES.get(code, code),
        }
    }


def error_response(
    code: str, message: str | None = None, *, retry_after: int | None = None
) -> JsonResponse:
    status, _ = openai_status(code)
    response = JsonResponse(error_body(code, message), status=status)
    if status == 429:
        response["Retry-After"] = str(retry_after or 1)
    if status == 401:
        response["WWW-Authenticate"] = "Bearer"
    return response
