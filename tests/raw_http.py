"""Raw HTTP/1.x over sockets, for tests that must see the fake KoboldCpp's exact bytes, and
the recorded captures of the real servers they are compared with."""

import json
import re
import socket
from pathlib import Path

from kobold_fake.server import Script

CAPTURES = Path(__file__).resolve().parent / "captures"
KOBOLD = CAPTURES / "koboldcpp-1.76"
LLAMA = CAPTURES / "llama-cpp-python-0.3"


def connect(fake, request: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", fake.port), timeout=5)
    sock.sendall(request)
    return sock


def read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    return data


def read_until(sock: socket.socket, needle: bytes, count: int = 1) -> bytes:
    data = b""
    while data.count(needle) < count:
        chunk = sock.recv(65536)
        assert chunk, f"closed before {count} x {needle!r}: {data!r}"
        data += chunk
    return data


def read_sized(sock: socket.socket) -> bytes:
    """One response with a content-length, on a connection that stays open."""
    data = read_until(sock, b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: (\d+)", data).group(1))
    while len(data.split(b"\r\n\r\n", 1)[1]) < length:
        data += sock.recv(65536)
    sock.close()
    return data


def exchange(fake, request: bytes) -> bytes:
    return read_all(connect(fake, request))


def post(path: str, body: dict, auth: str | None = None) -> bytes:
    payload = json.dumps(body).encode()
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    if auth:
        head += f"Authorization: Bearer {auth}\r\n"
    return head.encode() + b"Content-Length: %d\r\n\r\n" % len(payload) + payload


def normalize(data: bytes) -> bytes:
    """Blank what changes between runs: dates, timestamps, llama-cpp-python's ids."""
    data = re.sub(rb"(?im)^(date: ).*?\r$", rb"\1DATE\r", data)
    data = re.sub(rb'"created": ?\d+', b'"created": 0', data)
    data = re.sub(rb"(?m)^(x-request-id: )\w+", rb"\1ID", data)
    data = re.sub(rb"(?m)^(openai-processing-ms: )\d+", rb"\1MS", data)
    return re.sub(rb"(chatcmpl|cmpl)-[0-9a-f-]{36}", rb"\1-ID", data)


def dechunk(data: bytes) -> bytes:
    head, _, body = data.partition(b"\r\n\r\n")
    out = b""
    while body:
        size, _, body = body.partition(b"\r\n")
        length = int(size, 16)
        out, body = out + body[:length], body[length + 2 :]
    return head + b"\r\n\r\n" + out


def capture(folder: Path, name: str) -> tuple[bytes, bytes]:
    return (folder / f"{name}.request").read_bytes(), (
        folder / f"{name}.response"
    ).read_bytes()


def script_from(response: bytes) -> Script:
    """The script that makes the fake say what the capture's server said."""
    body = response.split(b"\r\n\r\n", 1)[1]
    if body.startswith(b"{"):
        data = json.loads(body)
        if "results" in data:
            result = data["results"][0]
            return Script(
                tokens=[result["text"]], finish_reason=result["finish_reason"]
            )
        if "choices" not in data:  # not a generation: the script is never used
            return Script()
        choice = data["choices"][0]
        return Script(
            [choice["message"]["content"]], finish_reason=choice["finish_reason"]
        )
    tokens, reason = [], "stop"
    for line in body.split(b"\n"):
        if line.startswith(b"data: {"):
            event = json.loads(line[6:])
            if "token" in event:
                tokens.append(event["token"])
                reason = event["finish_reason"]
                continue
            choice = event["choices"][0]
            if "content" in choice["delta"]:
                tokens.append(choice["delta"]["content"])
            reason = choice["finish_reason"] or reason
    return Script(tokens=tokens, finish_reason=reason)
