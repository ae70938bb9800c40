"""The two ways of reading one reply: through the app (a WebSocket client with an API key)
and straight from the upstream's SSE (httpx). Both record when each stamped token arrived."""

import json
import time
from dataclasses import dataclass, field

import httpx
import websockets

from agents.request_body import new_genkey
from bench.upstream import TOKEN, order_text


@dataclass
class Trace:
    """One reply as a client saw it."""

    expected: int
    sent_ns: int = 0
    first_ns: int = 0
    last_ns: int = 0
    latencies_ms: list[float] = field(default_factory=list)  # one per token
    indexes: list[int] = field(default_factory=list)
    frames: int = 0
    status: str = ""
    errors: list[str] = field(default_factory=list)
    _buffer: str = ""

    def on_text(self, text: str, now: int) -> None:
        """Take in text; complete tokens are timed at `now`."""
        if not self.first_ns and text:
            self.first_ns = now
        self.last_ns = now
        self._buffer += text
        end = 0
        for match in TOKEN.finditer(self._buffer):
            self.indexes.append(int(match[1]))
            self.latencies_ms.append((now - int(match[2])) / 1e6)
            end = match.end()
        self._buffer = self._buffer[end:]

    @property
    def ttft_ms(self) -> float | None:
        return (self.first_ns - self.sent_ns) / 1e6 if self.first_ns else None

    @property
    def tokens_per_s(self) -> float | None:
        span = (self.last_ns - self.first_ns) / 1e9
        return round((len(self.indexes) - 1) / span, 1) if span > 0 else None

    @property
    def complete(self) -> bool:
        """Every token arrived, once, in order, and nothing went wrong."""
        return (
            not self.errors
            and self.status in ("complete", "stop", "length")
            and self.indexes == list(range(self.expected))
        )


def _bench_headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def ws_connect(ws_url: str, key: str):
    return await websockets.connect(
        f"{ws_url}/api/ws/chat",
        additional_headers=_bench_headers(key),
        max_size=None,
        open_timeout=60,
        ping_interval=None,
    )


async def ws_reply(socket, conversation_id: int, tokens: int, delay: float) -> Trace:
    """Ask for a reply on an open socket and read its frames up to `end`."""
    trace = Trace(expected=tokens)
    frame = {
        "type": "message",
        "text": order_text(tokens, delay),
        "conversation_id": conversation_id,
    }
    trace.sent_ns = time.time_ns()
    await socket.send(json.dumps(frame))
    try:
        await _read_reply(socket, trace)
    except websockets.ConnectionClosed as exc:  # the server closed it (1011: it failed)
        trace.errors.append(f"closed_{exc.rcvd.code if exc.rcvd else 'abruptly'}")
    return trace


async def _read_reply(socket, trace: Trace) -> None:
    received = 0
    async for raw in socket:
        now = time.time_ns()
        frame = json.loads(raw)
        kind = frame.get("type")
        if kind == "token":
            trace.frames += 1
            if frame["offset"] != received and "offset_gap" not in trace.errors:
                trace.errors.append("offset_gap")  # frames were lost on the way
            received += len(frame["text"])
            trace.on_text(frame["text"], now)
        elif kind == "error":
            trace.errors.append(frame.get("code", "?"))
        elif kind == "end":
            trace.status = frame["status"]
            if frame.get("error_code"):
                trace.errors.append(frame["error_code"])
            break


def direct_client(connections: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections + 5)
    return httpx.AsyncClient(timeout=httpx.Timeout(120.0), limits=limits)


async def direct_reply(
    client: httpx.AsyncClient, base_url: str, tokens: int, delay: float
) -> Trace:
    """The same reply read from the upstream's native SSE stream, no app in between."""
    trace = Trace(expected=tokens)
    body = {
        "prompt": order_text(tokens, delay),
        "max_length": tokens,
        "genkey": new_genkey(),
    }
    trace.sent_ns = time.time_ns()
    url = f"{base_url}/api/extra/generate/stream"
    try:
        async with client.stream("POST", url, json=body) as response:
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                now = time.time_ns()
                event = json.loads(line[5:])
                trace.frames += 1
                trace.on_text(event.get("token", ""), now)
                if event.get("finish_reason") not in (None, "null"):
                    trace.status = event["finish_reason"]
    except httpx.HTTPError as exc:
        trace.errors.append(type(exc).__name__)
    return trace
