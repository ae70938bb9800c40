"""The shapes the REST API reads and writes (django-ninja schemas), and the conversation
export format that the API, the admin and the importer share."""

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from django.conf import settings
from django.utils import timezone
from ninja import Schema
from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

TITLE_MAX = 200
TOKENS_MAX = 10_000_000  # token counts of one message; far above any context size
MS_MAX = 2**31 - 1  # the largest PositiveIntegerField
REPLY_CHARS_FACTOR = 8  # a model's reply may be longer than what a user may type
CLOCK_SKEW = timedelta(minutes=1)  # "now" on the exporting server may run a bit ahead


class ErrorOut(Schema):
    code: str = Field(description="Stable machine-readable code, e.g. bad_request.")
    message: str = Field(description="What went wrong, for a person.")


class SimpleChatIn(Schema):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(description="The user's message (not empty, size-limited).")
    conversation_id: int | None = Field(
        None, description="Continue this conversation; default: the latest one."
    )
    stream: bool = Field(
        False, description="Answer text/event-stream frames instead of one JSON."
    )


class SimpleChatOut(Schema):
    reply: str
    conversation_id: int
    message_id: int
    intent: str
    intent_source: str
    finish_reason: str
    metrics: dict


class BackendHealth(Schema):
    reachable: bool
    label: str = Field(description="Which backend is in use, for people.")
    url: str = Field(description="The backend URL, without credentials.")
    api: str = ""
    model: str = ""
    version: str = ""
    max_context: int | None = None
    idle: bool | None = None
    queue: int | None = None
    latency_ms: float | None = None
    error: str = ""


class HealthOut(Schema):
    status: Literal["ok", "degraded"]
    backend: BackendHealth
    database: bool
    channel_layer: bool


class HealthStatusOut(Schema):
    """What an anonymous caller is told: the status only."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["ok", "degraded"]


class ConversationOut(Schema):
    id: int
    title: str
    created_at: str
    updated_at: str
    system_prompt: str
    temperature: float | None
    top_p: float | None
    max_tokens: int | None
    last_status: str


class ConversationDetailOut(ConversationOut):
    message_count: int


class ConversationPage(Schema):
    items: list[ConversationOut]
    count: int
    page: int
    page_size: int


class MessageOut(Schema):
    id: int
    conversation_id: int
    role: str
    content: str
    reasoning: str
    html: str
    status: str
    intent: str
    intent_source: str
    finish_reason: str
    error_code: str
    metrics: dict
    created_at: str


class MessagePage(Schema):
    items: list[MessageOut]
    count: int
    page: int
    page_size: int


class ConversationCreateIn(Schema):
    model_config = ConfigDict(extra="forbid")

    title: str = Field("", max_length=TITLE_MAX)


class ConversationSettingsIn(Schema):
    """Only the fields sent are changed; null resets a sampler setting to the profile's."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(None, max_length=TITLE_MAX)
    system_prompt: str | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1, le=8192)


class ApiKeyOut(Schema):
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    is_active: bool


class ApiKeyCreateIn(Schema):
    model_config = ConfigDict(extra="forbid")

    name: str = Field("", max_length=100)

    @field_validator("name")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("must not contain a NUL character")
        return value


class ApiKeyCreatedOut(ApiKeyOut):
    key: str = Field(description="The raw key: shown this once, never again.")


# --- the export format (version 1) ------------------------------------------------
# An import gets the limits of live input: CHAT_MAX_MESSAGE_CHARS for what a person
# writes (REPLY_CHARS_FACTOR times that for the model's replies), bounded numbers, and
# no date in the future.


def _past_date(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if timezone.is_naive(value):
        value = value.replace(tzinfo=UTC)
    if value > timezone.now() + CLOCK_SKEW:
        raise ValueError("is in the future")
    return value


PastDate = Annotated[datetime | None, AfterValidator(_past_date)]


def _length_checked(text: str, limit: int, what: str) -> str:
    if len(text) > limit:
        raise ValueError(f"{what} is longer than {limit} characters")
    return text


class ExportedMessage(Schema):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant"]
    content: str
    reasoning: str = ""
    reasoning_ms: int | None = Field(None, ge=0, le=MS_MAX)
    status: Literal[
        "queued", "streaming", "complete", "stopped", "error", "interrupted"
    ] = "complete"
    intent: str = Field("", max_length=32)
    intent_source: Literal["", "heuristic", "llm", "fallback"] = ""
    finish_reason: str = Field("", max_length=16)
    error_code: str = Field("", max_length=32)
    prompt_tokens: int | None = Field(None, ge=0, le=TOKENS_MAX)
    completion_tokens: int | None = Field(None, ge=0, le=TOKENS_MAX)
    ttft_ms: int | None = Field(None, ge=0, le=MS_MAX)
    duration_ms: int | None = Field(None, ge=0, le=MS_MAX)
    created_at: PastDate = None

    @model_validator(mode="after")
    def _lengths(self):
        limit = settings.CHAT_MAX_MESSAGE_CHARS
        if self.role == "assistant":
            limit *= REPLY_CHARS_FACTOR
        _length_checked(self.content, limit, "content")
        _length_checked(self.reasoning, limit, "reasoning")
        return self


class ExportedConversation(Schema):
    model_config = ConfigDict(extra="ignore")

    format: Literal["koboldchat.conversation"]
    version: Literal[1]
    title: str = Field("", max_length=TITLE_MAX)
    system_prompt: str = ""
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1, le=8192)
    created_at: PastDate = None
    updated_at: PastDate = None
    messages: list[ExportedMessage]

    @field_validator("system_prompt")
    @classmethod
    def _system_prompt_length(cls, value: str) -> str:
        return _length_checked(value, settings.CHAT_MAX_MESSAGE_CHARS, "system prompt")

    @field_validator("messages", mode="before")
    @classmethod
    def _message_count(cls, value):
        limit = settings.CHAT_MAX_IMPORT_MESSAGES
        if isinstance(value, list) and len(value) > limit:
            raise ValueError(f"more than {limit} messages (CHAT_MAX_IMPORT_MESSAGES)")
        return value


class UsageOut(Schema):
    day: str = Field(description="Today, in the site's time zone (ISO date).")
    replies: int = Field(description="Replies started today.")
    tokens: int = Field(description="Prompt and reply tokens of today's replies.")
    reply_limit: int = Field(description="Replies allowed a day; 0: no limit.")
    token_limit: int = Field(description="Tokens allowed a day; 0: no limit.")
    resets_at: str = Field(description="When today's counts start again (ISO).")
    retry_after: int = Field(description="Seconds until then.")
    summary: str = Field(description="The same for people, in their language.")
