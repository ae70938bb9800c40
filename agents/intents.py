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

_FRENCH_WORDS = re.compile(
    r"\b(le|la|les|un|une|des|est|et|je|tu|vous|nous|pas|pour|avec|bonjour|salut|"
    r"merci|coucou|écris|ecris|résume|resume|résumé|poème|histoire|quoi|comment|"
    r"pourquoi|ça|ca|oui|non|mon|ma|mes|du|au)\b",
    re.IGNORECASE,
)
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
    confidence: float
    language: str
    unambiguous: bool


def detect_language(text: str) -> str:
    """ "fr" when the text looks French (accents or common French words), else "en"."""
    if re.search(r"[àâçéèêëîïôûùüÿœ]", text, re.IGNORECASE):
        return "fr"
    return "fr" if _FRENCH_WORDS.search(text) else "en"


def _normalized(text: str) -> str:
    return _TRAILING.sub("", " ".join(text.lower().split()))


def slash_command(text: str) -> tuple[Intent, str] | None:
    """(intent, rest of the message) when the text starts with a known slash command."""
    head, _, rest = text.strip().partition(" ")
    intent = SLASH_COMMANDS.get(head.lower())
    return (intent, rest.strip()) if intent else None


def classify(text: str) -> HeuristicResult:
    """Classify `text`; `unambiguous` marks the cases the orchestrator answers at once."""
    language = detect_language(text)
    command = slash_command(text)
    if command:
        return HeuristicResult(command[0], 1.0, language, True)
    norm = _normalized(text)
    if norm in _SMALLTALK_FR:
        return HeuristicResult("smalltalk", 0.95, "fr", True)
    if norm in _SMALLTALK_EN:
        return HeuristicResult("smalltalk", 0.95, "en", True)
    if _CODE_HINTS.search(text):
        return HeuristicResult("code", 0.7, language, False)
    if _CREATIVE_HINTS.search(text):
        return HeuristicResult("creative", 0.7, language, False)
    if _SUMMARIZE_HINTS.search(text):
        return HeuristicResult("summarize", 0.7, language, False)
    return HeuristicResult("chat", 0.5, language, False)
