"""The fake KoboldCpp against the real wire captures: raw sockets send the captured
request bytes, and the responses must match the captures byte for byte."""

import json
import re

import pytest

from kobold_fake.server import Script
from tests.raw_http import (
    KOBOLD,
    LLAMA,
    capture,
    connect,
    dechunk,
    exchange,
    normalize,
    post,
    read_all,
    read_sized,
    read_until,
    script_from,
)

REPLAYED = [
    ("version", {}),
    ("model", {}),
    ("true_max_context_length", {}),
    ("v1_models", {}),
    ("tokencount_bad", {}),
    ("native_generate", {}),
    ("native_stream", {}),
    ("native_stream_notrim", {}),
    ("openai_chat", {}),
    ("openai_chat_stream", {}),
    ("openai_bad_message", {}),
    ("protected_version", {"password": "s3cret", "multiuser": 0}),
    ("protected_model_noauth", {"password": "s3cret", "multiuser": 0}),
    ("protected_generate_noauth", {"password": "s3cret", "multiuser": 0}),
    ("protected_generate_auth", {"password": "s3cret", "multiuser": 0}),
]


@pytest.mark.parametrize(("name", "options"), REPLAYED, ids=[n for n, _ in REPLAYED])
def test_replays_koboldcpp_capture_byte_for_byte(make_fake, name, options):
    """Each captured KoboldCpp 1.76 exchange is reproduced exactly, quirks included."""
    request, expected = capture(KOBOLD, name)
    fake = make_fake(**options)
    fake.push(script_from(expected) if expected else Script())
    assert normalize(exchange(fake, request)) == normalize(expected)


def test_busy_503_matches_capture(make_fake):
    """With multiuser 0, a generation while one runs gets the captured 503 at once."""
    fake = make_fake(password="s3cret", multiuser=0)
    fake.push(Script(fault="stall_before_first"))
    running = connect(
        fake, post("/api/extra/generate/stream", {"genkey": "A"}, "s3cret")
    )
    read_until(running, b"\r\n\r\n")
    request, expected = capture(KOBOLD, "busy_503")
    assert normalize(exchange(fake, request)) == normalize(expected)
    assert fake.max_concurrent_generations == 1
    running.close()


def test_aborted_stream_matches_capture(make_fake):
    """Abort by genkey ends the stream on the next token with "length", as captured."""
    request, expected = capture(KOBOLD, "native_stream_aborted")
    script = script_from(expected)
    cut = len(script.tokens) - 1
    fake = make_fake()
    fake.push(Script(script.tokens + [" never"] * 5, fault="stall_mid", fault_at=cut))
    stream = connect(fake, request)
    head = read_until(stream, b"event: message", cut)
    answer = exchange(fake, post("/api/extra/abort", {"genkey": "KCPPcap5"}))
    expected_answer = (KOBOLD / "native_stream_aborted.abort.response").read_bytes()
    assert normalize(answer) == normalize(expected_answer)
    assert normalize(head + read_all(stream)) == normalize(expected)
    assert fake.aborts == ["KCPPcap5"]
    assert fake.outcomes[-1].ended_by == "abort"


def test_perf_reports_idle_then_busy(make_fake):
    """/api/extra/perf has the captured shape; idle drops to 0 while generating."""
    request, expected = capture(KOBOLD, "perf_idle")
    fake = make_fake()
    idle = json.loads(exchange(fake, request).split(b"\r\n\r\n")[1])
    assert idle.keys() == json.loads(expected.split(b"\r\n\r\n")[1]).keys()
    fake.push(Script(fault="stall_before_first"))
    running = connect(fake, post("/api/extra/generate/stream", {}))
    read_until(running, b"\r\n\r\n")
    busy = json.loads(exchange(fake, request).split(b"\r\n\r\n")[1])
    assert (idle["idle"], busy["idle"], busy["queue"]) == (1, 0, 0)
    running.close()


def test_llamacpp_flavor_matches_captures(make_fake):
    """The llamacpp flavor reproduces llama-cpp-python's captures (chunk sizes aside)."""
    fake = make_fake(flavor="llamacpp")
    request, expected = capture(LLAMA, "v1_models")
    assert normalize(read_sized(connect(fake, request))) == normalize(expected)
    request, expected = capture(LLAMA, "openai_chat_stream")
    fake.push(script_from(dechunk(expected)))
    got = read_until(connect(fake, request), b"0\r\n\r\n")
    assert normalize(dechunk(got)) == normalize(dechunk(expected))
    request, expected = capture(LLAMA, "openai_chat")
    fake.push(script_from(expected))
    usage = rb'"usage":\{.*\}|content-length: \d+'
    got = normalize(read_sized(connect(fake, request)))
    assert re.sub(usage, b"", got) == re.sub(usage, b"", normalize(expected))
