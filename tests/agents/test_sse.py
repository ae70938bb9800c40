"""The SSE byte parser and the KoboldCpp payload decoder (native and OpenAI chunks)."""

import json
import logging

from hypothesis import given
from hypothesis import strategies as st

from agents.events import Finished, ReasoningDelta, TextDelta
from agents.sse import SSEEvent, SSEParser, StreamDecoder


def parse(*chunks: bytes) -> list[SSEEvent]:
    parser = SSEParser()
    events = [event for chunk in chunks for event in parser.feed(chunk)]
    return events + parser.close()


def decode(api: str, *chunks: bytes) -> list:
    decoder = StreamDecoder(api)
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    return events + decoder.close()


def native(token: str, reason: object = "null") -> bytes:
    payload = json.dumps({"token": token, "finish_reason": reason})
    return f"event: message\ndata: {payload}\n\n".encode()


def openai(content: str | None, reason: object = "null") -> bytes:
    delta = {} if content is None else {"role": "assistant", "content": content}
    choice = {"index": 0, "finish_reason": reason, "delta": delta}
    return f"data: {json.dumps({'choices': [choice]})}\n\n".encode()


def test_comment_lines_are_ignored():
    """Lines starting with ':' (SSE comments, keep-alives) produce nothing."""
    assert parse(b": ping\n\n: another\ndata: x\n\n") == [SSEEvent("message", "x")]


def test_event_line_sets_the_type():
    """An `event:` line names the event it belongs to, and only that one."""
    events = parse(b"event: message\ndata: a\n\nevent: other\ndata: b\n\ndata: c\n\n")
    assert [e.event for e in events] == ["message", "other", "message"]


def test_multi_line_data_is_joined_with_newlines():
    """Several `data:` lines of one event are joined with '\\n'."""
    assert parse(b"data: one\ndata: two\ndata:three\n\n") == [
        SSEEvent("message", "one\ntwo\nthree")
    ]


def test_crlf_and_cr_line_endings():
    """CRLF, lone CR and LF all end lines, even when a CRLF is split across chunks."""
    events = parse(b"data: a\r", b"\n\r\ndata: b\r\rdata: c\n\n")
    assert events == [
        SSEEvent("message", "a"),
        SSEEvent("message", "b"),
        SSEEvent("message", "c"),
    ]


def test_utf8_split_across_chunks():
    """A multi-byte character cut between two chunks is decoded whole."""
    raw = "data: é🙂\n\n".encode()
    cut = raw.index("🙂".encode()) + 2
    assert parse(raw[:cut], raw[cut:]) == [SSEEvent("message", "é🙂")]


def test_end_of_input_flushes_a_pending_event():
    """The last event counts at EOF without its blank line, or without any newline."""
    assert parse(b"data: [DONE]") == [SSEEvent("message", "[DONE]")]
    assert parse(b"data: x\n") == [SSEEvent("message", "x")]


def test_native_string_null_is_not_a_finish():
    """KoboldCpp 1.76's "null" string, JSON null and an absent reason all go on."""
    events = decode(
        "native",
        native("a"),
        native("b", None),
        b'data: {"token": "c"}\n\n',
        native("", "stop"),
    )
    assert events == [TextDelta("a"), TextDelta("b"), TextDelta("c"), Finished("stop")]


def test_native_error_reason_is_a_finish():
    """KoboldCpp 1.117's "error" ends the stream like any other reason (the transport
    turns it into GenerationFailed)."""
    decoder = StreamDecoder("native")
    events = decoder.feed(native("par", None) + native("", "error") + native("x"))
    assert events == [TextDelta("par"), Finished("error")]
    assert decoder.finished == Finished("error")


def test_native_final_event_carries_text_and_reason():
    """The last native event's text comes before its Finished."""
    assert decode("native", native("end", "length")) == [
        TextDelta("end"),
        Finished("length"),
    ]


def test_unicode_escapes_are_decoded():
    """json.dumps's \\uXXXX escapes (ensure_ascii) give back the real characters."""
    raw = b'data: {"token": "s\\u00fbr \\ud83d\\ude42", "finish_reason": "stop"}\n\n'
    assert decode("native", raw) == [TextDelta("sûr 🙂"), Finished("stop")]


def test_openai_chunks_and_done_without_newline():
    """OpenAI chunks give deltas; `data: [DONE]` with no newline is accepted at EOF."""
    events = decode("openai", openai("Hi"), openai(" you", "length"), b"data: [DONE]")
    assert events == [TextDelta("Hi"), TextDelta(" you"), Finished("length")]


def test_openai_role_only_and_empty_final_chunks():
    """llama-cpp-python: role-only first chunk, JSON null reasons, empty last delta."""
    events = decode(
        "openai",
        openai(None, None),
        openai("x", None),
        openai(None, "stop"),
        b"data: [DONE]\n\n",
    )
    assert events == [TextDelta("x"), Finished("stop")]


def test_openai_reasoning_content_is_a_reasoning_delta():
    """Newer KoboldCpp and llama.cpp send the thinking as `delta.reasoning_content`
    (content absent or null): it comes out as ReasoningDelta, before any content of
    the same delta."""
    thinking = {"role": "assistant", "content": None, "reasoning_content": "Hm"}
    both = {"reasoning_content": ", ok.", "content": "Hi"}
    chunks = [
        f"data: {json.dumps({'choices': [{'delta': d}]})}\n\n".encode()
        for d in (thinking, {"reasoning_content": "m"}, both)
    ]
    events = decode("openai", *chunks, openai("!", "stop"))
    assert events == [
        ReasoningDelta("Hm"),
        ReasoningDelta("m"),
        ReasoningDelta(", ok."),
        TextDelta("Hi"),
        TextDelta("!"),
        Finished("stop"),
    ]


def test_done_with_spaces_ends_the_stream():
    """`data:  [DONE]  ` ends the stream, and nothing after it is decoded."""
    events = decode("openai", openai("a"), b"data:  [DONE]  \n\n", openai("late"))
    assert events == [TextDelta("a"), Finished("stop")]


def test_nothing_is_decoded_after_a_finish():
    """Events after the finishing one are ignored."""
    assert decode("native", native("a", "stop"), native("b")) == [
        TextDelta("a"),
        Finished("stop"),
    ]


def test_malformed_data_is_logged_and_skipped(caplog):
    """A data line that is not the expected JSON is logged as a warning and skipped."""
    with caplog.at_level(logging.WARNING, logger="agents.sse"):
        events = decode(
            "native",
            native("a"),
            b"data: {not json\n\n",
            b"data: [1, 2]\n\n",
            native("b", "stop"),
        )
    assert events == [TextDelta("a"), TextDelta("b"), Finished("stop")]
    assert sum("malformed" in r.getMessage() for r in caplog.records) == 2


def test_eof_without_finish_leaves_the_decoder_unfinished():
    """A stream that just stops has no Finished: the caller treats it as cut."""
    decoder = StreamDecoder("native")
    assert decoder.feed(native("partial")) == [TextDelta("partial")]
    assert decoder.close() == []
    assert decoder.finished is None


STREAM = b"".join(
    [
        b": comment\r\n",
        native("Bonjour "),
        native("\u00e0 toi 🙂\n", None),
        b"data: {broken\n\n",
        'data: {"token": "\u00e9t\u00e9 ", "finish_reason": "null"}\n\n'.encode(),
        native("fin", "length"),
    ]
).replace(b"\n\n", b"\r\n\r\n", 1)


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=40))
def test_any_chunking_gives_the_same_result(cuts):
    """However the bytes are chunked, the text and the finish reason are the same."""
    bounds = [0, *sorted(cuts), len(STREAM)]
    chunks = [STREAM[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    events = decode("native", *chunks)
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == "Bonjour à toi 🙂\nété fin"
    assert [e for e in events if isinstance(e, Finished)] == [Finished("length")]
