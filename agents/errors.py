"""Typed errors of the LLM layer, each with a stable `code` the chat protocol sends.

LLMError
├── BackendUnreachable   nothing answers at KOBOLDCPP_URL (connect refused, DNS, reset)
├── BackendBusy          HTTP 503 "Server is busy" after the retries ran out
├── BackendAuthError     HTTP 401: KOBOLDCPP_PASSWORD missing or wrong
├── BackendProtocolError a status or body we cannot use, or the stream cut mid-reply
│   └── GenerationFailed the backend ended the reply with finish_reason "error"
├── StreamStalled        no first token in time, or silence mid-stream (upstream aborted)
├── StreamTimeout        the whole reply took longer than LLM_STREAM_TIMEOUT
└── PromptTooLong        the last user message alone does not fit the context

pydantic-ai's OpenAI model (KOBOLDCPP_API=openai) raises its own errors; they become
these at one place, agents.openai_model.
"""


class LLMError(Exception):
    """Base of every error the LLM layer raises; `code` is part of the protocol."""

    code = "backend_error"

    def __init__(self, message: str = "", *, status: int | None = None):
        super().__init__(message or self.__class__.__doc__)
        self.status = status


class BackendUnreachable(LLMError):
    """KoboldCpp is not reachable."""

    code = "backend_unreachable"


class BackendBusy(LLMError):
    """KoboldCpp answered 503: it is busy with another generation."""

    code = "backend_busy"


class BackendAuthError(LLMError):
    """KoboldCpp refused the password (HTTP 401)."""

    code = "backend_auth"


class BackendProtocolError(LLMError):
    """KoboldCpp answered something unusable, or closed the stream mid-reply."""

    code = "backend_error"


class GenerationFailed(BackendProtocolError):
    """KoboldCpp reported a failed generation (finish_reason "error", 1.117 and later).

    Raised after the text it did produce: streamed, as the deltas already yielded;
    not streamed, as `text`. Its code stays backend_error, so the chat stores the
    partial reply as failed.
    """

    def __init__(self, message: str = "", *, text: str = "", status: int | None = None):
        super().__init__(message, status=status)
        self.text = text


class StreamStalled(LLMError):
    """The model sent nothing within the allowed time."""

    code = "stalled"


class StreamTimeout(LLMError):
    """The reply took longer than the total time allowed."""

    code = "timeout"


class PromptTooLong(LLMError):
    """The message is too long for the model's context."""

    code = "bad_request"
