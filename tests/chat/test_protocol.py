"""The wire protocol module: client frames parsed in one place, and the README's protocol
section naming exactly the frames the code has."""

import json
import re
from pathlib import Path

import pytest

from chat import protocol
from chat.errors import REGISTRY, ChatError

README = Path(__file__).resolve().parents[2] / "README.md"


def _protocol_section() -> str:
    text = README.read_text()
    start = text.index("### WebSocket protocol")
    return text[start : text.index("\n## ", start)]


def test_readme_names_every_frame_of_the_code():
    """Each client and server frame type appears in the README's protocol section."""
    section = _protocol_section()
    for kind in protocol.CLIENT_FRAMES:
        assert f'"type": "{kind}"' in section, kind
    for kind in protocol.SERVER_FRAMES:
        assert f"`{kind}`" in section, kind


def test_readme_names_no_frame_the_code_lacks():
    """The README's client frames are exactly CLIENT_FRAMES."""
    named = set(re.findall(r'"type": "(\w+)"', _protocol_section()))
    assert named == set(protocol.CLIENT_FRAMES)


def test_readme_lists_every_error_code_of_a_reply():
    """The error codes a reply or a frame can carry are all in the README."""
    section = _protocol_section()
    for code in REGISTRY:
        http_only = ("unauthorized", "csrf_failed", "not_found", "model_not_found")
        if code in (*http_only, "interrupted"):
            continue  # HTTP-only codes, and a status rather than a frame
        assert f"`{code}`" in section, code


def test_plain_text_is_a_message():
    frame = protocol.parse_client_frame("hello there", max_bytes=1024)
    assert frame.type == "message" and frame.fields["text"] == "hello there"


@pytest.mark.parametrize(
    "raw, reason",
    [
        (None, "binary"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "object with a type"),
        ('{"type": 3}', "object with a type"),
        ('{"type": "fly"}', "Unknown frame type"),
        ("x" * 2048, "limited to 1 KiB"),
    ],
)
def test_bad_client_frames_are_refused_with_the_reason(raw, reason):
    with pytest.raises(ChatError) as caught:
        protocol.parse_client_frame(raw, max_bytes=1024)
    assert caught.value.code == "bad_request" and reason in caught.value.message


@pytest.mark.parametrize("value", ["7", 7.0, True, None])
def test_ids_must_be_integers(value):
    """Booleans, strings and floats are not ids."""
    frame = protocol.parse_client_frame(
        json.dumps({"type": "stop", "message_id": value}), max_bytes=1024
    )
    with pytest.raises(ChatError):
        frame.integer("message_id")
    assert frame.message_id is None


def test_error_frame_carries_the_readable_message_and_retry_after():
    exc = ChatError("rate_limited", retry_after=12)
    frame = protocol.error_from(exc, message_id=5)
    assert frame == {
        "type": "error",
        "code": "rate_limited",
        "message": str(REGISTRY["rate_limited"].message),
        "message_id": 5,
        "retry_after": 12,
    }


def test_snapshot_offset_is_the_length_in_code_points():
    frame = protocol.snapshot(
        conversation_id=1, message_id=2, status="streaming", content="héllo 🌍"
    )
    assert frame["offset"] == 7
