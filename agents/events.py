"""The typed values that flow out of the LLM layer: chat turns in, stream events out.

`LLMService.stream_chat` yields `TextDelta`s (with `ReasoningDelta`s, and an
`AnswerRetracted`, when the model thinks first) then one `Finished` (and a `BusyRetry`
before each retry of a busy backend, which `agents.runtime.watch_stream` consumes);
`Orchestrator.reply` yields one `IntentDecided` first, then the same.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ChatTurn:
    """One message of a conversation as the model sees it."""

    role: str  # "system" | "user" | "assistant"
    content: str
    # Tokens of `content` when already known (stored with the message): not counted again.
    tokens: int | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class TextDelta:
    """New text from the model, in order; joined they are the reply."""

    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """New text of the model's thinking (agents.reasoning splits it from the answer), in
    order; joined they are the reasoning, which is never part of the reply's text."""

    text: str


@dataclass(frozen=True, slots=True)
class AnswerRetracted:
    """Every TextDelta so far was thinking: a closing tag came before any opening one
    (the chat template opened the thinking in the prompt). The answer starts again
    empty; a ReasoningDelta with that text follows."""


@dataclass(frozen=True, slots=True)
class Finished:
    """The stream ended normally; `finish_reason` is "stop" or "length" (or what a
    newer server says, e.g. "tool_calls"; "error" is raised as GenerationFailed).

    `reasoning_unclosed`: the model was still thinking when the reply ended (out of
    tokens, usually), so the answer is empty and all it wrote is reasoning.
    """

    finish_reason: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    reasoning_unclosed: bool = False


@dataclass(frozen=True, slots=True)
class BusyRetry:
    """KoboldCpp answered 503; the request is sent again after `delay` seconds.

    The stream watchdog does not count this wait against the reply's time limits.
    """

    delay: float
    attempt: int


@dataclass(frozen=True, slots=True)
class IntentDecided:
    """The orchestrator's choice of intent, and how it was made."""

    intent: str
    source: str  # "heuristic" | "llm" | "fallback"


StreamEvent = TextDelta | ReasoningDelta | AnswerRetracted | Finished
ReplyEvent = IntentDecided | StreamEvent
