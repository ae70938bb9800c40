"""Agent factories: the intent classifier agent and the simple chat agent.

The model is passed in, or built from the settings when the factory is called (never at import).
"""

from pydantic_ai import Agent, TextOutput
from pydantic_ai.models import Model
from pydantic_ai.settings import ModelSettings

from agents.intents import INTENTS, Intent
from agents.kobold_model import build_model
from agents.profiles import Profile

# The instruction turn of the intent request, after the history (prompting.Prompt).
# Short on purpose: KoboldCpp re-reads it on every message (measured on 1.76 with
# SmolLM2-135M: 0.25-0.30 s for this one against 0.66 s for a 60-token description,
# with the same labels); the grammar, not the wording, makes the answer a label.
INTENT_INSTRUCTIONS = (
    "One word for the intent of the user's last message: smalltalk, chat, code, "
    "creative or summarize."
)
# GBNF: KoboldCpp (and llama-cpp-python's server) sample nothing but a label.
INTENT_GRAMMAR = "root ::= " + " | ".join(f'"{intent}"' for intent in INTENTS)
# Any two tokens of a label name it (see intent_label); SmolLM2 spells the longest,
# "summarize", in three, and the end token after a label is the fourth.
INTENT_MAX_TOKENS = 4
INTENT_SETTINGS: ModelSettings = {
    "max_tokens": INTENT_MAX_TOKENS,
    "temperature": 0.0,  # KoboldCpp and llama.cpp: greedy
    "grammar": INTENT_GRAMMAR,  # type: ignore[typeddict-unknown-key]
    # pydantic-ai sends max_completion_tokens, which KoboldCpp 1.76 does not read.
    "extra_body": {"grammar": INTENT_GRAMMAR, "max_tokens": INTENT_MAX_TOKENS},
}


def intent_label(text: str) -> Intent:
    """The intent that `text`, the whole reply, names.

    Under the grammar the reply is a label, or the start of one when the token limit
    cut it; a start that only one label has names it too. Raises ValueError for
    anything else (an empty reply, or a server that ignored the grammar).
    """
    label = text.strip().lower()
    found = [intent for intent in INTENTS if label and intent.startswith(label)]
    if len(found) != 1:
        raise ValueError(f"not an intent label: {text[:40]!r}")
    return found[0]


def build_intent_agent(model: Model | None = None) -> Agent[None, Intent]:
    """An agent answering the intent of the user's last message as a bare label.

    The grammar makes a reply of another shape impossible, so there is no output
    retry: a reply `intent_label` refuses raises ValueError. The instruction comes in
    the message history (after the conversation), not as agent instructions, which
    would go first and change the start KoboldCpp has cached.
    """
    return Agent(
        model or build_model(),
        output_type=TextOutput(intent_label),
        model_settings=INTENT_SETTINGS,
        retries={"tools": 0, "output": 0},
        name="intent",
    )


def build_simple_chat_agent(
    model: Model | None = None, profile: Profile | None = None
) -> Agent[None, str]:
    """A plain-text chat agent with `profile`'s sampler values, lenient: 5 retries for
    tools and 5 for output. Its system prompt and instructions come in the history."""
    return Agent(
        model or build_model(),
        output_type=str,
        model_settings=profile.model_settings() if profile else None,
        retries={"tools": 5, "output": 5},
        name="simple_chat",
    )


def with_genkey(model_settings: ModelSettings | None, genkey: str) -> ModelSettings:
    """`model_settings` plus a request's genkey, where each model reads it: at the top
    for KoboldNativeModel, in extra_body for /v1. Pass the agent's settings: run
    settings replace the agent's key by key, extra_body whole."""
    merged = dict(model_settings or {})
    extra_body = dict(merged.get("extra_body") or {})  # type: ignore[arg-type]
    merged.update(genkey=genkey, extra_body={**extra_body, "genkey": genkey})
    return merged  # type: ignore[return-value]
