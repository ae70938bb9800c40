"""What the fake KoboldCpp is told to do and what it records: scripts, the limits of
one generation (token budget, stop strings), a generation running, requests and
outcomes as seen."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from kobold_fake.wire import BAD_INPUT_BODY, BUSY_BODY, UNAUTHORIZED_BODY


@dataclass
class Limits:
    """How far one generation may go: token budget, stop strings, trimming."""

    max_length: int
    stops: list[str]
    trim: bool


def generation_limits(api: str, body: dict, style: str) -> Limits:
    """KoboldCpp's defaults: 180 native/completion tokens, 400 chat; /v1 trims stops."""
    native = api.startswith("native")
    key, default = ("max_length", 180) if native else ("max_tokens", 400)
    if api == "text":
        default = 180
    max_length = body.get(key, default)
    if not isinstance(max_length, int) or max_length <= 0:
        max_length = default
    stops = body.get("stop_sequence" if native else "stop") or []
    stops = (
        [stops] if isinstance(stops, str) else [s for s in stops if isinstance(s, str)]
    )
    # /v1 forces trim_stop; 1.102 made it the default when streaming natively.
    trim = body.get("trim_stop", style != "1.76" and api == "native_stream")
    return Limits(max_length, stops, bool(trim) or not native)


def cut_at_stop(done: str, token: str, limits: Limits) -> tuple[str, bool]:
    """The part of token to emit and whether a stop sequence ended the generation."""
    text = done + token
    hits = []
    for stop in limits.stops:
        if stop and (idx := text.find(stop, max(0, len(done) - len(stop) + 1))) >= 0:
            hits.append((idx, stop))
    if not hits:
        return token, False
    idx, stop = min(hits)
    end = idx if limits.trim else idx + len(stop)
    return text[len(done) : max(end, len(done))], True


def valid_messages(body: dict) -> bool:
    """Whether every chat message has a role and content (else 1.76 drops the socket)."""
    messages = body.get("messages")
    return isinstance(messages, list) and all(
        isinstance(m, dict) and "role" in m and "content" in m for m in messages
    )


HTTP_FAULTS = {
    "http_503": (503, BUSY_BODY),
    "http_401": (401, UNAUTHORIZED_BODY),
    "http_500": (500, BAD_INPUT_BODY),
}


@dataclass
class Script:
    """What one generation request does.

    fault: refuse | http_503 | http_401 | http_500 | drop_mid | malformed | stall_mid |
    stall_before_first | fail (1.117: the generation fails at token `fault_at`; the
    text so far ends with finish_reason "error").
    """

    tokens: list[str] = field(default_factory=lambda: ["Hello", " there", "!"])
    delay: float = 0.0
    first_token_delay: float = 0.0
    finish_reason: str = "stop"
    fault: str | None = None
    fault_at: int = 1
    # Stream the thinking on /v1/chat/completions as `delta.reasoning_content`, like
    # KoboldCpp 1.117 (kobold_fake/thinking.py); the native API sends the tags as text.
    reasoning_content: bool = False


@dataclass
class Recorded:
    """One request as received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: object = None


@dataclass
class Outcome:
    """How one generation ended. ended_by: done|stop_sequence|abort|disconnect|fault."""

    genkey: str
    text: str
    finish_reason: str | None
    ended_by: str


class Generation:
    """One generation as abort and generate/check see it."""

    def __init__(self, genkey: str, stream: bool):
        self.genkey = genkey
        self.stream = stream
        self.text = ""
        self.aborted = False
        self.client_gone = False
        self.stop_hit = False
        self.waiter: asyncio.Future | None = None
        self.waiting_forever = False

    @property
    def stopped(self) -> bool:
        # A non-streamed generation runs on after its client left, like the real one.
        return self.aborted or (self.stream and self.client_gone)

    def wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)
