"""Agent factories: the intent classifier agent and the plain chat agents.

The model is passed in, or built from the settings when the factory is called (never at import).
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_ai import Agent, PromptedOutput
from pydantic_ai.models import Model

from agents.kobold_model import build_model
from agents.profiles import Profile

INTENT_INSTRUCTIONS = (
    "You route chat messages. Classify the user's last message into one intent:\n"
    "- smalltalk: greetings, thanks, goodbyes, how-are-you, short pleasantries;\n"
    "- code: programming, code, errors, commands, regular expressions;\n"
    "- creative: poems, stories, songs, fiction, role play;\n"
    "- summarize: asks to summarize or recap the conversation or a text;\n"
    "- chat: anything else (questions, explanations, advice).\n"
    "Answer with the JSON object only, no other text."
)


class IntentDecision(BaseModel):
    """The intent of the user's last message."""

    # Field docstrings become schema descriptions, which the prompted output shows.
    model_config = ConfigDict(use_attribute_docstrings=True)

    intent: Literal["smalltalk", "chat", "code", "creative", "summarize"]
    """What kind of answer the message needs."""
    confidence: float = Field(default=0.5, ge=0.0, le=1.0)
    """How sure the classification is, from 0 to 1."""
    language: str = "en"
    """ISO 639-1 code of the message's language, e.g. "en" or "fr"."""


def build_intent_agent(model: Model | None = None) -> Agent[None, IntentDecision]:
    """An agent answering an `IntentDecision` as prompted JSON (KoboldCpp has no tools)."""
    return Agent(
        model or build_model(),
        output_type=PromptedOutput(
            IntentDecision,
            name="intent_decision",
            description="The intent of the user's last message.",
        ),
        instructions=INTENT_INSTRUCTIONS,
        model_settings={"temperature": 0.1, "max_tokens": 60},
        retries={"tools": 1, "output": 1},
        name="intent",
    )


def build_simple_chat_agent(
    model: Model | None = None, profile: Profile | None = None
) -> Agent[None, str]:
    """A plain-text chat agent, lenient: 5 retries for tools and 5 for output."""
    return Agent(
        model or build_model(),
        output_type=str,
        instructions=profile.system_prompt if profile else None,
        model_settings=profile.model_settings() if profile else None,
        retries={"tools": 5, "output": 5},
        name="simple_chat",
    )


def build_chat_agent(profile: Profile, model: Model | None = None) -> Agent[None, str]:
    """A plain-text agent answering with `profile`'s system prompt and sampler values."""
    return Agent(
        model or build_model(),
        output_type=str,
        instructions=profile.system_prompt,
        model_settings=profile.model_settings(),
        name=f"chat_{profile.intent}",
    )
