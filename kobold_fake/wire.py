"""Wire format of the fake KoboldCpp: request parsing, its tokenizer, the response heads
(the bodies: kobold_fake/payloads.py).

Mirrors tests/captures (KoboldCpp 1.76), the 1.102 forms and llama-cpp-python 0.3.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
import zlib
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus

SERVER_NAME = "ConcedoLlamaForKoboldServer "  # the trailing space is in the real header
CORS_HEADERS = (
    ("access-control-allow-origin", "*"),
    ("access-control-allow-methods", "*"),
    (
        "access-control-allow-headers",
        "*, Accept, Content-Type, Content-Length, Cache-Control, Accept-Encoding, "
        "X-CSRF-Token, Client-Agent, X-Fields, Content-Type, Authorization, "
        "X-Requested-With, X-HTTP-Method-Override, apikey, genkey",
    ),
    ("cache-control", "no-store"),
)
BUSY_BODY = {
    "detail": {
        "msg": "Server is busy; please try again later.",
        "type": "service_unavailable",
    }
}
UNAUTHORIZED_BODY = {
    "detail": {
        "error": "Unauthorized",
        "msg": "Authentication key is missing or invalid.",
        "type": "unauthorized",
    }
}
BAD_INPUT_BODY = {"detail": {"msg": "Error parsing input.", "type": "bad_input"}}
NOT_FOUND_TEXT = (
    b"Error: HTTP Server is running, but this endpoint does not exist. "
    b"Please check the URL."
)
LLAMACPP_MODEL = "/models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf"
MALFORMED_LINE = b"data: {not json\n\n"
_MAX_HEAD = 65536
_TOKEN_RE = re.compile(r"\w+|[^\w\s]")


def dumps(obj: object) -> bytes:
    """Python's json.dumps defaults, as KoboldCpp uses: ', ' separators, ASCII escapes."""
    return json.dumps(obj).encode()


def compact(obj: object) -> bytes:
    """FastAPI's JSON, as llama-cpp-python answers non-streamed requests."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def token_ids(text: str, *, special: bool = True) -> list[int]:
    """Deterministic stand-in tokenizer: one id per word or punctuation mark, BOS is 1."""
    ids = [2 + zlib.crc32(piece.encode()) % 49000 for piece in _TOKEN_RE.findall(text)]
    return [1, *ids] if special else ids


def prompt_text(body: dict) -> str:
    """The text a generation was asked about, for real usage counts."""
    if isinstance(body.get("messages"), list):
        return " ".join(str(m.get("content", "")) for m in body["messages"])
    return str(body.get("prompt", ""))


@dataclass
class Request:
    """One parsed HTTP request."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def route(self) -> str:
        """The path as KoboldCpp matches it: no query, trailing slashes stripped."""
        return self.path.split("?", 1)[0].rstrip("/")

    def json(self) -> object:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class Connection:
    """One client socket: a request parser and an EOF watcher sharing one buffer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer
        self.buf = bytearray()
        self.eof = False
        self.keep = False  # whether the current request leaves the connection open

    async def _fill(self) -> bool:
        data = await self.reader.read(65536)
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    async def watch_eof(self) -> None:
        """Return when the peer closes; bytes read meanwhile stay for the next request."""
        while not self.eof:
            await self._fill()

    async def read_request(self) -> Request | None:
        """The next request, or None when the peer closed or sent garbage."""
        while (end := self.buf.find(b"\r\n\r\n")) < 0:
            if self.eof or len(self.buf) > _MAX_HEAD or not await self._fill():
                return None
        head = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
        del self.buf[: end + 4]
        parts = head[0].split(" ")
        if len(parts) != 3:
            return None
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        # KoboldCpp reads bodies by Content-Length only: a chunked body reads as empty.
        length = int(headers.get("content-length", "0") or 0)
        while len(self.buf) < length:
            if self.eof or not await self._fill():
                return None
        body = bytes(self.buf[:length])
        del self.buf[:length]
        return Request(parts[0].upper(), parts[1], headers, body)


class BodyWriter:
    """Writes a response, framing body pieces as chunks when the response is chunked."""

    def __init__(self, writer: asyncio.StreamWriter, *, chunked: bool):
        self.writer = writer
        self.chunked = chunked

    async def raw(self, data: bytes) -> None:
        """Send bytes as they are (the head, or a whole unframed body)."""
        if self.writer.is_closing():
            raise ConnectionResetError("peer gone")
        self.writer.write(data)
        await self.writer.drain()

    async def send(self, data: bytes) -> None:
        """Send one body piece; empty pieces send nothing (an empty chunk ends a body)."""
        if data:
            await self.raw(
                b"%x\r\n%b\r\n" % (len(data), data) if self.chunked else data
            )

    async def finish(self) -> None:
        """End a chunked body."""
        if self.chunked:
            await self.raw(b"0\r\n\r\n")


def _head(status_line: str, headers: list[tuple[str, str]]) -> bytes:
    lines = [status_line, *(f"{name}: {value}" for name, value in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def kobold_head(
    status: int,
    *,
    http11: bool = False,
    length: int | None = None,
    content_type: str | None = "application/json",
    stream: bool = False,
    accel: bool = False,
) -> bytes:
    """KoboldCpp's head: http.server's Server/Date, then its own headers in its order."""
    headers = [("Server", SERVER_NAME), ("Date", formatdate(usegmt=True))]
    if stream:
        headers += [("cache-control", "no-cache"), ("connection", "keep-alive")]
    elif http11:
        headers.append(("connection", "keep-alive"))
    if accel:
        headers.append(("X-Accel-Buffering", "no"))
    if length is not None:
        headers.append(("content-length", str(length)))
    headers += CORS_HEADERS
    if content_type:
        headers.append(("content-type", content_type))
    if stream and http11:
        headers.append(("Transfer-Encoding", "chunked"))
    version = "HTTP/1.1" if http11 else "HTTP/1.0"
    return _head(f"{version} {status} {HTTPStatus(status).phrase}", headers)


def llamacpp_head(status: int, *, length: int | None, stream: bool, ms: int) -> bytes:
    """uvicorn's head as llama-cpp-python sends it."""
    headers = [("date", formatdate(usegmt=True)), ("server", "uvicorn")]
    if stream:
        headers += [
            ("cache-control", "no-store"),
            ("connection", "keep-alive"),
            ("x-accel-buffering", "no"),
            ("content-type", "text/event-stream; charset=utf-8"),
        ]
    else:
        headers += [
            ("content-length", str(length)),
            ("content-type", "application/json"),
        ]
    headers += [
        ("openai-processing-ms", str(ms)),
        ("x-request-id", uuid.uuid4().hex),
        ("vary", "Origin"),
    ]
    if stream:
        headers.append(("Transfer-Encoding", "chunked"))
    return _head(f"HTTP/1.1 {status} {HTTPStatus(status).phrase}", headers)
