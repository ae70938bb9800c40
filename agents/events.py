"""The typed values that flow out of the LLM layer: chat turns in, stream events out.

`LLMService.stream_chat` yields `TextDelta` then one `Finished`; `Orchestrator.reply`
yields one `IntentDecided` first, then the same.
"""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ChatTurn:
    """One message of a conversation as the model sees it."""

    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass(frozen=True, slots=True)
class TextDelta:
    """New text from the model, in order; joined they are the reply."""

    text: str


@dataclass(frozen=True, slots=True)
class Finished:
    """The stream ended normally; `finish_reason` is "stop" or "length"."""

    finish_reason: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class IntentDecided:
    """The orchestrator's choice of intent, and how it was made."""

    intent: str
    source: str  # "heuristic" | "llm" | "fallback"
    confidence: float = 1.0
    language: str | None = None


StreamEvent = TextDelta | Finished
ReplyEvent = IntentDecided | TextDelta | Finished
