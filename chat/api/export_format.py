"""The conversation export format that the API, the admin and the importer share
(version 2: the whole tree of messages; version 1, a single path, still imports).
An import gets the limits of live input: CHAT_MAX_MESSAGE_CHARS for what a person
writes (REPLY_CHARS_FACTOR times that for the model's replies), bounded numbers, and
no date in the future."""

from datetime import UTC, datetime
from typing import Annotated, Literal

from django.conf import settings
from django.utils import timezone
from ninja import Schema
from pydantic import AfterValidator, ConfigDict, Field, field_validator, model_validator

from chat.api.schemas import (
    CLOCK_SKEW,
    MS_MAX,
    REPLY_CHARS_FACTOR,
    TITLE_MAX,
    TOKENS_MAX,
)

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
    # Version 2: the tree. `id` names the message in this file only; `parent` is the
    # `id` of an earlier message of the file (null: a first message).
    id: int | None = Field(None, ge=0, le=MS_MAX)
    parent: int | None = Field(None, ge=0, le=MS_MAX)

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
    version: Literal[1, 2]
    title: str = Field("", max_length=TITLE_MAX)
    system_prompt: str = ""
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1, le=8192)
    created_at: PastDate = None
    updated_at: PastDate = None
    messages: list[ExportedMessage]
    current: int | None = Field(None, description="The `id` of the leaf shown.")

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

    @model_validator(mode="after")
    def _tree(self):
        """Version 2: ids are unique, a parent comes before its children, and the leaf
        shown is in the file; version 1 is a single path, in order."""
        if self.version == 1:
            return self
        seen: set[int] = set()
        for index, message in enumerate(self.messages):
            if message.id is None or message.id in seen:
                raise ValueError(f"messages.{index}.id is missing or repeated")
            if message.parent is not None and message.parent not in seen:
                raise ValueError(f"messages.{index}.parent is not an earlier message")
            seen.add(message.id)
        if self.current is not None and self.current not in seen:
            raise ValueError("current is not a message of the file")
        return self
