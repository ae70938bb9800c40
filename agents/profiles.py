"""Reply profiles: for each intent, the instructions and sampler values of the reply.

Every request of a conversation starts with the same system prompt (the conversation's
own, or SYSTEM_PROMPT) whatever the intent: a profile's instructions come after the
history, so KoboldCpp's prompt cache keeps the start. Overrides win over the profile.
"""

from dataclasses import dataclass, replace

from agents.conf import conf
from agents.intents import Intent
from agents.llm_service import GenerationSettings
from agents.template_choice import version_tuple

SYSTEM_PROMPT = (
    "You are Kobold, a helpful, honest assistant in a web chat. "
    "Answer in the language the user writes in."
)
# Earlier turns any reply may see at most. One value for every intent: the intent
# request and the reply must carry the same history to share their prefix.
HISTORY_TURNS = 100


@dataclass(frozen=True, slots=True)
class ReplyOverrides:
    """Per-conversation values; None keeps the default. `system_prompt` replaces
    SYSTEM_PROMPT, the others the profile's values."""

    system_prompt: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    reasoning_effort: str | None = None  # none/minimal/low/medium (KoboldCpp 1.117)


@dataclass(frozen=True, slots=True)
class Profile:
    """How to answer one intent."""

    intent: Intent
    instructions: str  # a system turn after the history, just before the reply
    temperature: float
    top_p: float
    rep_pen: float
    max_tokens: int
    reasoning_effort: str = ""  # "": the model thinks as it likes

    def generation_settings(self, stop: list[str] | None = None) -> GenerationSettings:
        """The sampler settings the LLM service takes for this profile."""
        return GenerationSettings(
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            rep_pen=self.rep_pen,
            stop=list(stop or []),
            extra={"reasoning_effort": self.reasoning_effort}
            if self.reasoning_effort
            else {},
        )

    def model_settings(self) -> dict:
        """The same values as pydantic-ai ModelSettings: extra keys reach KoboldCpp's
        native body, extra_body its /v1 one (which reads max_tokens, not the
        max_completion_tokens pydantic-ai sends)."""
        extra = {"max_tokens": self.max_tokens, "rep_pen": self.rep_pen}
        settings = {
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "rep_pen": self.rep_pen,
        }
        if self.reasoning_effort:  # read by both of KoboldCpp's APIs (1.117)
            settings["reasoning_effort"] = extra["reasoning_effort"] = (
                self.reasoning_effort
            )
        return settings | {"extra_body": extra}


PROFILES: dict[str, Profile] = {
    "smalltalk": Profile(
        "smalltalk",
        "The user is making small talk: reply warmly in one short sentence.",
        temperature=0.7,
        top_p=0.9,
        rep_pen=1.1,
        max_tokens=60,
    ),
    "chat": Profile(
        "chat",
        "Be clear and concise; use Markdown when it helps.",
        temperature=0.7,
        top_p=0.92,
        rep_pen=1.1,
        max_tokens=400,
    ),
    "code": Profile(
        "code",
        "Answer as an expert programmer: correct, idiomatic code in fenced Markdown "
        "blocks with the language name, and a brief explanation.",
        temperature=0.2,
        top_p=0.9,
        rep_pen=1.05,
        max_tokens=800,
    ),
    "creative": Profile(
        "creative",
        "Write as a creative writer: vivid, original, with a voice.",
        temperature=1.0,
        top_p=0.95,
        rep_pen=1.15,
        max_tokens=600,
    ),
    "summarize": Profile(
        "summarize",
        "Summarize the conversation so far (or the text the user gives) in a few "
        "bullet points, keeping names, numbers and decisions.",
        temperature=0.3,
        top_p=0.9,
        rep_pen=1.1,
        max_tokens=300,
    ),
}


def profile_for(intent: str, overrides: ReplyOverrides | None = None) -> Profile:
    """The profile of `intent` ("chat" when unknown), with the conversation's overrides.

    settings.REPLY_PROFILES (optional) changes the defaults, e.g.
    {"smalltalk": {"max_tokens": 40}}.
    """
    profile = PROFILES.get(intent, PROFILES["chat"])
    configured = conf.REPLY_PROFILES or {}
    profile = replace(profile, **configured.get(profile.intent, {}))
    if overrides is None:
        return profile
    changes = {
        name: value
        for name in ("temperature", "top_p", "max_tokens", "reasoning_effort")
        if (value := getattr(overrides, name)) is not None
    }
    return replace(profile, **changes)


REASONING_EFFORTS = ("none", "minimal", "low", "medium")
REASONING_EFFORT_SINCE = (1, 117)  # read in generate() of 1.117's koboldcpp.py


def supports_reasoning_effort(version: str | None) -> bool:
    """Whether KoboldCpp `version` (None: unknown, or not KoboldCpp) bounds thinking
    by `reasoning_effort`: a share of max_length (0/10/25/50 %)."""
    return bool(version) and version_tuple(version) >= REASONING_EFFORT_SINCE


def system_prompt(overrides: ReplyOverrides | None = None) -> str:
    """The system prompt that starts every request of the conversation."""
    if overrides is not None and overrides.system_prompt is not None:
        return overrides.system_prompt
    return SYSTEM_PROMPT
