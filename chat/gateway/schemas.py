"""The bodies of the OpenAI-compatible endpoint, validated: sampler values within bounds,
what is not supported (tools, n > 1, images) refused with a clear 400. Fields clients
send that we do not use (logit_bias, user, ...) are ignored, as OpenAI-style servers do."""

from typing import Annotated, Literal

from django.conf import settings
from ninja import Schema
from pydantic import ConfigDict, Field, field_validator, model_validator

from agents.direct import DirectRequest
from agents.events import ChatTurn
from agents.request_body import MAX_STOP_SEQUENCES, GenerationSettings

ROLES = {"system": "system", "developer": "system", "user": "user"}


class TextPart(Schema):
    model_config = ConfigDict(extra="ignore")

    type: str
    text: str = ""

    @field_validator("type")
    @classmethod
    def _text_only(cls, value: str) -> str:
        if value != "text":
            raise ValueError(f"content parts of type {value!r} are not supported")
        return value


class ChatMessageIn(Schema):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None
    tool_calls: list | None = None

    @model_validator(mode="after")
    def _no_tool_calls(self):
        if self.tool_calls:
            raise ValueError("tool calls are not supported")
        return self

    def as_turn(self) -> ChatTurn:
        content = self.content or ""
        if not isinstance(content, str):
            content = "".join(part.text for part in content)
        return ChatTurn(role=ROLES.get(self.role, "assistant"), content=content)


class StreamOptions(Schema):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class SamplingIn(Schema):
    """What both endpoints share: the model, streaming, and the sampler settings."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1, max_length=200)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stop: str | list[Annotated[str, Field(min_length=1)]] | None = None
    seed: int | None = Field(None, ge=-1, le=2**31 - 1)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    n: int = Field(1, ge=1, le=1, description="One choice only.")

    @field_validator("stop")
    @classmethod
    def _few_stops(cls, value):
        stops = [value] if isinstance(value, str) else value
        if stops and len(stops) > MAX_STOP_SEQUENCES:
            raise ValueError(f"at most {MAX_STOP_SEQUENCES} stop sequences")
        return stops

    @model_validator(mode="after")
    def _tokens_within_limit(self):
        limit = settings.GATEWAY_MAX_TOKENS
        if (self.max_completion_tokens or self.max_tokens or 0) > limit:
            raise ValueError(f"max_tokens must be at most {limit}")
        return self

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    def generation_settings(self) -> GenerationSettings:
        """Ours, None leaving a field to KoboldCpp; frequency_penalty becomes its
        repetition penalty (1 + the penalty), as KoboldCpp's own /v1 does."""
        extra: dict = {}
        if self.seed is not None:
            extra["sampler_seed"] = self.seed
        if self.presence_penalty is not None:
            extra["presence_penalty"] = self.presence_penalty
        rep_pen = None
        if self.frequency_penalty is not None:
            rep_pen = max(1.0 + self.frequency_penalty, 0.1)
        return GenerationSettings(
            max_tokens=self.max_completion_tokens
            or self.max_tokens
            or settings.GATEWAY_MAX_TOKENS,
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=None,
            rep_pen=rep_pen,
            stop=list(self.stop or []),
            extra=extra,
        )


def _within_prompt_limit(chars: int) -> None:
    limit = settings.GATEWAY_MAX_PROMPT_CHARS
    if chars > limit:
        raise ValueError(f"the prompt is longer than {limit} characters")


class ChatCompletionIn(SamplingIn):
    messages: list[ChatMessageIn] = Field(min_length=1)
    tools: list | None = None
    tool_choice: object = None

    @model_validator(mode="after")
    def _supported(self):
        if self.tools:
            raise ValueError("tools (function calling) are not supported")
        _within_prompt_limit(sum(len(t.content) for t in self.turns()))
        return self

    def turns(self) -> list[ChatTurn]:
        return [message.as_turn() for message in self.messages]

    def direct(self) -> DirectRequest:
        return DirectRequest(
            settings=self.generation_settings(), turns=tuple(self.turns())
        )

    def stored_text(self) -> str:
        """What history keeps as the user's message: the last one the caller sent."""
        users = [t.content for t in self.turns() if t.role == "user"]
        return users[-1] if users else self.turns()[-1].content


class CompletionIn(SamplingIn):
    prompt: str = Field(max_length=10_000_000)
    echo: bool = False
    suffix: str | None = None

    @model_validator(mode="after")
    def _supported(self):
        if self.echo or self.suffix:
            raise ValueError("echo and suffix are not supported")
        _within_prompt_limit(len(self.prompt))
        return self

    def direct(self) -> DirectRequest:
        return DirectRequest(settings=self.generation_settings(), prompt=self.prompt)

    def stored_text(self) -> str:
        return self.prompt
