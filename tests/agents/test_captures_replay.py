"""Real KoboldCpp 1.76 and llama-cpp-python wire captures replayed through the decoder.

Each body is fed split at the recorded network chunk boundaries, then byte by byte.
"""

import json
from pathlib import Path

import pytest

from agents.events import Finished, TextDelta
from agents.sse import StreamDecoder

CAPTURES = Path(__file__).resolve().parents[1] / "captures"
ABORTED_TEXT = (
    "The city of Ravensworth was a place of legend, a realm of wonder and terror, "
    "where the very fabric of reality seemed to be woven from the threads of myth and "
    "magic. As the story began, a young and brave individual named Elara Vexi stood at "
    "the edge of the city's underworld, her eyes scanning the darkness with a mix of "
    "trepidation and trembles.\n\nShe was a wizard, Elara Vexi, a sorceress who had "
    "walked the battlefields of the land, but had to flee due"
)
CASES = [
    (
        "koboldcpp-1.76/native_stream",
        "native",
        "Bien sûr !\n\nJe vous aurex l'assistant.\n\nNous l'avons besoin.\n\n"
        "Bien sûr !\n\n",
        "length",
    ),
    (
        "koboldcpp-1.76/native_stream_notrim",
        "native",
        "Bien sûr !\n\nJe vous aurex l'assistant.\n\nNous l'avons besoin.\n\n"
        "Bien sûr !\n\n",
        "length",
    ),
    ("koboldcpp-1.76/native_stream_aborted", "native", ABORTED_TEXT, "length"),
    (
        "koboldcpp-1.76/openai_chat_stream",
        "openai",
        "En ce que c't-on, une phrase est réussite, une phrase est réussite.\n\n"
        "\u00d3céan de ces écris et é",
        "length",
    ),
    (
        "llama-cpp-python-0.3/openai_chat_stream",
        "openai",
        "You're looking for a gift idea that incorporates both my favorite elements. "
        "I'm sure you've found something that combines your love of nature and "
        "your desire",
        "length",
    ),
]


def _network_chunks(name: str) -> list[bytes]:
    """The response body as it arrived: one bytes object per recorded network chunk."""
    raw = (CAPTURES / f"{name}.response").read_bytes()
    sizes = json.loads((CAPTURES / f"{name}.timing.json").read_text())["chunk_sizes"]
    assert sum(sizes) == len(raw)
    head_end = raw.index(b"\r\n\r\n") + 4
    body_spans = _body_spans(raw, head_end)
    chunks, position = [], 0
    for size in sizes:
        start, end = position, position + size
        position = end
        piece = b"".join(raw[max(a, start) : min(b, end)] for a, b in body_spans)
        if piece:
            chunks.append(piece)
    return chunks


def _body_spans(raw: bytes, head_end: int) -> list[tuple[int, int]]:
    """Where the body bytes sit in `raw`, undoing chunked transfer encoding if used."""
    if b"transfer-encoding: chunked" not in raw[:head_end].lower():
        return [(head_end, len(raw))]
    spans, position = [], head_end
    while True:
        line_end = raw.index(b"\r\n", position)
        size = int(raw[position:line_end], 16)
        if size == 0:
            return spans
        spans.append((line_end + 2, line_end + 2 + size))
        position = line_end + 2 + size + 2


def _replay(api: str, chunks: list[bytes]) -> tuple[str, list]:
    decoder = StreamDecoder(api)
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    events += decoder.close()
    text = "".join(event.text for event in events if isinstance(event, TextDelta))
    return text, [event for event in events if isinstance(event, Finished)]


@pytest.mark.parametrize(("name", "api", "text", "reason"), CASES)
def test_capture_at_network_chunks(name, api, text, reason):
    """Split where the network split it, each capture decodes to its exact reply."""
    assert _replay(api, _network_chunks(name)) == (text, [Finished(reason)])


@pytest.mark.parametrize(("name", "api", "text", "reason"), CASES)
def test_capture_byte_by_byte(name, api, text, reason):
    """Fed one byte at a time (UTF-8 and CRLF split everywhere), nothing changes."""
    body = b"".join(_network_chunks(name))
    chunks = [body[i : i + 1] for i in range(len(body))]
    assert _replay(api, chunks) == (text, [Finished(reason)])


def test_network_chunks_really_split_events():
    """The recorded boundaries cut through events, so buffering is exercised."""
    chunks = _network_chunks("koboldcpp-1.76/native_stream")
    assert any(not chunk.endswith(b"\n\n") for chunk in chunks)
