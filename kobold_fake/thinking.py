"""KoboldCpp 1.117's split of a streamed chat reply at its `thinkformats` tags, for the
fake: which tokens go out as `delta.reasoning_content`, which as content, which not."""

from __future__ import annotations

# koboldcpp.py 1.117.1, `thinkformats`: (start, end) of each family's thinking.
THINKFORMATS = (
    ("<|channel|>analysis<|message|>", "<|start|>assistant<|channel|>final<|message|>"),
    ("<think>", "</think>"),
    ("<seed:think>", "</seed:think>"),
    ("<|START_THINKING|>", "<|END_THINKING|>"),
    ("<|channel>thought", "<channel|>"),
)


class ThinkingSplit:
    """The tokens of one stream, in order. A script's tags are whole tokens here (the
    real server matches them in the text); thinking counts at the reply's start only."""

    def __init__(self) -> None:
        self._end: str | None = None
        self._first = True

    def field(self, token: str) -> str | None:
        """ "reasoning_content" or "content" for `token`; None for a tag, sent as nothing."""
        first, self._first = self._first, False
        if first:
            for start, end in THINKFORMATS:
                if token == start:
                    self._end = end
                    return None
        if self._end is None:
            return "content"
        if token == self._end:
            self._end = None
            return None
        return "reasoning_content"
