"""The fake KoboldCpp's scripted behaviours: queueing, slots, abort, keep-alive, faults,
flavors and versions, the standalone mode (the captures: test_fake_kobold_captures.py)."""

import json
import socket
import subprocess
import sys

import httpx
import pytest

from kobold_fake.server import Script
from tests.raw_http import connect, exchange, post, read_all, read_until


def test_tokencount_is_deterministic(make_fake):
    """Words and punctuation count one each, plus BOS unless special is false."""
    fake = make_fake()
    with httpx.Client(base_url=fake.url) as client:
        url = "/api/extra/tokencount"
        first = client.post(url, json={"prompt": "Hello world"}).json()
        again = client.post(url, json={"prompt": "Hello world"}).json()
        plain = client.post(
            url, json={"prompt": "Hello, world", "special": False}
        ).json()
    assert first == again and first["value"] == 3 and first["ids"][0] == 1
    assert plain["value"] == 3 and 1 not in plain["ids"]


def test_llamacpp_flavor_has_no_kobold_api(make_fake):
    """llama-cpp-python answers 404 on the Kobold endpoints."""
    fake = make_fake(flavor="llamacpp")
    with httpx.Client(base_url=fake.url) as client:
        assert client.get("/api/extra/version").status_code == 404
        assert client.post("/api/v1/generate", json={"prompt": "x"}).status_code == 404


def test_multiuser_queues_without_headers(make_fake):
    """A second generation waits silently for the lock, then runs; never two at once."""
    fake = make_fake()
    fake.push(Script(fault="stall_before_first"), Script(tokens=["ok"]))
    first = connect(fake, post("/api/extra/generate/stream", {"genkey": "A"}))
    read_until(first, b"\r\n\r\n")
    second = connect(fake, post("/api/v1/generate", {"genkey": "B"}))
    assert fake.wait_until(lambda: fake.queue == 1)
    second.settimeout(0.2)
    with pytest.raises(TimeoutError):
        second.recv(1)
    exchange(fake, post("/api/extra/abort", {"genkey": "A"}))
    second.settimeout(5)
    assert read_all(second).endswith(
        b'{"results": [{"text": "ok", "finish_reason": "stop"}]}'
    )
    assert fake.max_concurrent_generations == 1
    first.close()


def test_queue_limit_gives_503(make_fake):
    """multiuser=2 allows one waiter; the next request gets the busy 503."""
    fake = make_fake(multiuser=2)
    fake.push(Script(fault="stall_before_first"))
    first = connect(fake, post("/api/extra/generate/stream", {"genkey": "A"}))
    read_until(first, b"\r\n\r\n")
    waiting = connect(fake, post("/api/v1/generate", {}))
    assert fake.wait_until(lambda: fake.queue == 1)
    assert exchange(fake, post("/api/v1/generate", {})).startswith(b"HTTP/1.0 503")
    first.close()
    assert read_all(waiting).startswith(b"HTTP/1.0 200 OK")


def test_slots_run_generations_concurrently(make_fake):
    """slots=3 (benchmark mode) runs three generations at once and counts them."""
    fake = make_fake(slots=3)
    fake.default_script = Script(fault="stall_before_first")
    socks = [connect(fake, post("/api/extra/generate/stream", {})) for _ in range(3)]
    assert fake.wait_until(lambda: fake.max_concurrent_generations == 3)
    assert fake.queue == 0
    for sock in socks:
        sock.close()


def test_abort_semantics_table(make_fake):
    """Unknown key while idle fails; a queued key sets the pending slot and ends it empty."""
    fake = make_fake()
    with httpx.Client(base_url=fake.url) as client:
        lost = client.post("/api/extra/abort", json={"genkey": "X"}).json()
    assert lost == {"success": "false", "done": "false"}
    fake.push(Script(fault="stall_before_first"), Script(tokens=["never"]))
    first = connect(fake, post("/api/extra/generate/stream", {"genkey": "A"}))
    read_until(first, b"\r\n\r\n")
    queued = connect(fake, post("/api/extra/generate/stream", {"genkey": "B"}))
    assert fake.wait_until(lambda: fake.queue == 1)
    pending = exchange(fake, post("/api/extra/abort", {"genkey": "B"}))
    assert pending.endswith(b'{"success": "true", "done": "false"}')
    first.close()
    assert read_all(queued).endswith(
        b'data: {"token": "", "finish_reason": "length"}\n\n'
    )
    assert fake.aborts == ["X", "B"]


def test_generate_check_shows_text_so_far_to_its_genkey(make_fake):
    """generate/check returns the running text for its genkey and "" for another key."""
    fake = make_fake()
    fake.push(Script(tokens=["one", " two", " three"], fault="stall_mid", fault_at=2))
    stream = connect(fake, post("/api/extra/generate/stream", {"genkey": "K"}))
    read_until(stream, b"event: message", 2)
    with httpx.Client(base_url=fake.url) as client:
        mine = client.post("/api/extra/generate/check", json={"genkey": "K"}).json()
        other = client.post("/api/extra/generate/check", json={"genkey": "Z"}).json()
    assert mine == {"results": [{"text": "one two"}]}
    assert other == {"results": [{"text": ""}]}
    stream.close()


def test_client_disconnect_aborts_stream(make_fake):
    """Closing the socket mid-stream stops that generation and records it."""
    fake = make_fake()
    fake.push(Script(tokens=[f"t{i} " for i in range(100)], delay=0.02))
    stream = connect(fake, post("/api/extra/generate/stream", {"genkey": "G"}))
    read_until(stream, b"event: message", 2)
    stream.close()
    assert fake.wait_until(lambda: fake.disconnects == ["G"])
    assert fake.outcomes[-1].ended_by == "disconnect"
    assert len(fake.outcomes[-1].text) < 100 * 4


def test_keep_alive_reuses_one_connection(make_fake):
    """keep_alive=True serves several requests, streamed ones too, on one connection."""
    fake = make_fake(keep_alive=True)
    with httpx.Client(base_url=fake.url) as client:
        for _ in range(3):
            assert client.get("/api/extra/version").http_version == "HTTP/1.1"
        with client.stream("POST", "/api/extra/generate/stream", json={}) as response:
            lines = [line for line in response.iter_lines() if line.startswith("data:")]
        assert client.post("/api/v1/generate", json={}).status_code == 200
    assert len(lines) == 3 and fake.connections_accepted == 1


def test_default_mode_closes_after_each_response(make_fake):
    """KoboldCpp 1.76 speaks HTTP/1.0: one TCP connection per request."""
    fake = make_fake()
    with httpx.Client(base_url=fake.url) as client:
        for _ in range(3):
            assert client.get("/api/extra/version").http_version == "HTTP/1.0"
    assert fake.wait_until(lambda: fake.open_connections == 0)
    assert fake.connections_accepted == 3


FAULTS = [
    (Script(fault="http_503"), b"HTTP/1.0 503", b'"service_unavailable"}}'),
    (Script(fault="http_401"), b"HTTP/1.0 401", b'"type": "unauthorized"}}'),
    (Script(fault="http_500"), b"HTTP/1.0 500", b'"type": "bad_input"}}'),
    (Script(fault="refuse"), b"", b""),
    (
        Script(fault="drop_mid", fault_at=1),
        b"HTTP/1.0 200",
        b'"Hello", "finish_reason": "null"}\n\n',
    ),
]


@pytest.mark.parametrize(("script", "start", "end"), FAULTS, ids=lambda v: str(v)[:40])
def test_scripted_faults(make_fake, script, start, end):
    """HTTP faults answer the captured bodies; refuse and drop_mid just close."""
    fake = make_fake()
    fake.push(script)
    got = exchange(fake, post("/api/extra/generate/stream", {}))
    assert got.startswith(start) and got.endswith(end)


def test_malformed_line_then_stream_continues(make_fake):
    """malformed injects one bad data line at fault_at and the stream goes on."""
    fake = make_fake()
    fake.push(Script(fault="malformed", fault_at=1))
    got = exchange(fake, post("/api/extra/generate/stream", {}))
    body = got.split(b"\r\n\r\n", 1)[1]
    assert body.index(b"data: {not json\n\n") < body.index(b'" there"')
    assert body.endswith(b'{"token": "!", "finish_reason": "stop"}\n\n')


def test_stall_before_first_until_client_closes(make_fake):
    """stall_before_first sends headers, then nothing; closing the client ends it."""
    fake = make_fake()
    fake.push(Script(fault="stall_before_first"))
    stream = connect(fake, post("/api/extra/generate/stream", {"genkey": "S"}))
    read_until(stream, b"text/event-stream\r\n\r\n")
    stream.settimeout(0.2)
    with pytest.raises(TimeoutError):
        stream.recv(1)
    stream.close()
    assert fake.wait_until(lambda: fake.disconnects == ["S"])


@pytest.mark.parametrize(
    ("trim", "expected"),
    [
        (False, b'"END", "finish_reason": "length"}'),
        (True, b'"", "finish_reason": "length"}'),
    ],
)
def test_stop_sequence_ends_native_stream(make_fake, trim, expected):
    """A stop sequence ends with "length"; its text is streamed unless trim_stop."""
    fake = make_fake()
    fake.push(Script(tokens=["a", "END", "b"]))
    body = {"stop_sequence": ["END"], "trim_stop": trim}
    got = exchange(fake, post("/api/extra/generate/stream", body))
    assert got.endswith(expected + b"\n\n") and b'"b"' not in got


def test_version_1_102_forms(make_fake):
    """1.102: JSON null, split final, [DONE] with blank line, X-Accel-Buffering, usage."""
    fake = make_fake(version="1.102")
    chat = {"messages": [{"role": "user", "content": "hi there"}], "stream": True}
    got = exchange(fake, post("/v1/chat/completions", chat))
    assert b"X-Accel-Buffering: no\r\n" in got and got.endswith(b"data: [DONE]\n\n")
    assert b'"finish_reason": null' in got and b'"content": ""}}]}' in got
    native = exchange(fake, post("/api/v1/generate", {"prompt": "a b c"}))
    result = json.loads(native.split(b"\r\n\r\n")[1])["results"][0]
    assert (result["prompt_tokens"], result["completion_tokens"]) == (4, 3)


def test_version_1_117_failed_generation(make_fake):
    """1.117's "error" reason: fault "fail" at a token ends the text so far with it,
    streamed (after JSON null events) and not streamed."""
    fake = make_fake(version="1.117")
    fake.push(Script(fault="fail", fault_at=2), Script(fault="fail", fault_at=2))
    got = exchange(fake, post("/api/extra/generate/stream", {}))
    assert got.endswith(
        b'{"token": " there", "finish_reason": null}\n\n'
        b'event: message\ndata: {"token": "", "finish_reason": "error"}\n\n'
    )
    plain = exchange(fake, post("/api/v1/generate", {"prompt": "a"}))
    result = json.loads(plain.split(b"\r\n\r\n")[1])["results"][0]
    assert (result["text"], result["finish_reason"]) == ("Hello there", "error")
    assert fake.outcomes[-1].finish_reason == "error"


def test_thinking_as_reasoning_content_on_the_chat_endpoint(make_fake):
    """Script(reasoning_content=True): the chat stream sends the thinking (between whole
    token tags) as `delta.reasoning_content` and the tags not at all, like KoboldCpp
    1.117; the native stream sends every token as text, tags included."""
    fake = make_fake(version="1.117")
    tokens = ["<think>", "Let me", " think", "</think>", "Answer"]
    fake.push(*[Script(tokens=tokens, reasoning_content=True)] * 2)
    chat = {"messages": [{"role": "user", "content": "hi"}], "stream": True}
    got = exchange(fake, post("/v1/chat/completions", chat))
    deltas = [
        json.loads(line[6:])["choices"][0]["delta"]
        for line in got.split(b"\n")
        if line.startswith(b"data: {")
    ]
    assert deltas == [
        {"role": "assistant", "reasoning_content": "Let me"},
        {"role": "assistant", "reasoning_content": " think"},
        {"role": "assistant", "content": "Answer"},
        {"role": "assistant", "content": ""},
    ]
    native = exchange(fake, post("/api/extra/generate/stream", {}))
    assert b'"token": "<think>"' in native and b'"token": "</think>"' in native


def test_a_grammar_of_alternatives_constrains_the_reply(make_fake):
    """`root ::= "a" | "b"`: the reply is the script's text when it is a choice, else
    the first choice, on every generate route; the body is recorded as sent."""
    fake = make_fake()
    grammar = 'root ::= "chat" | "code"'
    fake.push(Script(tokens=["co", "de"]), Script(tokens=["Hello"]), Script())
    with httpx.Client(base_url=fake.url) as client:
        native = {"prompt": "x", "grammar": grammar, "max_length": 4}
        picked = client.post("/api/v1/generate", json=native).json()
        first = client.post("/api/v1/generate", json=native).json()
        chat = {"messages": [{"role": "user", "content": "x"}], "grammar": grammar}
        openai = client.post("/v1/chat/completions", json=chat).json()
    assert picked["results"][0]["text"] == "code"
    assert first["results"][0]["text"] == "chat"
    assert openai["choices"][0]["message"]["content"] == "chat"
    assert [g["grammar"] for g in fake.generations] == [grammar] * 3
    assert fake.generations[0]["max_length"] == 4


def test_another_grammar_is_ignored(make_fake):
    """A GBNF the fake cannot read (rules, character classes) leaves the script."""
    body = {"prompt": "x", "grammar": 'root ::= [a-z]+ | word\nword ::= "x"'}
    answer = httpx.post(f"{make_fake().url}/api/v1/generate", json=body).json()
    assert answer["results"][0]["text"] == "Hello there!"


def test_path_matching_like_koboldcpp(make_fake):
    """Trailing slashes are stripped and routes match by suffix; unknown paths 404."""
    fake = make_fake()
    with httpx.Client(base_url=fake.url) as client:
        assert client.get("/api/extra/version/").status_code == 200
        assert client.get("/x/api/extra/version").status_code == 200
        missing = client.get("/nope")
    assert missing.status_code == 404 and missing.headers["content-type"] == "text/html"


def test_hang_never_answers(make_fake):
    """hang=True accepts and reads the request but sends nothing."""
    fake = make_fake(hang=True)
    sock = connect(fake, b"GET /api/extra/version HTTP/1.1\r\nHost: x\r\n\r\n")
    sock.settimeout(0.3)
    with pytest.raises(TimeoutError):
        sock.recv(1)
    assert fake.wait_until(lambda: len(fake.requests) == 1)
    sock.close()


def test_many_concurrent_streams(make_fake):
    """200 simultaneous streams all complete (the benchmarks run 500)."""
    fake = make_fake(slots=500)
    fake.default_script = Script(tokens=[f"tok{i} " for i in range(10)], delay=0.05)
    socks = [connect(fake, post("/api/extra/generate/stream", {})) for _ in range(200)]
    assert all(read_all(s).endswith(b'"finish_reason": "stop"}\n\n') for s in socks)
    assert fake.max_concurrent_generations > 100


def test_standalone_mode_prints_ready_and_serves():
    """`python -m kobold_fake` prints READY <port> and streams tok0 tok1 ..."""
    command = [
        sys.executable,
        "-m",
        "kobold_fake",
        "--port",
        "0",
        "--tokens",
        "2",
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline().split()[1])
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(post("/api/extra/generate/stream", {}))
        got = read_all(sock)
    finally:
        proc.kill()
        proc.wait()
    assert got.endswith(b'{"token": "tok1 ", "finish_reason": "stop"}\n\n')
