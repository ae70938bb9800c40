"""The shapes the REST API reads and writes (django-ninja schemas); the conversation
export format is chat/api/export_format.py."""

from datetime import datetime, timedelta
from typing import Literal

from ninja import Schema
from pydantic import (
    ConfigDict,
    Field,
    field_validator,
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
    url: str = Field("", description="The backend URL, without credentials (staff).")
    api: str = ""
    model: str = ""
    version: str = ""
    max_context: int | None = None
    idle: bool | None = None
    queue: int | None = None
    latency_ms: float | None = None
    error: str = ""


class PoolBackendHealth(BackendHealth):
    """One backend of the pool (staff)."""

    label: str = ""
    name: str
    slots: int = Field(description="Replies it writes at once.")
    busy: int = Field(description="Slots in use now.")
    tokens_per_s: float | None = Field(None, description="Speed of its last reply.")


class HealthOut(Schema):
    status: Literal["ok", "degraded"]
    backend: BackendHealth = Field(description="All backends in one, for the badge.")
    backends: list[PoolBackendHealth] = Field(
        default_factory=list, description="Each enabled backend (staff)."
    )
    waiting: int = Field(0, description="Replies waiting for a free slot (staff).")
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
    show_thinking: bool = True
    reasoning_effort: str = ""
    model: str = ""
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
    parent_id: int | None = Field(
        None, description="The message it answers or follows (null for the first)."
    )
    sibling_ids: list[int] = Field(
        default_factory=list,
        description="Its alternatives (other replies to the same message, or edits of "
        "the same user message), oldest first, itself included.",
    )
    sibling_index: int = Field(0, description="Its place in sibling_ids.")


class BranchSelectIn(Schema):
    model_config = ConfigDict(extra="forbid")

    message_id: int = Field(..., ge=1, le=2**63 - 1)


class BranchOut(Schema):
    conversation_id: int
    path: list[int] = Field(..., description="The ids of the branch shown, root first.")


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
    show_thinking: bool | None = None
    reasoning_effort: Literal["", "none", "minimal", "low", "medium"] | None = Field(
        None,
        description="How much of a reply the model may spend thinking, where the "
        "backend supports it (KoboldCpp 1.117 and later); empty: as the model likes.",
    )
    model: str | None = Field(
        None,
        max_length=200,
        description="Only backends serving this model (GET /v1/models) write its "
        "replies; empty: any backend.",
    )


class ApiKeyOut(Schema):
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    is_active: bool
    keep_history: bool = Field(
        description="Its OpenAI-compatible (/v1) exchanges are kept in an API "
        "conversation."
    )


class ApiKeyCreateIn(Schema):
    model_config = ConfigDict(extra="forbid")

    name: str = Field("", max_length=100)
    keep_history: bool = Field(
        True, description="Keep its /v1 exchanges (off: forgotten once answered)."
    )

    @field_validator("name")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("must not contain a NUL character")
        return value


class ApiKeyCreatedOut(ApiKeyOut):
    key: str = Field(description="The raw key: shown this once, never again.")


class UsageOut(Schema):
    day: str = Field(description="Today, in the site's time zone (ISO date).")
    replies: int = Field(description="Replies started today.")
    tokens: int = Field(description="Prompt and reply tokens of today's replies.")
    reply_limit: int = Field(description="Replies allowed a day; 0: no limit.")
    token_limit: int = Field(description="Tokens allowed a day; 0: no limit.")
    resets_at: str = Field(description="When today's counts start again (ISO).")
    retry_after: int = Field(description="Seconds until then.")
    summary: str = Field(description="The same for people, in their language.")
