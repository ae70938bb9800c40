"""What the user sees and what is stored for each failure of DESIGN.md's table."""

import socket

import pytest
from asgiref.sync import sync_to_async

from kobold_fake.server import Script
from tests.chat.conftest import frames_until, is_end, message_row, open_socket

pytestmark = pytest.mark.django_db(transaction=True)


async def _one_reply(make_user, make_key, text="hello there"):
    user = await sync_to_async(make_user)()
    comm = await open_socket(await sync_to_async(make_key)(user))
    await comm.send_to(text_data=text)
    frames = await frames_until(comm, is_end, timeout=15)
    await comm.disconnect()
    errors = [f for f in frames if f["type"] == "error"]
    return frames, errors, await message_row(frames[-1]["message_id"])


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_backend_down(kobold_settings, make_user, make_key):
    """Nothing at KOBOLDCPP_URL: `backend_unreachable` at once, reply stored as error."""
    kobold_settings.KOBOLDCPP_URL = f"http://127.0.0.1:{_closed_port()}"
    frames, errors, reply = await _one_reply(make_user, make_key)
    assert [e["code"] for e in errors] == ["backend_unreachable"]
    assert frames[-1]["status"] == "error"
    assert reply.status == "error" and reply.error_code == "backend_unreachable"


async def test_backend_busy_is_retried_then_reported(
    kobold_settings, fake_kobold, make_user, make_key
):
    """503 busy: retried with backoff; still busy -> `backend_busy`, nothing else lost."""
    fake_kobold.default_script = Script(fault="http_503")
    frames, errors, reply = await _one_reply(make_user, make_key)
    assert [e["code"] for e in errors] == ["backend_busy"]
    assert len(fake_kobold.generations) > 1
    assert reply.status == "error" and reply.error_code == "backend_busy"


async def test_backend_busy_once_then_answers(
    kobold_settings, fake_kobold, make_user, make_key
):
    """A 503 followed by a free server gives a normal reply."""
    fake_kobold.push(Script(fault="http_503"), Script(tokens=["fine"]))
    frames, errors, reply = await _one_reply(make_user, make_key)
    assert errors == [] and reply.status == "complete" and reply.content == "fine"


async def test_wrong_password(kobold_settings, make_user, make_key):
    """KoboldCpp protected by a password we do not have: `backend_auth`."""
    from kobold_fake.server import FakeKobold

    protected = FakeKobold(password="s3cret")
    protected.start()
    try:
        kobold_settings.KOBOLDCPP_URL = protected.url
        kobold_settings.KOBOLDCPP_PASSWORD = "wrong"
        frames, errors, reply = await _one_reply(make_user, make_key)
    finally:
        protected.stop()
    assert [e["code"] for e in errors] == ["backend_auth"]
    assert reply.error_code == "backend_auth"


async def test_stall_before_first_token(
    kobold_settings, fake_kobold, make_user, make_key
):
    """No first token in time: `stalled`, upstream aborted with the genkey."""
    kobold_settings.LLM_FIRST_TOKEN_TIMEOUT = 0.5
    fake_kobold.default_script = Script(fault="stall_before_first")
    frames, errors, reply = await _one_reply(make_user, make_key)
    assert [e["code"] for e in errors] == ["stalled"]
    assert reply.status == "error" and reply.genkey in fake_kobold.aborts


async def test_stall_mid_stream_keeps_the_partial_text(
    kobold_settings, fake_kobold, make_user, make_key
):
    """Silence mid-stream: `stalled`, partial reply stored as error."""
    kobold_settings.LLM_MAX_SILENCE = 0.5
    fake_kobold.default_script = Script(
        tokens=["one ", "two ", "three"], fault="stall_mid", fault_at=2
    )
    frames, errors, reply = await _one_reply(make_user, make_key)
    assert [e["code"] for e in errors] == ["stalled"]
    assert reply.status == "error" and reply.content == "one two "
    assert frames[-1]["content"] == "one two "


async def test_close_mid_stream_keeps_the_partial_text(
    kobold_settings, fake_kobold, make_user, make_key
):
    """Upstream closes mid-reply: an error, partial text kept."""
    fake_kobold.default_script = Script(
        tokens=["one ", "two ", "three"], fault="drop_mid", fault_at=2
    )
    frames, errors, reply = await _one_reply(make_user, make_key)
    assert len(errors) == 1 and errors[0]["code"] == "backend_error"
    assert reply.status == "error" and reply.content == "one two "


async def test_malformed_sse_line_is_skipped(
    kobold_settings, fake_kobold, make_user, make_key
):
    """A malformed SSE line is skipped; the stream goes on and completes."""
    fake_kobold.default_script = Script(
        tokens=["a", "b", "c"], fault="malformed", fault_at=1
    )
    frames, errors, reply = await _one_reply(make_user, make_key)
    assert errors == [] and reply.status == "complete" and reply.content == "abc"
