"""The shapes the REST API reads and writes (django-ninja schemas), and the conversation
export format that the API, the admin and the importer share."""

from datetime import datetime
from typing import Literal

from ninja import Schema
from pydantic import ConfigDict, Field

TITLE_MAX = 200


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


class ApiKeyCreatedOut(ApiKeyOut):
    key: str = Field(description="The raw key: shown this once, never again.")


# --- the export format (version 1) ------------------------------------------------


class ExportedMessage(Schema):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant"]
    content: str
    status: Literal[
        "queued", "streaming", "complete", "stopped", "error", "interrupted"
    ] = "complete"
    intent: str = Field("", max_length=32)
    intent_source: Literal["", "heuristic", "llm", "fallback"] = ""
    finish_reason: str = Field("", max_length=16)
    error_code: str = Field("", max_length=32)
    prompt_tokens: int | None = Field(None, ge=0)
    completion_tokens: int | None = Field(None, ge=0)
    ttft_ms: int | None = Field(None, ge=0)
    duration_ms: int | None = Field(None, ge=0)
    created_at: datetime | None = None


class ExportedConversation(Schema):
    model_config = ConfigDict(extra="ignore")

    format: Literal["koboldchat.conversation"]
    version: Literal[1]
    title: str = Field("", max_length=TITLE_MAX)
    system_prompt: str = ""
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1, le=8192)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    messages: list[ExportedMessage]
