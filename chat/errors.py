"""The one error type of the chat app: a stable protocol `code`, a readable message,
and the HTTP status the REST API answers with."""

_STATUS_BY_CODE = {
    "bad_request": 400,
    "forbidden": 404,  # another user's id looks exactly like an unknown one
    "busy": 409,
    "rate_limited": 429,
    "backend_unreachable": 502,
    "backend_auth": 502,
    "backend_error": 502,
    "backend_busy": 503,
    "stalled": 504,
    "timeout": 504,
}


class ChatError(Exception):
    def __init__(self, code: str, message: str, *, retry_after: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after

    @property
    def status(self) -> int:
        return _STATUS_BY_CODE.get(self.code, 400)

    def as_frame(self, message_id: int | None = None) -> dict:
        frame = {"type": "error", "code": self.code, "message": self.message}
        if message_id is not None:
            frame["message_id"] = message_id
        return frame
