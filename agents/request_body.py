"""Generation requests for KoboldCpp: the one body builder of both model paths
(LLMService and the pydantic-ai KoboldNativeModel), the one genkey format, and the
non-streamed answer read back.
"""

import secrets
from dataclasses import dataclass, field
from typing import Any

from pydantic_ai.settings import ModelSettings

from agents.chat_templates import ChatTemplate
from agents.events import ChatTurn, Finished

MAX_STOP_SEQUENCES = 32  # KoboldCpp ignores any beyond this
NATIVE_STREAM_PATH = "/api/extra/generate/stream"
NATIVE_PATH = "/api/v1/generate"
OPENAI_PATH = "/v1/chat/completions"
# Our sampler names and KoboldCpp's native generate fields.
_NATIVE_NAMES = {
    "max_tokens": "max_length",
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "rep_pen": "rep_pen",
}
# pydantic-ai setting names and ours; other keys of model_settings that are not
# pydantic-ai's own (rep_pen, top_k, grammar, genkey, ...) reach KoboldCpp as they are.
_MODEL_SETTING_NAMES = {
    "max_tokens": "max_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
    "stop_sequences": "stop",
}
_EXTRA_RENAMED = {"seed": "sampler_seed", "presence_penalty": "presence_penalty"}
_PYDANTIC_AI_KEYS = frozenset(ModelSettings.__annotations__)


def new_genkey() -> str:
    """A fresh KoboldCpp generation key, the id to abort exactly this request with."""
    return f"kc-{secrets.token_hex(8)}"


@dataclass
class GenerationSettings:
    """Sampler settings of one reply; None leaves the field to KoboldCpp's default."""

    max_tokens: int | None = 400
    temperature: float | None = 0.7
    top_p: float | None = 0.92
    top_k: int | None = 100
    rep_pen: float | None = 1.1
    stop: list[str] = field(default_factory=list)
    grammar: str | None = None  # GBNF text constraining the output
    extra: dict[str, Any] = field(default_factory=dict)  # other fields, sent as is

    @classmethod
    def from_model_settings(
        cls, model_settings: ModelSettings | None
    ) -> "GenerationSettings":
        """pydantic-ai model settings as ours: only what they name is sent."""
        values: dict[str, Any] = dict.fromkeys(_NATIVE_NAMES)
        extra: dict[str, Any] = {}
        for key, value in dict(model_settings or {}).items():
            if key in _MODEL_SETTING_NAMES:
                values[_MODEL_SETTING_NAMES[key]] = value
            elif key in _EXTRA_RENAMED:
                extra[_EXTRA_RENAMED[key]] = value
            elif key in ("top_k", "rep_pen", "grammar"):
                values[key] = value
            elif key not in _PYDANTIC_AI_KEYS:
                extra[key] = value
        values["stop"] = list(values.get("stop") or [])
        return cls(**values, extra=extra)


def native_body(
    template: ChatTemplate,
    turns: list[ChatTurn],
    settings: GenerationSettings,
    *,
    genkey: str,
    max_context: int | None = None,
) -> dict[str, Any]:
    """The body of /api/v1/generate and /api/extra/generate/stream (the same)."""
    stops = list(dict.fromkeys([*template.stop, *settings.stop]))
    body: dict[str, Any] = {"prompt": template.render(turns)}
    for ours, theirs in _NATIVE_NAMES.items():
        if (value := getattr(settings, ours)) is not None:
            body[theirs] = value
    body["stop_sequence"] = stops[:MAX_STOP_SEQUENCES]
    body["trim_stop"] = True
    if template.server_side:
        body["replace_instruct_placeholders"] = True
    if settings.grammar:
        body["grammar"] = settings.grammar
    if max_context:
        body["max_context_length"] = max_context
    body.update(settings.extra)
    body["genkey"] = genkey
    return body


def openai_body(
    turns: list[ChatTurn], settings: GenerationSettings, *, genkey: str, stream: bool
) -> dict[str, Any]:
    """The body of /v1/chat/completions; the server applies its own template."""
    body: dict[str, Any] = {
        "messages": [{"role": turn.role, "content": turn.content} for turn in turns]
    }
    for name in ("max_tokens", "temperature", "top_p"):
        if (value := getattr(settings, name)) is not None:
            body[name] = value
    body["stop"] = settings.stop[:MAX_STOP_SEQUENCES]
    body["stream"] = stream
    if settings.grammar:
        body["grammar"] = settings.grammar
    body.update(settings.extra)
    # KoboldCpp reads genkey in /v1 bodies too, so abort works on this path.
    body["genkey"] = genkey
    return body


def generation_request(
    api: str,
    template: ChatTemplate,
    turns: list[ChatTurn],
    settings: GenerationSettings,
    *,
    genkey: str,
    stream: bool,
    max_context: int | None = None,
) -> tuple[str, dict[str, Any]]:
    """The path and body of one generation on `api` ("native" | "openai")."""
    if api == "openai":
        return OPENAI_PATH, openai_body(turns, settings, genkey=genkey, stream=stream)
    body = native_body(
        template, turns, settings, genkey=genkey, max_context=max_context
    )
    return (NATIVE_STREAM_PATH if stream else NATIVE_PATH), body


@dataclass(frozen=True, slots=True)
class Completion(Finished):
    """The end of a non-streamed reply, with its whole text."""

    text: str = ""


def parse_completion(api: str, data: Any, *, usage: bool = True) -> Completion:
    """The answer of a non-streamed generation, with the token counts the backend
    reports (1.82+ natively; `usage=False` ignores /v1 placeholder counts). Raises
    KeyError, IndexError or TypeError on another shape."""
    if api == "openai":
        choice = data["choices"][0]
        counts = (data.get("usage") or {}) if usage else {}
        return Completion(
            finish_reason=choice.get("finish_reason") or "stop",
            text=choice["message"]["content"] or "",
            prompt_tokens=counts.get("prompt_tokens"),
            completion_tokens=counts.get("completion_tokens"),
        )
    result = data["results"][0]
    return Completion(
        finish_reason=result.get("finish_reason") or "stop",
        text=result["text"] or "",
        prompt_tokens=result.get("prompt_tokens"),
        completion_tokens=result.get("completion_tokens"),
    )
