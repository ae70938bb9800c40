"""GBNF for the fake KoboldCpp, minimally: a grammar of quoted alternatives
(`root ::= "a" | "b"`) constrains the reply to one of them; any other grammar is ignored.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kobold_fake.script import Script

_LITERAL = r'"[^"\\]*"'
_ALTERNATIVES = re.compile(rf"\s*root\s*::=\s*({_LITERAL}(?:\s*\|\s*{_LITERAL})*)\s*")


def grammar_choices(grammar: object) -> list[str] | None:
    """The literals of a `root ::= "a" | "b" | ...` grammar; None for anything else."""
    if not isinstance(grammar, str):
        return None
    match = _ALTERNATIVES.fullmatch(grammar)
    return re.findall(r'"([^"\\]*)"', match[1]) if match else None


def constrained(script: Script, grammar: object) -> Script:
    """`script` as the grammar lets it answer: its own text when that is one of the
    choices (so a test picks the label), else the first choice, in one token."""
    choices = grammar_choices(grammar)
    if not choices:
        return script
    text = "".join(script.tokens)
    return replace(script, tokens=[text if text in choices else choices[0]])
