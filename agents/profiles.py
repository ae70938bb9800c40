"""Reply profiles: for each intent, the system prompt, sampler values and history budget.

A conversation's overrides (ReplyOverrides) win over the profile's values.
"""

from dataclasses import dataclass, replace

from django.conf import settings

from agents.intents import Intent
from agents.llm_service import GenerationSettings

BASE_PROMPT = (
    "You are Kobold, a helpful, honest assistant in a web chat. "
    "Answer in the language the user writes in."
)


@dataclass(frozen=True, slots=True)
class ReplyOverrides:
    """Per-conversation values that replace the profile's; None keeps the profile's."""

    system_prompt: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class Profile:
    """How to answer one intent."""

    intent: Intent
    system_prompt: str
    temperature: float
    top_p: float
    rep_pen: float
    max_tokens: int
    history_turns: int  # how many earlier turns may be sent at most

    def generation_settings(self, stop: list[str] | None = None) -> GenerationSettings:
        """The sampler settings the LLM service takes for this profile."""
        return GenerationSettings(
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            rep_pen=self.rep_pen,
            stop=list(stop or []),
        )

    def model_settings(self) -> dict:
        """The same values as pydantic-ai ModelSettings (extra keys reach KoboldCpp)."""
        return {
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "rep_pen": self.rep_pen,
        }


PROFILES: dict[str, Profile] = {
    "smalltalk": Profile(
        "smalltalk",
        BASE_PROMPT + " The user is making small talk: reply warmly in one short "
        "sentence.",
        temperature=0.7,
        top_p=0.9,
        rep_pen=1.1,
        max_tokens=60,
        history_turns=4,
    ),
    "chat": Profile(
        "chat",
        BASE_PROMPT + " Be clear and concise; use Markdown when it helps.",
        temperature=0.7,
        top_p=0.92,
        rep_pen=1.1,
        max_tokens=400,
        history_turns=40,
    ),
    "code": Profile(
        "code",
        BASE_PROMPT + " You are an expert programmer. Give correct, idiomatic code in "
        "fenced Markdown blocks with the language name, and explain briefly.",
        temperature=0.2,
        top_p=0.9,
        rep_pen=1.05,
        max_tokens=800,
        history_turns=20,
    ),
    "creative": Profile(
        "creative",
        BASE_PROMPT + " You are a creative writer: vivid, original, with a voice.",
        temperature=1.0,
        top_p=0.95,
        rep_pen=1.15,
        max_tokens=600,
        history_turns=10,
    ),
    "summarize": Profile(
        "summarize",
        BASE_PROMPT + " Summarize the conversation so far (or the text the user "
        "gives) in a few bullet points, keeping names, numbers and decisions.",
        temperature=0.3,
        top_p=0.9,
        rep_pen=1.1,
        max_tokens=300,
        history_turns=100,
    ),
}


def profile_for(intent: str, overrides: ReplyOverrides | None = None) -> Profile:
    """The profile of `intent` ("chat" when unknown), with the conversation's overrides.

    settings.REPLY_PROFILES (optional) changes the defaults, e.g.
    {"smalltalk": {"max_tokens": 40}}.
    """
    profile = PROFILES.get(intent, PROFILES["chat"])
    configured = getattr(settings, "REPLY_PROFILES", None) or {}
    profile = replace(profile, **configured.get(profile.intent, {}))
    if overrides is None:
        return profile
    changes = {
        name: value
        for name in ("system_prompt", "temperature", "top_p", "max_tokens")
        if (value := getattr(overrides, name)) is not None
    }
    return replace(profile, **changes)
