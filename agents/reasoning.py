"""The model's thinking apart from its answer: a streaming splitter for the reasoning
markers of KoboldCpp's `thinkformats`, fed the reply's text as it arrives."""

from dataclasses import dataclass

from agents.events import AnswerRetracted, ReasoningDelta, TextDelta

Piece = TextDelta | ReasoningDelta | AnswerRetracted


@dataclass(frozen=True)
class ThinkFormat:
    """The markers of one family of reasoning models."""

    name: str
    opens: str  # opens the thinking, at the reply's start only
    closes: tuple[str, ...]  # ends it, also as the first marker of a reply
    # End it only after `opens`: `<|end|>` ends every Phi-3 turn too.
    inner_closes: tuple[str, ...] = ()
    preamble: tuple[str, ...] = ()  # between the thinking and the answer, dropped
    answer_markers: tuple[str, ...] = ()  # inside the answer, dropped


FORMATS = (
    ThinkFormat("think", "<think>", ("</think>",)),
    ThinkFormat(
        "gpt-oss",
        "<|channel|>analysis<|message|>",
        (
            "<|start|>assistant<|channel|>final<|message|>",
            "<|channel|>final<|message|>",
        ),
        inner_closes=("<|end|>",),
        preamble=("<|start|>assistant", "<|channel|>final<|message|>"),
        answer_markers=("<|end|>", "<|return|>"),
    ),
    ThinkFormat("seed", "<seed:think>", ("</seed:think>",)),
    ThinkFormat(
        "command-r",
        "<|START_THINKING|>",
        ("<|END_THINKING|>",),
        preamble=("<|START_RESPONSE|>",),
        answer_markers=("<|END_RESPONSE|>",),
    ),
    ThinkFormat("gemma4", "<|channel>thought", ("<channel|>",)),
)

# What a reply may start with, longest first: a marker that is the start of a longer
# one must not win while the longer one matches.
_AT_START = sorted(
    [(f.opens, "open", f) for f in FORMATS]
    + [(tag, "close", f) for f in FORMATS for tag in f.closes]
    + [(tag, "preamble", f) for f in FORMATS for tag in f.preamble],
    key=lambda entry: -len(entry[0]),
)
# Looked for in an answer that opened with no marker: a closing one means all before
# it was thinking; an opening one (mid-answer, so answer text) ends the looking.
_IN_PLAIN_ANSWER = {
    **{f.opens: ("open", f) for f in FORMATS},
    **{tag: ("close", f) for f in FORMATS for tag in f.closes},
}


class ReasoningSplitter:
    """Feed it the reply's text in chunks of any size; it returns the pieces it can
    already classify: ReasoningDelta, TextDelta, and AnswerRetracted when a closing
    marker comes before any opening one (then all answered so far was thinking).

    Thinking is recognised at the reply's start only (after whitespace); the markers
    never reach either side, and whitespace between thinking and answer is dropped.
    Text that may be the start of a marker is held until it cannot be; `finish()`
    releases the rest. With no thinking, the TextDeltas join to the text fed.
    """

    def __init__(self) -> None:
        self.format: ThinkFormat | None = None  # the family recognised, if any
        self._state = "start"  # start | reasoning | after | answer
        self._buffer = ""
        self._answered = ""  # the answer so far, while a closing marker may retract it
        self._may_retract = True
        self._thinking = False  # opened and not closed yet
        self._reasoned = False  # some thinking was passed on
        self._space = ""  # whitespace after the server's reasoning so far
        self._finished = False

    @property
    def unclosed_reasoning(self) -> bool:
        """The reply ended while the model was still thinking (known after finish())."""
        return self._finished and self._thinking

    def feed(self, text: str) -> list[Piece]:
        """The pieces that `text`, the reply's next chunk, completes."""
        self._buffer += text
        return self._drain(final=False)

    def feed_reasoning(self, text: str) -> list[Piece]:
        """Thinking the server already split out (OpenAI `delta.reasoning_content`):
        passed on, and the content after it is all answer."""
        if self._state == "start":
            self._state, self._thinking, self._may_retract = "after", True, False
        # The whitespace around it is dropped, as around tagged thinking.
        text = text if self._reasoned else text.lstrip()
        body = text.rstrip()
        pieces: list[Piece] = []
        if body:
            self._reason(pieces, self._space + body)
            self._space = ""
        self._space += text[len(body) :]
        return pieces

    def finish(self) -> list[Piece]:
        """The end of the reply: everything still held, classified."""
        pieces = self._drain(final=True)
        self._finished = True
        return pieces

    def _drain(self, *, final: bool) -> list[Piece]:
        pieces: list[Piece] = []
        step = {
            "start": self._start,
            "reasoning": self._reasoning,
            "after": self._after,
            "answer": self._answer,
        }
        while self._buffer and step[self._state](pieces, final):
            pass
        return pieces

    # Each step consumes what it can of the buffer and says whether to go on.

    def _start(self, pieces: list[Piece], final: bool) -> bool:
        rest = self._buffer.lstrip()
        if not rest:
            if final:
                self._answer_text(pieces, self._buffer)
                self._buffer = ""
            return False
        for tag, kind, fmt in _AT_START:
            if rest.startswith(tag):
                self._buffer = rest[len(tag) :]
                self.format, self._may_retract = fmt, False
                self._state = "reasoning" if kind == "open" else "after"
                self._thinking = kind == "open"
                return True
        if not final and any(tag.startswith(rest) for tag, _, _ in _AT_START):
            return False
        self._state = "answer"
        return True

    def _reasoning(self, pieces: list[Piece], final: bool) -> bool:
        # The whitespace around the thinking (`<think>\n...\n</think>`) is dropped:
        # leading at once, trailing held until more thinking follows it.
        assert self.format is not None
        if not self._reasoned:
            self._buffer = self._buffer.lstrip()
        tags = self.format.closes + self.format.inner_closes
        found = _earliest(self._buffer, tags)
        if found is None:
            keep = 0 if final else _held(self._buffer, tags)
            body = self._buffer[: len(self._buffer) - keep].rstrip()
            self._reason(pieces, body)
            self._buffer = "" if final else self._buffer[len(body) :]
            return False
        index, tag = found
        self._reason(pieces, self._buffer[:index].rstrip())
        self._buffer = self._buffer[index + len(tag) :]
        self._state, self._thinking = "after", False
        return True

    def _reason(self, pieces: list[Piece], text: str) -> None:
        self._reasoned = self._reasoned or bool(text)
        _add(pieces, ReasoningDelta, text)

    def _after(self, pieces: list[Piece], final: bool) -> bool:
        rest = self._buffer.lstrip()
        self._buffer = rest
        preamble = self.format.preamble if self.format else ()
        for tag in preamble:
            if rest.startswith(tag):
                self._buffer = rest[len(tag) :]
                return True
        if not rest or (not final and any(tag.startswith(rest) for tag in preamble)):
            return False
        self._state, self._thinking = "answer", False
        return True

    def _answer(self, pieces: list[Piece], final: bool) -> bool:
        if self._may_retract:
            tags: tuple[str, ...] = tuple(_IN_PLAIN_ANSWER)
        else:
            tags = self.format.answer_markers if self.format else ()
        found = _earliest(self._buffer, tags) if tags else None
        if found is None:
            keep = _held(self._buffer, tags) if tags and not final else 0
            self._answer_text(pieces, self._buffer[: len(self._buffer) - keep])
            self._buffer = self._buffer[len(self._buffer) - keep :]
            return False
        index, tag = found
        if not self._may_retract:  # an answer marker: dropped
            self._answer_text(pieces, self._buffer[:index])
        elif _IN_PLAIN_ANSWER[tag][0] == "open":  # mid-answer: plain text
            self._answer_text(pieces, self._buffer[: index + len(tag)])
            self._may_retract, self._answered = False, ""
        else:
            self._retract(pieces, self._buffer[:index], _IN_PLAIN_ANSWER[tag][1])
        self._buffer = self._buffer[index + len(tag) :]
        return True

    def _answer_text(self, pieces: list[Piece], text: str) -> None:
        if self._may_retract:
            self._answered += text
        _add(pieces, TextDelta, text)

    def _retract(self, pieces: list[Piece], text: str, fmt: ThinkFormat) -> None:
        if self._answered:
            pieces.append(AnswerRetracted())
        self._reason(pieces, (self._answered + text).strip())
        self._answered, self._may_retract = "", False
        self.format, self._state = fmt, "after"


def _earliest(text: str, tags: tuple[str, ...]) -> tuple[int, str] | None:
    """The first complete marker in `text` (the longest of those starting there)."""
    hits = [(index, -len(tag), tag) for tag in tags if (index := text.find(tag)) >= 0]
    if not hits:
        return None
    index, _, tag = min(hits)
    return index, tag


def _held(text: str, tags: tuple[str, ...]) -> int:
    """How many characters at the end of `text` may be the start of a marker."""
    longest = max((len(tag) for tag in tags), default=1) - 1
    # Once per token: only a tail that begins as some marker begins is tried (each
    # tail against every marker was most of the relay's CPU time per token).
    firsts = {tag[0] for tag in tags if tag}
    index = len(text) - min(longest, len(text))
    while True:
        found = [i for first in firsts if (i := text.find(first, index)) >= 0]
        if not found:
            return 0
        index = min(found)
        if any(tag.startswith(text[index:]) for tag in tags):
            return len(text) - index
        index += 1


def _add(
    pieces: list[Piece], kind: type[TextDelta | ReasoningDelta], text: str
) -> None:
    if text:
        pieces.append(kind(text))
