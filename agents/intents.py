"""Heuristic intent classifier: the fast path for obvious messages and the fallback for all.

Pure functions over the text, English and French; no model, no I/O.
"""

import re
from dataclasses import dataclass
from typing import Literal

Intent = Literal["smalltalk", "chat", "code", "creative", "summarize"]
INTENTS: tuple[Intent, ...] = ("smalltalk", "chat", "code", "creative", "summarize")

SLASH_COMMANDS: dict[str, Intent] = {
    "/code": "code",
    "/summarize": "summarize",
    "/summary": "summarize",
    "/creative": "creative",
    "/chat": "chat",
}

_SMALLTALK_EN = {
    "hi", "hello", "hey", "yo", "hiya", "howdy", "good morning", "good evening",
    "good afternoon", "thanks", "thank you", "thx", "ty", "thanks a lot", "cheers",
    "bye", "goodbye", "good night", "see you", "see ya", "ok thanks", "how are you",
}  # fmt: skip
_SMALLTALK_FR = {
    "salut", "bonjour", "bonsoir", "coucou", "merci", "merci beaucoup",
    "au revoir", "bonne nuit", "a plus", "à plus", "a bientot", "à bientôt", "ciao",
    "ça va", "ca va", "bonne journée", "bonne journee", "merci bien", "re",
}  # fmt: skip

_CODE_HINTS = re.compile(
    r"```|\bdef \w+\(|\bclass \w+[:(]|\bimport \w+|\bfunction \w*\(|=>|#include|"
    r"\bconsole\.log\(|\bSELECT\b.+\bFROM\b|\{\s*\n|;\s*$|\btraceback\b|\bstack trace\b|"
    r"\b(python|javascript|typescript|rust|golang|java|sql|regex|bash)\b.*\b(code|function|"
    r"script|bug|error|fonction)\b|\b(write|écris|ecris) (a |une |un )?(function|fonction|"
    r"script|program|programme)\b",
    re.IGNORECASE | re.MULTILINE,
)
_SUMMARIZE_HINTS = re.compile(
    r"\b(summari[sz]e|summary|tl;?dr|résume|resume|résumé|récapitule|recap)\b",
    re.IGNORECASE,
)
_CREATIVE_HINTS = re.compile(
    r"\b(write|compose|tell)( me)? (a|an|some)? ?(poem|story|song|haiku|limerick|tale|"
    r"sonnet)\b|\b(écris|ecris|raconte)(-moi)? (un|une)? ?(poème|poeme|histoire|"
    r"chanson|conte|haïku|haiku)\b",
    re.IGNORECASE,
)
_TRAILING = re.compile(r"[\s!?.,;:~)(*^_-]+$")


@dataclass(frozen=True, slots=True)
class HeuristicResult:
    """What the heuristic thinks, and whether it is sure enough to skip the model."""

    intent: Intent
    unambiguous: bool


def _normalized(text: str) -> str:
    return _TRAILING.sub("", " ".join(text.lower().split()))


def slash_command(text: str) -> tuple[Intent, str] | None:
    """(intent, rest of the message) when the text starts with a known slash command."""
    head, _, rest = text.strip().partition(" ")
    intent = SLASH_COMMANDS.get(head.lower())
    return (intent, rest.strip()) if intent else None


def classify(text: str) -> HeuristicResult:
    """Classify `text`; `unambiguous` marks the cases the orchestrator answers at once."""
    command = slash_command(text)
    if command:
        return HeuristicResult(command[0], True)
    norm = _normalized(text)
    if norm in _SMALLTALK_FR or norm in _SMALLTALK_EN:
        return HeuristicResult("smalltalk", True)
    if _CODE_HINTS.search(text):
        return HeuristicResult("code", False)
    if _CREATIVE_HINTS.search(text):
        return HeuristicResult("creative", False)
    if _SUMMARIZE_HINTS.search(text):
        return HeuristicResult("summarize", False)
    return HeuristicResult("chat", False)
