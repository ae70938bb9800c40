"""Server-sent events from KoboldCpp: an incremental byte parser, a payload decoder.

`SSEParser` turns network chunks into `SSEEvent`s; `StreamDecoder` turns those into
`TextDelta`/`ReasoningDelta`/`Finished` for the native (`{"token": ...}`) and OpenAI
formats.
"""

import codecs
import json
import logging
from dataclasses import dataclass

from agents.events import Finished, ReasoningDelta, TextDelta

logger = logging.getLogger(__name__)

Decoded = TextDelta | ReasoningDelta | Finished

# KoboldCpp 1.76 streams the *string* "null"; newer versions send JSON null.
_NOT_FINISHED = (None, "", "null")


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event: its type and its data lines joined with newlines."""

    event: str
    data: str


class SSEParser:
    """Incremental SSE parser: `feed(bytes)` returns the events completed so far."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._event = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Add bytes; a character or line cut between chunks waits for the rest."""
        self._buffer += self._decoder.decode(chunk)
        return self._drain_lines(final=False)

    def close(self) -> list[SSEEvent]:
        """End of input: the last line and pending event count without a blank line.

        KoboldCpp 1.76 ends its OpenAI stream with `data: [DONE]` and no newline at all.
        """
        self._buffer += self._decoder.decode(b"", final=True)
        events = self._drain_lines(final=True)
        if self._buffer:
            events.extend(self._line(self._buffer))
            self._buffer = ""
        events.extend(self._dispatch())
        return events

    def _drain_lines(self, *, final: bool) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        start = 0
        buffer = self._buffer
        while True:
            cr = buffer.find("\r", start)
            lf = buffer.find("\n", start)
            ends = [i for i in (cr, lf) if i >= 0]
            if not ends:
                break
            end = min(ends)
            if buffer[end] == "\r":
                if end + 1 == len(buffer) and not final:
                    break  # a CR at the end may be the first half of a CRLF
                skip = 2 if buffer.startswith("\n", end + 1) else 1
            else:
                skip = 1
            events.extend(self._line(buffer[start:end]))
            start = end + skip
        self._buffer = buffer[start:]
        return events

    def _line(self, line: str) -> list[SSEEvent]:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return []
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        return []

    def _dispatch(self) -> list[SSEEvent]:
        data, event = self._data, self._event or "message"
        self._data, self._event = [], ""
        if not data:
            return []
        return [SSEEvent(event=event, data="\n".join(data))]


class StreamDecoder:
    """KoboldCpp stream bytes in, `TextDelta`/`Finished` out; nothing after the end.

    The thinking a server splits out itself (OpenAI `delta.reasoning_content`, newer
    KoboldCpp and llama.cpp) comes out as ReasoningDelta, before the delta's content.
    """

    def __init__(self, api: str) -> None:
        if api not in ("native", "openai"):
            raise ValueError(f"unknown api {api!r}")
        self.api = api
        self.finished: Finished | None = None
        self._parser = SSEParser()

    def feed(self, chunk: bytes) -> list[Decoded]:
        """Decode one network chunk."""
        return self._decode(self._parser.feed(chunk))

    def close(self) -> list[Decoded]:
        """Decode what the end of the connection completes."""
        return self._decode(self._parser.close())

    def _decode(self, events: list[SSEEvent]) -> list[Decoded]:
        out: list[Decoded] = []
        for event in events:
            if self.finished is None:
                out.extend(self._payload(event.data))
        return out

    def _payload(self, data: str) -> list[Decoded]:
        if data.strip() == "[DONE]":
            # On KoboldCpp [DONE] follows a finish chunk; alone it still ends cleanly.
            self.finished = Finished(finish_reason="stop")
            return [self.finished]
        try:
            reasoning, text, reason = self._fields(json.loads(data))
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            logger.warning("skipping malformed SSE data line: %.200r", data)
            return []
        out: list[Decoded] = [ReasoningDelta(reasoning)] if reasoning else []
        if text:
            out.append(TextDelta(text))
        if reason not in _NOT_FINISHED:
            self.finished = Finished(finish_reason=str(reason))
            out.append(self.finished)
        return out

    def _fields(self, payload: dict) -> tuple[str, str, object]:
        """The reasoning, the text and the finish reason of one payload."""
        if self.api == "native":
            return "", _as_text(payload["token"]), payload.get("finish_reason")
        if not payload.get("choices"):
            return "", "", None  # a usage-only chunk (newer servers) carries no text
        choice = payload["choices"][0]
        delta = choice.get("delta") or {}
        text = delta.get("content") if "delta" in choice else choice.get("text")
        reasoning = delta.get("reasoning_content") or ""
        return _as_text(reasoning), _as_text(text or ""), choice.get("finish_reason")


def _as_text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"text field is {type(value).__name__}, not str")
    return value
